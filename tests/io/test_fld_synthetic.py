"""Row kinds the shared files lack, written in MacroModel's own column layout."""

from __future__ import annotations

import pytest

from q2mm.errors import InputFormatError
from q2mm.io.fld import parse_fld
from q2mm.model.forcefield import ParamRef

TEXT = (
    "-2\n"
    " 4  C3 - C3 - C3 - C3      0.1850     0.1700     0.5200  0000 0000 0000 0000    O 1             C-C-C-C\n"
    "54                         0.0100    -0.0200     0.0300\n"
    " 1  C3 - C3                1.5247     4.4900     0.0000  0000 0000              O 1     OPT     C-C\n"
    " 2  C3 - C3 - C3         109.5000     0.7000     0.2400  0000 0000 0000         O 1             C-C-C\n"
    "-3\n"
)


def test_torsion_continuation_row():
    ff = parse_fld(TEXT)
    cont = ff.row(3)
    assert cont.term == "torsion_cont" and cont.values == (0.01, -0.02, 0.03)
    assert ff.kind(ParamRef(3, 1)) == ("torsion_v4", "kcal/mol")
    assert ff.kind(ParamRef(3, 3)) == ("torsion_v6", "kcal/mol")
    assert cont.atoms == ("C3", "C3", "C3", "C3")
    with pytest.raises(InputFormatError, match="'54' V4-V6 row right after its torsion row"):
        parse_fld("-2\n54                         0.0100    -0.0200     0.0300\n")


def test_standard_row_marked_opt_is_active():
    ff = parse_fld(TEXT)
    assert ff.row(4).opt_marked and not ff.row(2).opt_marked
    assert ff.active_refs() == (ParamRef(4, 1), ParamRef(4, 2))
    assert ff.text() == TEXT


def test_unknown_row_code_is_refused():
    with pytest.raises(InputFormatError, match=r"<string>:2: expected a parameter row"):
        parse_fld("-2\n?1  C3 - C3                1.5247     4.4900\n-3\n")


def test_row_with_too_few_atoms_is_refused():
    with pytest.raises(InputFormatError, match="2 atom types for a bond row"):
        parse_fld("-2\n 1  C3                     1.5247     4.4900\n")


def test_pattern_line_outside_a_substructure_header_is_refused():
    with pytest.raises(InputFormatError, match="' 9' pattern line"):
        parse_fld("-2\n 9  C3-C3\n")


def test_stop_substructure_name_line():
    text = (
        "-3\n S  Cyclopropanoid OPT\n 9  C3-C3-00-1\n-2\n 1   1   2                 1.5010     4.4000     0.0000\n-3\n"
    )
    ff = parse_fld(text)
    (sub,) = ff.substructures
    assert sub.stop and sub.opt and sub.patterns == ("C3-C3-00-1",) and sub.end_line == 6
    assert ff.row(5).atoms == (1, 2) and ff.row(5).substructure is sub
    assert ff.active_refs() == (ParamRef(5, 1), ParamRef(5, 2))
