"""Selectivity pairs on a hand-made two-group case, against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from q2mm.errors import ConfigurationError
from q2mm.evaluation.select import fold_holdout, n_folds, resolve_structures
from q2mm.evaluation.selectivity import boltzmann_energy, check_groups, formula, incomparable, selectivity_table
from q2mm.model.molecule import Bond, Molecule
from q2mm.systems.spec import SelectivitySpec

COORDS = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.1], [1.0, 0.0, 0.0]])


def molecule(title: str, energy: float | None, elements=("C", "H", "F")) -> Molecule:
    return Molecule(title, tuple(elements), COORDS, energy=energy, source=f"/data/{title}.out")


# group A: one TS; group B: two conformers. QM energies in Hartree, MM3* minima in kcal/mol.
MOLECULES = [molecule("ts-a", -100.0), molecule("ts-b1", -99.998), molecule("ts-b2", -99.997)]
MM_KCAL = [10.0, 11.0, 11.5]


def test_two_groups_equal_a_hand_computation():
    spec = SelectivitySpec(groups={"A": ("ts-a",), "B": ("2", "3")})
    table = selectivity_table(spec, MOLECULES, MM_KCAL)
    (row,) = table["pairs"]
    # QM: B1 - A = 0.002 Eh * 2625.4996 kJ/mol/Eh = 5.25100, B2 - A = 7.87650 kJ/mol;
    # RT at 298.15 K = 2.478957 kJ/mol; G(B) = 5.25100 - RT ln(1 + exp(-2.62550 / RT)) = 4.51300
    assert row["qm_kj"] == pytest.approx(4.51300, abs=1e-5)
    # MM: A 41.840, B 46.024 and 48.116 kJ/mol; G(B) = 46.024 - RT ln(1 + exp(-2.092 / RT)) = 45.13729;
    # difference 3.29729
    assert row["mm_kj"] == pytest.approx(3.29729, abs=1e-5)
    assert row["error_kj"] == pytest.approx(3.29729 - 4.51300, abs=1e-5)
    assert table["mue_kj"] == pytest.approx(1.21571, abs=1e-5)
    assert math.isnan(table["r2"])  # one pair: no R2
    assert (row["a"], row["b"]) == ("A", "B")
    assert table["qm_energy"] == ["Jaguar SCF energy (SCFE)"]
    assert table["groups"] == {"A": ["ts-a"], "B": ["ts-b1", "ts-b2"]}


def test_temperature_and_single_member_groups():
    # at 1000 K, RT = 8.314463 kJ/mol: G(B) = 5.25100 - RT ln(1 + exp(-2.62550 / RT)) = 0.69740
    spec = SelectivitySpec(groups={"A": ("1",), "B": ("2", "3")}, temperature=1000.0)
    assert selectivity_table(spec, MOLECULES, MM_KCAL)["pairs"][0]["qm_kj"] == pytest.approx(0.69740, abs=1e-5)
    assert boltzmann_energy([3.0], 298.15) == 3.0
    # two equal conformers lower the group energy by RT ln 2
    assert boltzmann_energy([0.0, 0.0], 298.15) == pytest.approx(-8.314462618e-3 * 298.15 * math.log(2))


def test_pairs_default_to_every_pair_and_r2_over_pairs():
    spec = SelectivitySpec(groups={"A": ("1",), "B1": ("2",), "B2": ("3",)})
    assert spec.compared == (("A", "B1"), ("A", "B2"), ("B1", "B2"))
    table = selectivity_table(spec, MOLECULES, MM_KCAL)
    qm = np.array([r["qm_kj"] for r in table["pairs"]])
    mm = np.array([r["mm_kj"] for r in table["pairs"]])
    assert qm == pytest.approx([5.25100, 7.87650, 2.62550], abs=1e-5)
    assert mm == pytest.approx([4.184, 6.276, 2.092])
    assert table["r2"] == pytest.approx(1 - np.sum((qm - mm) ** 2) / np.sum((qm - qm.mean()) ** 2))


@pytest.mark.parametrize(
    "spec, molecules, message",
    [
        (SelectivitySpec(groups={"A": ("1",), "B": ("4",)}), MOLECULES, "out of range"),
        (SelectivitySpec(groups={"A": ("ts-x",), "B": ("2",)}), MOLECULES, "no structure titled 'ts-x'"),
        (SelectivitySpec(groups={"A": ("1",), "B": ("2",)}), [MOLECULES[0], molecule("e", None)], "needs QM energies"),
    ],
)
def test_bad_groups_are_named(spec, molecules, message):
    with pytest.raises(ConfigurationError, match=message):
        selectivity_table(spec, molecules, [1.0, 2.0])


# C3F skeletons (hydrogens left out): 1-fluoropropane, the same atoms listed in another order
# with the same bonds (a stereoisomer or conformer as far as the graph tells), 2-fluoropropane.
C3F = np.zeros((4, 3))
PROPYL = Molecule("1-F", ("C", "C", "C", "F"), C3F, bonds=(Bond(0, 1), Bond(1, 2), Bond(0, 3)), energy=-1.000)
PROPYL_REORDERED = Molecule(
    "1-F'", ("F", "C", "C", "C"), C3F, bonds=(Bond(3, 2), Bond(1, 2), Bond(0, 1)), energy=-0.999
)
ISOPROPYL = Molecule("2-F", ("C", "C", "C", "F"), C3F, bonds=(Bond(0, 1), Bond(1, 2), Bond(1, 3)), energy=-1.002)
PROPANE = Molecule("H", ("C", "C", "C", "H"), C3F, bonds=(Bond(0, 1), Bond(1, 2), Bond(0, 3)), energy=-0.5)


def test_only_stereoisomers_and_conformers_compare():
    assert incomparable([PROPYL, PROPYL_REORDERED]) is None
    assert "constitutional isomers" in incomparable([PROPYL, ISOPROPYL])
    assert "different composition (C3F, C3H)" in incomparable([PROPYL, PROPANE])
    assert formula(("H", "C", "Rh", "C", "P", "H", "H")) == "C2H3PRh" and formula(("F", "B", "F")) == "BF2"
    spec = SelectivitySpec(groups={"n": ("1-F",), "n2": ("1-F'",), "iso": ("2-F",), "h": ("H",)})
    molecules = [PROPYL, PROPYL_REORDERED, ISOPROPYL, PROPANE]
    notes = check_groups(spec, molecules)  # before any fit: which pairs will not be compared, and why
    assert len(notes) == 5 and not any("'n'/'n2'" in note for note in notes)  # all pairs but n/n2
    table = selectivity_table(spec, molecules, [1.0, 1.5, 0.0, 2.0])
    rows = {(r["a"], r["b"]): r for r in table["pairs"]}
    same = rows[("n", "n2")]
    # QM: 0.001 Eh * 2625.4996 = 2.6255 kJ/mol; MM3*: 0.5 kcal/mol = 2.092 kJ/mol
    assert same["comparable"] and same["note"] == ""
    assert (same["qm_kj"], same["mm_kj"]) == (pytest.approx(2.6255, abs=1e-4), pytest.approx(2.092))
    isomers = rows[("n", "iso")]  # QM compares (same atoms), MM3* does not (different bonds)
    assert not isomers["comparable"] and isomers["mm_kj"] is None and isomers["error_kj"] is None
    assert isomers["qm_kj"] == pytest.approx(-0.002 * 2625.4996, abs=1e-4)
    other = rows[("n", "h")]
    assert other["qm_kj"] is None and other["mm_kj"] is None and "composition" in other["note"]
    assert table["n_compared"] == 1 and table["mue_kj"] == pytest.approx(2.6255 - 2.092, abs=1e-4)


def test_bad_specs_fail_at_construction():
    with pytest.raises(ConfigurationError, match="two of the groups"):
        SelectivitySpec(groups={"A": ("1",)}, pairs=(("A", "C"),))
    with pytest.raises(ConfigurationError, match="temperature"):
        SelectivitySpec(groups={"A": ("1",)}, temperature=0.0)


def test_selectors_and_folds():
    titles = ["a", "b", "c", "d", "e"]
    assert resolve_structures(["2", "e", 1], titles, "x") == [1, 4, 0]
    with pytest.raises(ConfigurationError, match="named twice"):
        resolve_structures(["1", "a"], titles, "x")
    assert n_folds(9, None) == 9 and n_folds(12, None) == 5 and n_folds(9, 3) == 3
    assert [fold_holdout(5, 3, k) for k in range(3)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ConfigurationError, match="expected 2..5"):
        n_folds(5, 6)
