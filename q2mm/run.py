"""``python -m q2mm.run [overrides]``: one fit (or a sweep with ``-m``), tracked in MLflow.

Configs: ``conf/`` (groups system, scope, start, optimizer, tracking) and the presets in
``experiments/`` (``experiment=NAME``); see docs/runner.md.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

import q2mm.jaxconfig  # noqa: F401  (float64 and the persistent compile cache before any JAX work)
from q2mm.config import register_configs
from q2mm.launcher import expose_plugin
from q2mm.paths import CONF_DIR
from q2mm.pipeline import JobContext, console_exit, past_last_fold, run_or_exit

register_configs()
expose_plugin()  # hydra/launcher=slurm from an editable install


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> Any:
    """Hydra task: fit the configured system and log the run (a cross-validation fold past
    the system's last fold does nothing).

    A user's mistake (a Q2MMError: bad file, config or data) ends as one message and a
    non-zero exit, after run_job has recorded the MLflow run as FAILED with that message.
    """
    ctx = JobContext.from_hydra()
    if ctx.multirun and past_last_fold(cfg):
        return None
    return run_or_exit(cfg, ctx)


def cli() -> None:
    """Console script ``q2mm-run``: the same as ``python -m q2mm.run``; exit 1 when a sweep job failed."""
    console_exit(main)


if __name__ == "__main__":
    cli()
