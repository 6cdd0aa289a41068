"""Substructure patterns: parsing, graph matching, alternative criteria."""

from __future__ import annotations

import numpy as np
import pytest

from q2mm.mm3.graph import MolecularGraph
from q2mm.mm3.substructure import (
    PatternSyntaxError,
    TypeMatcher,
    alternative_holds,
    match_pattern,
    parse_pattern,
)

RH_PATTERN = "HX-RH(-PX)-HX.C2*C2(.2)-N2-C2=O2.2"


def test_rh_enamide_pattern_positions_branches_and_closures():
    p = parse_pattern(RH_PATTERN)
    assert p.atoms == ("HX", "RH", "PX", "HX", "C2", "C2", "N2", "C2", "O2")
    assert set(p.bonds) == {
        (0, 1, "-"),
        (1, 2, "-"),
        (1, 3, "-"),
        (3, 4, "."),
        (4, 5, "*"),
        (5, 1, "."),
        (5, 6, "-"),
        (6, 7, "-"),
        (7, 8, "="),
        (8, 1, "."),
    }


def test_ring_closure_wildcards_and_one_letter_atoms():
    ring = parse_pattern("C3-C3-00-1")
    assert ring.atoms == ("C3", "C3", "00") and (2, 0, "-") in ring.bonds
    ketone = parse_pattern("C3-C2(=O)-00-00-C3-1")
    assert ketone.atoms[2] == "O" and (1, 2, "=") in ketone.bonds and (5, 0, "-") in ketone.bonds


@pytest.mark.parametrize("bad", ["C2-(", "C2)", "C2-9", "(C2)", ""])
def test_bad_patterns_raise(bad):
    with pytest.raises(PatternSyntaxError):
        parse_pattern(bad)


def _benzene_with_methyl():
    """C0..C5 aromatic ring (alternating orders), C6 methyl on C0, H on the others."""
    bonds = [(i, (i + 1) % 6, 2 if i % 2 == 0 else 1) for i in range(6)] + [(0, 6, 1)]
    bonds += [(i, 6 + i, 1) for i in range(1, 6)]  # H7..H11 on C1..C5
    types = ("C2",) * 6 + ("C3",) + ("H1",) * 5
    elements = ("C",) * 7 + ("H",) * 5
    graph = MolecularGraph.from_bonds(12, bonds)
    return graph, TypeMatcher(types, elements, {"AA": frozenset({"C2", "N2"})})


def test_benzenoid_matches_every_rotation_and_direction():
    graph, matcher = _benzene_with_methyl()
    matches = match_pattern(parse_pattern("C2*C2*AA*AA*AA*AA*1"), graph, matcher)
    assert len(matches) == 12
    assert all(set(m) == set(range(6)) for m in matches)


def test_bond_symbols_restrict_orders():
    graph, matcher = _benzene_with_methyl()
    assert len(match_pattern(parse_pattern("C2=C2"), graph, matcher)) == 6  # 3 double bonds x 2
    assert len(match_pattern(parse_pattern("C2-C2"), graph, matcher)) == 6
    assert match_pattern(parse_pattern("C2.C2"), graph, matcher) == []
    assert len(match_pattern(parse_pattern("C3-C0"), graph, matcher)) == 1  # element wildcard


def test_zero_order_bonds_match_only_the_dot_symbol():
    graph = MolecularGraph.from_bonds(3, [(0, 1, 0), (1, 2, 1)])
    matcher = TypeMatcher(("RH", "C2", "H1"), ("Rh", "C", "H"), {})
    assert match_pattern(parse_pattern("RH.C2-H1"), graph, matcher) == [(0, 1, 2)]
    assert match_pattern(parse_pattern("RH*C2"), graph, matcher) == []
    assert match_pattern(parse_pattern("RH-C2"), graph, matcher) == []


def test_type_names_match_without_regard_to_case():
    """Q2MM's published Heck field names palladium 'PD' in its pattern, its atom.typ 'Pd'
    (type 201): the Heck TS of the public q2mm example (N2.PD-C2.C2=C2.2) must match."""
    # Pd(0) -C2(1) .C2(2) =C2(3) back to Pd by a zero-order bond; N2(4) on Pd, zero order
    graph = MolecularGraph.from_bonds(5, [(0, 1, 1), (1, 2, 0), (2, 3, 2), (3, 0, 0), (0, 4, 0)])
    matcher = TypeMatcher(("Pd", "C2", "C2", "C2", "N2"), ("Pd", "C", "C", "C", "N"), {"MX": frozenset({"PD"})})
    assert match_pattern(parse_pattern("N2.PD-C2.C2=C2.2"), graph, matcher) == [(4, 0, 1, 2, 3)]
    assert matcher.matches("pd", 0) and matcher.matches("MX", 0) and not matcher.matches("PT", 0)


def test_alternative_angle_criterion_with_tolerance():
    coords = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [-2.0, 0.3, 0.0], [0.0, 2.0, 0.0]])

    def angle(atoms):
        a, b = coords[atoms[0]] - coords[atoms[1]], coords[atoms[2]] - coords[atoms[1]]
        return float(np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))))

    match = (1, 0, 2, 3)  # positions 1..4 -> atoms
    assert alternative_holds("A", (1, 2, 3), 180.0, 45.0, match, angle)  # ~171 deg
    assert not alternative_holds("A", (1, 2, 4), 180.0, 45.0, match, angle)  # 90 deg
    assert alternative_holds("T", (1, 2, 3, 4), -175.0, 10.0, match, lambda a: 178.0)  # wraps
