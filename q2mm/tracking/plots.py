"""Parity plots (MM vs QM, before and after the fit) written as PNG with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

UNITS = {
    "eig_diag": "kJ mol$^{-1}$ Å$^{-2}$ amu$^{-1}$",
    "eig_offdiag": "kJ mol$^{-1}$ Å$^{-2}$ amu$^{-1}$",
    "bond_length": "$\\AA$",
    "bond_angle": "deg",
    "torsion": "deg",
    "frequency": "cm$^{-1}$",
    "energy": "kJ/mol",
}

Pairs = Mapping[str, tuple[np.ndarray, np.ndarray]]  # kind -> (reference QM, calculated MM)


def _r2(ref: np.ndarray, calc: np.ndarray) -> float:
    total = float(np.sum((ref - ref.mean()) ** 2))
    return 1.0 - float(np.sum((ref - calc) ** 2)) / total if total > 0 else float("nan")


def _panel(ax, ref: np.ndarray, calc: np.ndarray, title: str, unit: str) -> None:
    ax.scatter(ref, calc, s=10, alpha=0.7)
    low = float(min(ref.min(), calc.min()))
    high = float(max(ref.max(), calc.max()))
    ax.plot([low, high], [low, high], color="0.5", linewidth=0.8)
    ax.set_title(f"{title}  R$^2$ = {_r2(ref, calc):.4f}")
    ax.set_xlabel(f"QM ({unit})")
    ax.set_ylabel(f"MM ({unit})")


def parity_plot(kind: str, before: tuple, after: tuple, path: Path) -> Path:
    """One PNG for one observation kind: MM vs QM before (left) and after (right) the fit."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), constrained_layout=True)
    unit = UNITS.get(kind, "")
    for ax, (ref, calc), when in zip(axes, (before, after), ("before", "after")):
        _panel(ax, np.asarray(ref, float).ravel(), np.asarray(calc, float).ravel(), f"{kind} {when}", unit)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parity_plots(initial: Pairs, final: Pairs, outdir: Path) -> list[Path]:
    """``parity_<kind>.png`` in ``outdir`` for every kind present before and after the fit."""
    outdir.mkdir(parents=True, exist_ok=True)
    return [
        parity_plot(kind, initial[kind], final[kind], outdir / f"parity_{kind}.png")
        for kind in initial
        if kind in final and np.asarray(initial[kind][0]).size > 0
    ]


def evaluation_parity_plots(pairs: Pairs, outdir: Path, label: str = "") -> list[Path]:
    """``parity_<kind>.png`` in ``outdir``: MM vs QM of one force field (an evaluation, no fit)."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, (ref, calc) in pairs.items():
        ref, calc = np.asarray(ref, float).ravel(), np.asarray(calc, float).ravel()
        if ref.size == 0:
            continue
        fig, ax = plt.subplots(figsize=(4.8, 4.2), constrained_layout=True)
        _panel(ax, ref, calc, f"{kind} {label}".strip(), UNITS.get(kind, ""))
        path = outdir / f"parity_{kind}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
