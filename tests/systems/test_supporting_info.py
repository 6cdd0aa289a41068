"""Published systems (supporting-information layout: Gaussian logs, types guessed) and their fail-fast guidance."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from q2mm.errors import DataNotFoundError
from q2mm.paths import PACKAGE_DATA
from q2mm.systems import StructureSpec, get_spec, load_system
from q2mm.systems.forcefields import compose_text

EXTERNAL = ("pd-allyl", "heck-relay", "pd-conjugate", "rh-conjugate")
PAPERS = {
    "pd-allyl": "Nat. Commun. 2021, 12, 6508",
    "heck-relay": "J. Am. Chem. Soc. 2020, 142, 9700",
    "pd-conjugate": "J. Org. Chem. 2021, 86, 5660",
    "rh-conjugate": "10.7274/k930bv76q4n",
}


@pytest.mark.parametrize("name", EXTERNAL)
def test_external_system_without_data_names_paper_layout_and_override(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_system(name, tmp_path)
    message = str(info.value)
    assert PAPERS[name] in message and f"conf/system/{name}.yaml" in message
    assert "data_root=" in message and "docs/own-system.md" in message and "system=pd-allyl-xtb" in message
    assert str(tmp_path / name) in message


def test_external_system_with_an_empty_directory_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "pd-allyl").mkdir()
    with pytest.raises(DataNotFoundError, match="pd-allyl.fld is missing"):
        load_system("pd-allyl", tmp_path)


# A published TSFF as supporting information ships it: the substructure only, marked OPT.
PUBLISHED_SUBSTRUCTURE = """\
 C  Ethane rotation TSFF (test) OPT
 9  C3-C3
-2
 1   1   2                 1.5300     4.4000     0.0000
 4  H1   1   2  H1         0.0000     0.0000     0.2000
-3
"""


def arrange_si(ethane_dir: Path, root: Path) -> Path:
    """The ethane Gaussian files laid out as an SI directory for the system 'pd-allyl'."""
    si = root / "pd-allyl"
    (si / "structures").mkdir(parents=True)
    for stem in ("GS", "TS"):
        shutil.copy(ethane_dir / f"{stem}.log", si / "structures" / f"{stem}.log")
    shutil.copy(PACKAGE_DATA / "ethane" / "ethane.fld", si / "mm3.fld")  # a complete MM3* file as the base
    (si / "pd-allyl.fld").write_text(PUBLISHED_SUBSTRUCTURE)
    return si


def test_generic_loader_reads_gaussian_logs_types_by_bonding(ethane_dir: Path, tmp_path: Path) -> None:
    arrange_si(ethane_dir, tmp_path)
    training = load_system("pd-allyl", tmp_path)
    assert [m.title for m in training.molecules] == ["GS", "TS"]
    gs, ts = training.molecules
    for molecule in (gs, ts):
        assert molecule.hessian.shape == (24, 24)
        assert np.allclose(molecule.hessian, molecule.hessian.T)
        assert sorted(molecule.atom_types) == ["C3"] * 2 + ["H1"] * 6
        assert len(molecule.bonds) == 7
    assert not gs.properties["transition_state"] and ts.properties["transition_state"]


def test_generic_loader_composes_published_substructure_with_base(ethane_dir: Path, tmp_path: Path) -> None:
    arrange_si(ethane_dir, tmp_path)
    training = load_system("pd-allyl", tmp_path)
    ff = training.forcefield
    assert [s.name for s in ff.substructures if s.opt] == ["Ethane rotation TSFF (test) OPT"]
    assert [s.name for s in ff.substructures if not s.opt] == ["Ethane"]  # the base's mark dropped
    text = training.forcefield_path.read_text()
    assert text.startswith((tmp_path / "pd-allyl" / "mm3.fld").read_text().splitlines()[0])
    assert "Ethane rotation TSFF (test) OPT" in text
    assert [row.values[:2] for row in ff.active_rows()] == [(1.53, 4.4), (0.0, 0.0)]


def test_compose_inserts_blocks_after_the_last_substructure_end() -> None:
    base = "-1\n 0    STR\n-3\n C  first\n 9  C3\n-2\n-3\n trailer\n"
    composed = compose_text(base, "junk header\n" + PUBLISHED_SUBSTRUCTURE, Path("pub.fld")).splitlines()
    end_of_first = composed.index("-3", 3)
    assert composed[end_of_first + 1] == " C  Ethane rotation TSFF (test) OPT"
    assert composed[-1] == " trailer" and "junk header" not in composed


def test_structures_listed_in_the_spec_are_read_in_that_order(ethane_dir: Path, tmp_path: Path) -> None:
    arrange_si(ethane_dir, tmp_path)
    spec = replace(get_spec("pd-allyl"), structures=[StructureSpec(qm="structures/TS.log")])
    training = load_system(spec, tmp_path)
    assert [m.title for m in training.molecules] == ["TS"]
