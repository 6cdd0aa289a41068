"""MacroModel-style MM3* single-point energy breakdown.

    python -m q2mm.energy FLD STRUCTURES [--index K] [--json] [--atomtyp PATH]

STRUCTURES is a Maestro `.mae` (every `f_m_ct` block) or a Tripos `.mol2` file. K counts
from 1; without --index every structure is evaluated (with --json: one JSON object per
line). Custom atom types are read from --atomtyp, else from an `atom.typ` beside the
structures or the force field. --json prints exactly
{"structure": title, "units": "kJ/mol", "total": x, "terms": {term: x, ...}}.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from q2mm.errors import Q2MMError
from q2mm.model.molecule import Molecule
from q2mm.model.termtable import ENERGY_TERMS

LABELS = dict(ENERGY_TERMS)  # term -> MacroModel's printed label, in MacroModel's order


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m q2mm.energy", description=__doc__.split("\n")[1])
    parser.add_argument("fld", type=Path, help="MacroModel force field (.fld)")
    parser.add_argument("structures", type=Path, help="structures (.mae or .mol2)")
    parser.add_argument("--index", type=int, default=None, help="structure number K, counted from 1")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--atomtyp", type=Path, default=None, help="custom MacroModel atom.typ")
    return parser


def _atomtyp(args: argparse.Namespace) -> Path | None:
    if args.atomtyp is not None:
        return args.atomtyp
    for folder in (args.structures.parent, args.fld.parent):
        if (folder / "atom.typ").is_file():
            return folder / "atom.typ"
    return None


def read_structures(path: Path, atomtyp: Path | None) -> list[Molecule]:
    """Every structure of a .mae or .mol2 file."""
    suffix = path.suffix.lower()
    if suffix == ".mae":
        from q2mm.io.mae import read_mae

        return read_mae(path, atomtyp)
    if suffix == ".mol2":
        from q2mm.io.mol2 import read_mol2_all

        return read_mol2_all(path)
    raise Q2MMError(f"{path}: expected a .mae or .mol2 structure file, found {suffix or 'no extension'!r}")


def breakdown(fld: Path, molecule: Molecule) -> dict:
    """The JSON-ready breakdown of one structure (kJ/mol)."""
    from q2mm.io.fld import read_fld
    from q2mm.mm3.engine import MM3Model

    parts = MM3Model.build([molecule], read_fld(fld)).breakdown(0)
    terms = {t: parts[t] + 0.0 for t in LABELS}  # + 0.0: no "-0.0" in the output
    return {"structure": molecule.title, "units": "kJ/mol", "total": sum(terms.values()), "terms": terms}


def format_table(number: int, result: dict) -> str:
    """MacroModel's "Total energy / Force-field terms" block."""
    kcal = lambda v: v / 4.184
    lines = [
        f"Structure {number}: {result['structure']}",
        f"Total energy:        {result['total']:12.4f} kJ/mol ( {kcal(result['total']):12.4f} kcal/mol )",
    ]
    for term, label in LABELS.items():
        value = result["terms"][term]
        lines.append(f"  {label + ':':18s} {value:12.4f} kJ/mol ( {kcal(value):12.4f} kcal/mol )")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        molecules = read_structures(args.structures, _atomtyp(args))
        if args.index is not None and not 1 <= args.index <= len(molecules):
            print(
                f"error: --index {args.index} out of range: {args.structures} holds {len(molecules)} "
                f"structure(s), counted from 1",
                file=sys.stderr,
            )
            return 2
        numbers = [args.index] if args.index is not None else range(1, len(molecules) + 1)
        for number in numbers:
            result = breakdown(args.fld, molecules[number - 1])
            print(json.dumps(result) if args.json else format_table(number, result))
    except Q2MMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
