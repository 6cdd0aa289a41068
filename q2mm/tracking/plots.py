"""Parity plots (MM vs QM, before and after the fit), PNG with matplotlib's Agg backend.

One figure per observation kind: two panels on the same axis limits (a point moves between
them only because the fit moved it), each titled with its R2 and RMSD in the kind's unit;
points coloured by structure, transition states as triangles and minima as circles; the
figure title names the kind, the system and the run, so a downloaded PNG says what it shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from q2mm.reference import stats  # noqa: E402
from q2mm.tracking.kinds import kind_label  # noqa: E402

LEGEND_ENTRIES = 12  # structures named in the legend; more are summarised in one entry
TITLE_CHARS = 28


@dataclass(frozen=True)
class Parity:
    """QM reference and MM values of one kind; ``structure`` = structure index per entry;
    ``r2``/``rmsd`` as the objective computed them (recomputed here when None)."""

    ref: np.ndarray
    calc: np.ndarray
    structure: np.ndarray | None = None
    r2: float | None = None
    rmsd: float | None = None

    @classmethod
    def of(cls, value: Parity | tuple) -> Parity:
        """A Parity from itself or from a (ref, calc[, structure]) tuple."""
        if isinstance(value, Parity):
            return value
        ref, calc, *rest = value
        return cls(np.asarray(ref, float).ravel(), np.asarray(calc, float).ravel(), rest[0] if rest else None)

    @property
    def r2_value(self) -> float:
        return stats.r_squared(self.ref, self.calc) if self.r2 is None else float(self.r2)

    @property
    def rmsd_value(self) -> float:
        return stats.rmsd(self.ref, self.calc) if self.rmsd is None else float(self.rmsd)


@dataclass(frozen=True)
class Structure:
    """How a structure is shown: its title and whether it is a transition state."""

    title: str
    transition_state: bool = False


Pairs = Mapping[str, "Parity | tuple"]


def panel_title(when: str, data: Parity, unit: str) -> str:
    """``before: R² = 0.9994, RMSD = 0.0078 Å``."""
    return f"{when}: R$^2$ = {data.r2_value:.4f}, RMSD = {data.rmsd_value:.3g} {unit}".rstrip()


def figure_title(kind: str, heading: str = "") -> str:
    """``bond length, MM vs QM: sn2 fc_fraction=0.1``."""
    title = f"{kind_label(kind).title}, MM vs QM"
    return f"{title}: {heading}" if heading else title


def _limits(*sets: Parity) -> tuple[float, float]:
    values = np.concatenate([np.concatenate([s.ref, s.calc]) for s in sets])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = 0.04 * (high - low) if high > low else max(abs(high), 1.0) * 0.05
    return low - pad, high + pad


def _groups(data: Parity, structures: Sequence[Structure] | None) -> list[tuple[str, bool, np.ndarray]]:
    """(label, transition state, entry mask) per structure present, or one unlabelled group."""
    if data.structure is None or structures is None:
        return [("", False, np.ones(data.ref.shape, bool))]
    index = np.asarray(data.structure, int)
    out = []
    for s in sorted(set(index.tolist())):
        info = structures[s] if 0 <= s < len(structures) else Structure(f"structure {s}")
        title = info.title if len(info.title) <= TITLE_CHARS else info.title[: TITLE_CHARS - 1] + "…"
        out.append((f"{title} (TS)" if info.transition_state else title, info.transition_state, index == s))
    return out


def _panel(ax, data: Parity, title: str, unit: str, limits, structures) -> list:
    handles = []
    colours = matplotlib.colormaps["tab10"](np.arange(10))
    for k, (label, ts, mask) in enumerate(_groups(data, structures)):
        handles.append(
            ax.scatter(
                data.ref[mask],
                data.calc[mask],
                s=16 if ts else 12,
                alpha=0.75,
                marker="^" if ts else "o",
                color=colours[k % len(colours)],
                label=label,
            )
        )
    ax.plot(limits, limits, color="0.5", linewidth=0.8)
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal", adjustable="box")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"QM ({unit})" if unit else "QM")
    ax.set_ylabel(f"MM ({unit})" if unit else "MM")
    return handles


def parity_plot(
    kind: str, before, after, path: Path, structures: Sequence[Structure] | None = None, heading: str = ""
) -> Path:
    """One PNG for one observation kind: MM vs QM before (left) and after (right) the fit."""
    before, after = Parity.of(before), Parity.of(after)
    label = kind_label(kind)
    limits = _limits(before, after)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), constrained_layout=True)
    handles = []
    for ax, data, when in zip(axes, (before, after), ("before", "after")):
        handles = _panel(ax, data, panel_title(when, data, label.unit), label.unit_tex, limits, structures)
    fig.suptitle(figure_title(kind, heading), fontsize=11)
    named = [h for h in handles if h.get_label() and not h.get_label().startswith("_")]
    if named:
        shown = named[:LEGEND_ENTRIES]
        labels = [h.get_label() for h in shown]
        if len(named) > LEGEND_ENTRIES:
            labels[-1] = f"... {len(named) - LEGEND_ENTRIES + 1} more structures"
        fig.legend(shown, labels, loc="outside right center", fontsize=8, title="structure", title_fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parity_plots(
    initial: Pairs, final: Pairs, outdir: Path, structures: Sequence[Structure] | None = None, heading: str = ""
) -> list[Path]:
    """``parity_<kind>.png`` in ``outdir`` for every kind present before and after the fit."""
    outdir.mkdir(parents=True, exist_ok=True)
    return [
        parity_plot(kind, initial[kind], final[kind], outdir / f"parity_{kind}.png", structures, heading)
        for kind in initial
        if kind in final and Parity.of(initial[kind]).ref.size > 0
    ]


def evaluation_parity_plots(
    pairs: Pairs, outdir: Path, label: str = "", structures: Sequence[Structure] | None = None
) -> list[Path]:
    """``parity_<kind>.png`` in ``outdir``: MM vs QM of one force field (an evaluation, no fit),
    one panel titled like a fit's, ``label`` in the figure title."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, value in pairs.items():
        data = Parity.of(value)
        if data.ref.size == 0:
            continue
        unit = kind_label(kind)
        fig, ax = plt.subplots(figsize=(5.6, 4.8), constrained_layout=True)
        handles = _panel(ax, data, panel_title("evaluated", data, unit.unit), unit.unit_tex, _limits(data), structures)
        fig.suptitle(figure_title(kind, label), fontsize=11)
        named = [h for h in handles if h.get_label() and not h.get_label().startswith("_")]
        if named:
            fig.legend(
                named[:LEGEND_ENTRIES],
                [h.get_label() for h in named[:LEGEND_ENTRIES]],
                loc="outside right center",
                fontsize=8,
                title="structure",
                title_fontsize=8,
            )
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
