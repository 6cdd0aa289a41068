"""``python -m q2mm.fld FILE [--active] [--json | --param-file]``: what a MacroModel force field holds.

Without ``--active``: the unit factors, row counts per term, substructures (OPT marked) and
the active parameters. With ``--active``: only the parameters an optimization would change
(line, field, kind, atom types or pattern positions, value, unit). ``--json`` prints the same
as JSON; in ``atoms`` an integer is a position in the substructure pattern, a string an atom type.
``--param-file`` prints the active parameters as a Q2MM parameter file (``LINE FIELD`` per line,
what each is as a comment) to edit and fit with ``scope=file scope.path=...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from q2mm.errors import Q2MMError
from q2mm.io.fld import read_fld
from q2mm.io.params import LINE_FORMAT
from q2mm.model.forcefield import ActiveParam, ForceField, ParamRow


def atoms_label(row: ParamRow) -> str:
    """'O2=C2' for a standard row, '2-3' (pattern positions) or '00-2-3-00' for a substructure row."""
    names = [str(a) for a in row.atoms]
    if row.substructure is not None or not row.bond_orders:
        return "-".join(names) if row.substructure is not None else " ".join(names)
    out = names[0]
    for order, name in zip(row.bond_orders, names[1:]):
        out += (order if order.strip() else " ") + name
    return out


def active_records(ff: ForceField) -> list[dict[str, Any]]:
    """One JSON-ready record per active parameter."""
    return [_record(p) for p in ff.active_params()]


def _record(p: ActiveParam) -> dict[str, Any]:
    row = p.row
    return {
        "line": p.ref.line,
        "field": p.ref.field,
        "kind": p.kind,
        "term": row.term,
        "atoms": list(row.atoms),
        "label": atoms_label(row),
        "alt": row.alt or None,
        "value": p.value,
        "unit": p.unit,
        "substructure": row.substructure.number if row.substructure is not None else None,
        "pattern": row.substructure.patterns[0] if row.substructure is not None and row.substructure.patterns else None,
    }


def summary(ff: ForceField) -> dict[str, Any]:
    """Counts, unit factors and substructures of a force field."""
    return {
        "path": str(ff.path),
        "lines": len(ff.lines),
        "rows": dict(Counter(r.term for r in ff.rows)),
        "unit_factors": {f.term: f.factor for f in ff.functions if f.factor is not None},
        "equivalences": {e.name: list(e.members) for e in ff.equivalences},
        "substructures": [
            {
                "number": s.number,
                "name": s.name,
                "patterns": list(s.patterns),
                "opt": s.opt,
                "lines": [s.name_line, s.end_line],
            }
            for s in ff.substructures
        ],
        "n_active": len(ff.active_refs()),
    }


def active_table(records: Sequence[dict[str, Any]]) -> str:
    head = f"{'line':>5} {'fld':>3}  {'kind':<15} {'atoms':<22} {'value':>10}  unit"
    out = [head, "-" * len(head)]
    for r in records:
        atoms = _atoms_text(r)
        out.append(f"{r['line']:>5} {r['field']:>3}  {r['kind']:<15} {atoms:<22} {r['value']:>10.4f}  {r['unit']}")
    return "\n".join(out)


def _atoms_text(record: dict[str, Any]) -> str:
    """A record's atoms with its alternative-row mark: '2-3 (a)'."""
    return record["label"] + (f" ({record['alt']})" if record["alt"] else "")


def parameter_file_text(records: Sequence[dict[str, Any]]) -> str:
    """The active parameters as a Q2MM parameter file (``q2mm.io.params``): ``LINE FIELD`` and,
    after ``#``, the kind, atoms and value; delete lines or add ``neg``/``pos``/``LOW HIGH``."""
    out = [f"# {LINE_FORMAT}; fit with: python -m q2mm.run scope=file scope.path=THIS_FILE"]
    for r in records:
        atoms = _atoms_text(r)
        out.append(f"{r['line']:>5} {r['field']}   # {r['kind']:<15} {atoms:<22} {r['value']:>10.4f}  {r['unit']}")
    return "\n".join(out)


def summary_text(info: dict[str, Any]) -> str:
    out = [f"{info['path']}: {info['lines']} lines"]
    out.append("rows: " + ", ".join(f"{k} {v}" for k, v in sorted(info["rows"].items())))
    if info["unit_factors"]:
        out.append("unit factors: " + ", ".join(f"{k} {v:g}" for k, v in info["unit_factors"].items()))
    for s in info["substructures"]:
        mark = "OPT " if s["opt"] else "    "
        out.append(
            f"  {mark}#{s['number']:<3} lines {s['lines'][0]}-{s['lines'][1]}  {s['name']}  [{' / '.join(s['patterns'])}]"
        )
    out.append(f"active parameters: {info['n_active']}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m q2mm.fld", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a MacroModel .fld force field")
    parser.add_argument("--active", action="store_true", help="list only the parameters an optimization changes")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument(
        "--param-file", action="store_true", help="print the active parameters as a Q2MM parameter file (scope=file)"
    )
    args = parser.parse_args(argv)
    try:
        ff = read_fld(args.file)
    except Q2MMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records = active_records(ff)
    if args.param_file:
        print(parameter_file_text(records))
    elif args.json:
        payload: Any = {"path": str(ff.path), "active": records} if args.active else {**summary(ff), "active": records}
        print(json.dumps(payload, indent=1))
    elif args.active:
        print(active_table(records))
    else:
        print(summary_text(summary(ff)))
        print(active_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
