"""``hydra/launcher=slurm``'s target: q2mm.launcher.SlurmLauncher, registered where Hydra looks."""

from q2mm.launcher import SlurmLauncher


class Q2MMSlurmLauncher(SlurmLauncher):
    """The submitit SLURM launcher that ends when a job dies without a result (see q2mm.launcher)."""
