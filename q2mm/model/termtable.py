"""The `.fld` side of the table of energy terms: one entry per kind of parameter row.

An entry names the row's kind code (columns 1-2 of the line), its term name, how many atoms
the row names, and for each value field that carries a parameter its kind label, unit and
bounds class (``ParamClass``: the fractional rule and sanity interval the optimizer uses).
``ROW_KIND``, ``TERM_OF_CODE``, ``PARAM_KINDS``, ``ATOMS_PER_TERM`` and ``CLASS_OF_KIND`` are derived
here, so the reader (``q2mm.io.fld``), the force field (``q2mm.model.forcefield``) and the
bounds (``q2mm.optimize.bounds``) cannot disagree. The engine side of each term (matching,
energy, Hessian pieces) is ``q2mm.mm3.interactions.VALENCE``; the printed labels are
``ENERGY_TERMS`` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

INF = float("inf")


class ParamClass(Enum):
    """How a parameter kind is bounded: fractional rule ('fc' or 'eq') and sanity interval, or
    'span': the sanity interval itself (a bond dipole, fitted only to charges, often starts at 0
    and must be free to reach the Debye or so that a polar bond carries; MM3* spans -6.7..3.0)."""

    BOND_LENGTH = ("eq", 0.5, 3.0)
    ANGLE = ("eq", 30.0, 180.0)
    IMPROPER_ANGLE = ("eq", -180.0, 180.0)
    FORCE_CONSTANT = ("fc", 0.0, INF)
    TORSION = ("fc", -20.0, 20.0)
    CROSS_TERM = ("fc", -INF, INF)
    DIPOLE = ("span", -10.0, 10.0)
    VDW_RADIUS = ("eq", 0.5, 5.0)
    VDW_EPSILON = ("fc", 0.001, 2.0)
    VDW_REDUCTION = ("eq", 0.0, 1.0)
    OTHER = ("fc", -INF, INF)

    def __init__(self, rule: str, low: float, high: float):
        self.rule = rule
        self.sanity = (low, high)


@dataclass(frozen=True)
class FieldKind:
    """What one value field of a row holds: kind label, unit, bounds class."""

    kind: str
    unit: str
    bounds: ParamClass


@dataclass(frozen=True)
class RowKind:
    """One kind of `.fld` parameter row; ``code`` None for the `-6` vdW table."""

    code: str | None
    term: str
    n_atoms: int
    fields: dict[int, FieldKind]


_P = ParamClass
ROW_KINDS: tuple[RowKind, ...] = (
    RowKind(
        "1",
        "bond",
        2,
        {
            1: FieldKind("bond_r0", "A", _P.BOND_LENGTH),
            2: FieldKind("bond_k", "mdyn/A", _P.FORCE_CONSTANT),
            3: FieldKind("bond_dipole", "D", _P.DIPOLE),
        },
    ),
    RowKind(
        "2",
        "angle",
        3,
        {
            1: FieldKind("angle_theta0", "deg", _P.ANGLE),
            2: FieldKind("angle_k", "mdyn A/rad^2", _P.FORCE_CONSTANT),
            3: FieldKind("bend_bend_k", "mdyn A/rad^2", _P.CROSS_TERM),
        },
    ),
    RowKind("3", "stretch_bend", 3, {1: FieldKind("stretch_bend_k", "mdyn/rad", _P.CROSS_TERM)}),
    RowKind("4", "torsion", 4, {f: FieldKind(f"torsion_v{f}", "kcal/mol", _P.TORSION) for f in (1, 2, 3)}),
    RowKind("54", "torsion_cont", 4, {f: FieldKind(f"torsion_v{f + 3}", "kcal/mol", _P.TORSION) for f in (1, 2, 3)}),
    RowKind(
        "5",
        "improper",
        4,
        {
            1: FieldKind("improper_angle", "deg", _P.IMPROPER_ANGLE),
            2: FieldKind("improper_k", "mdyn A/rad^2", _P.FORCE_CONSTANT),
        },
    ),
    RowKind(
        "6",
        "vdw_pair",
        2,
        {1: FieldKind("vdw_pair_r", "A", _P.VDW_RADIUS), 2: FieldKind("vdw_pair_eps", "kcal/mol", _P.VDW_EPSILON)},
    ),
    RowKind("7", "hbond", 4, {f: FieldKind(f"hbond_{f}", "fld", _P.OTHER) for f in (1, 2, 3)}),
    RowKind(
        "8",
        "torsion_stretch",
        4,
        {
            1: FieldKind("torsion_stretch_k", "kcal/mol/A", _P.CROSS_TERM),
            2: FieldKind("torsion_bend_k", "fld", _P.CROSS_TERM),
            3: FieldKind("torsion_torsion_k", "fld", _P.CROSS_TERM),
        },
    ),
    RowKind(
        None,
        "vdw",
        1,
        {
            1: FieldKind("vdw_r", "A", _P.VDW_RADIUS),
            2: FieldKind("vdw_eps", "kcal/mol", _P.VDW_EPSILON),
            3: FieldKind("vdw_reduction", "A", _P.VDW_REDUCTION),
        },
    ),
)

# The energy terms MacroModel prints, in its order, with its labels: ``MM3Model.breakdown`` and
# ``q2mm.energy``; each ``q2mm.mm3.interactions.VALENCE`` kind adds to one of them.
ENERGY_TERMS: tuple[tuple[str, str], ...] = (
    ("stretch", "Stretch"),
    ("bend", "Bend"),
    ("torsion", "Proper torsion"),
    ("out_of_plane", "Out-of-plane"),
    ("stretch_bend", "Stretch-bend"),
    ("bend_bend", "Bend-bend"),
    ("torsion_stretch", "Torsion-stretch"),
    ("vdw", "Van der Waals"),
    ("electrostatic", "Electrostatic"),
    ("hydrogen_bond", "Hydrogen bonding"),
)

# Derived views (do not edit: add or change a RowKind above).
ROW_KIND: dict[str, RowKind] = {r.term: r for r in ROW_KINDS}
TERM_OF_CODE: dict[str, str] = {r.code: r.term for r in ROW_KINDS if r.code is not None}
ATOMS_PER_TERM: dict[str, int] = {r.term: r.n_atoms for r in ROW_KINDS if r.code is not None}
# (term, field) -> (kind label, unit). A field not listed carries no parameter.
PARAM_KINDS: dict[tuple[str, int], tuple[str, str]] = {
    (r.term, f): (k.kind, k.unit) for r in ROW_KINDS for f, k in r.fields.items()
}
CLASS_OF_KIND: dict[str, ParamClass] = {k.kind: k.bounds for r in ROW_KINDS for k in r.fields.values()}
