"""How an observation kind is named and measured where a chemist reads it: plots, the run
description, README's metric list. One table; units are those the reference objective
compares in (q2mm.objective: eigenmatrix in kJ/(mol A^2 amu), geometry in A and degrees,
frequencies in cm^-1, relative energies in kcal/mol, charges in e)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindLabel:
    """A kind's readable name, its unit in plain text and in matplotlib mathtext."""

    title: str
    unit: str
    unit_tex: str


KIND_LABELS: dict[str, KindLabel] = {
    "eig_diag": KindLabel("eigenmatrix diagonal", "kJ/(mol Å² amu)", "kJ mol$^{-1}$ Å$^{-2}$ amu$^{-1}$"),
    "eig_offdiag": KindLabel("eigenmatrix off-diagonal", "kJ/(mol Å² amu)", "kJ mol$^{-1}$ Å$^{-2}$ amu$^{-1}$"),
    "bond_length": KindLabel("bond length", "Å", "Å"),
    "bond_angle": KindLabel("bond angle", "deg", "deg"),
    "torsion": KindLabel("torsion", "deg", "deg"),
    "frequency": KindLabel("frequency", "cm⁻¹", "cm$^{-1}$"),
    "energy": KindLabel("relative energy", "kcal/mol", "kcal mol$^{-1}$"),
    "charge": KindLabel("atomic charge", "e", "e"),
}


def kind_label(kind: str) -> KindLabel:
    """The label of ``kind``; an unknown kind keeps its own name and no unit."""
    return KIND_LABELS.get(kind, KindLabel(kind.replace("_", " "), "", ""))
