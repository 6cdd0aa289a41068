"""Packaging beyond pyproject.toml: the Hydra configs and presets ship inside the package.

They live once, at the top of the repository (``conf/``, ``experiments/``), and are mapped
into the wheel as ``q2mm/conf`` and ``q2mm/experiments`` (no copies in the repository);
``q2mm.paths`` finds them there, or in the checkout.
"""

from setuptools import find_packages, setup

SHIPPED = {"q2mm.conf": "conf", "q2mm.experiments": "experiments"}

# hydra_plugins.q2mm_launcher: Hydra loads launchers only from the hydra_plugins namespace package.
PLUGINS = ["hydra_plugins.q2mm_launcher"]

setup(packages=find_packages(include=["q2mm", "q2mm.*"]) + PLUGINS + list(SHIPPED), package_dir=SHIPPED)
