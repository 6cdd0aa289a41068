"""Q2MM parameter files (``LINE FIELD [neg|pos|both|LOW HIGH]``): every form, and bad lines named."""

from __future__ import annotations

import math

import pytest

from q2mm.errors import InputFormatError
from q2mm.io.params import ChosenParameter, read_parameter_file

# the forms Q2MM's parameters.py documents for its -pf file, with both comment marks
EVERY_FORM = """\
# force constants of an OPT substructure
1858 1
1858 2         # force constant
1891 1 neg
1892 3 POS     ! V3 kept positive
1892 1 both
1985 2 -1. 1.
1861 2 0.0 inf

"""


def test_every_form_of_a_q2mm_parameter_file(tmp_path):
    path = tmp_path / "params.txt"
    path.write_text(EVERY_FORM)
    inf = math.inf
    assert read_parameter_file(path) == (
        ChosenParameter(1858, 1),
        ChosenParameter(1858, 2),
        ChosenParameter(1891, 1, -inf, 0.0),
        ChosenParameter(1892, 3, 0.0, inf),
        ChosenParameter(1892, 1, -inf, inf),
        ChosenParameter(1985, 2, -1.0, 1.0),
        ChosenParameter(1861, 2, 0.0, inf),
    )


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("1858 2\n1858 4\n", 2, "FIELD 1..3"),
        ("1858\n", 1, "'LINE FIELD'"),
        ("x 2\n", 1, "'LINE FIELD'"),
        ("0 2\n", 1, "'LINE FIELD'"),
        ("1858 2 sometimes\n", 1, "neg, pos, both or 'LOW HIGH'"),
        ("1858 2 1 2 3\n", 1, "'LOW HIGH'"),
        ("1858 2 1.0 0.5\n", 1, "LOW <= HIGH"),
        ("1858 2 nan 1\n", 1, "LOW <= HIGH"),
        ("1858 2\n\n1858 2 pos\n", 3, "each LINE FIELD once"),
    ],
)
def test_a_bad_line_is_named_with_what_was_expected(tmp_path, text, line, expected):
    path = tmp_path / "params.txt"
    path.write_text(text)
    with pytest.raises(InputFormatError, match=f"params.txt:{line}: expected .*{expected}") as info:
        read_parameter_file(path)
    assert info.value.line == line


def test_a_file_without_parameters_or_missing_is_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(InputFormatError, match="empty.txt: expected at least one parameter line"):
        read_parameter_file(empty)
    with pytest.raises(InputFormatError, match="absent.txt: expected a readable Q2MM parameter file"):
        read_parameter_file(tmp_path / "absent.txt")
