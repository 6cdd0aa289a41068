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


def identifiability_plot(singular_values, relative_error, names, threshold: float, path: Path) -> Path:
    """Singular values of the unit-box Jacobian (left) and each parameter's standard error in
    bound widths (right, log scale; above ``threshold`` = undetermined, drawn in red)."""
    sv = np.asarray(singular_values, float)
    rel = np.asarray(relative_error, float)
    shown = np.where(np.isfinite(rel), rel, np.nan)
    top = np.nanmax(shown) if np.isfinite(shown).any() else threshold
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    axes[0].semilogy(np.arange(1, sv.size + 1), np.maximum(sv, 1e-300), "o-", markersize=3)
    axes[0].set_xlabel("index")
    axes[0].set_ylabel("singular value of the unit-box Jacobian")
    bad = ~(rel <= threshold)
    heights = np.where(np.isfinite(rel), rel, 10 * max(top, threshold))
    axes[1].bar(np.arange(rel.size), np.maximum(heights, 1e-12), color=np.where(bad, "tab:red", "tab:blue"))
    axes[1].set_yscale("log")
    axes[1].axhline(threshold, color="0.4", linewidth=0.8)
    axes[1].set_xlabel("active parameter")
    axes[1].set_ylabel("standard error / bound width")
    axes[1].set_title(f"{int(bad.sum())} of {rel.size} undetermined")
    if rel.size <= 40:
        axes[1].set_xticks(np.arange(rel.size), names, rotation=90, fontsize=6)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
