"""present.units: the one definition of the binary units, and the formatters every view uses."""

import doctest
import re
from pathlib import Path

import pytest

import quantscope
from quantscope.errors import UserError
from quantscope.present import columns, labels, units
from quantscope.present.units import GiB, MiB, fmt_bytes, fmt_mib, fmt_pm, parse_bytes

pytestmark = pytest.mark.unit

SRC = Path(quantscope.__file__).parent


@pytest.mark.parametrize("module", [units, labels, columns])
def test_the_examples_in_the_docstrings_hold(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_mib_and_gib_are_defined_once_in_the_package():
    # a second `MiB = ...` (or a bare `1 << 20` used as a unit) is how two views drift apart
    where = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p != Path(units.__file__)
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.match(r"\s*(KiB|MiB|GiB)\s*=", line) or re.search(r"/ \(1 << (20|30)\)", line)]
    assert where == []


def test_binary_units_and_their_text():
    assert (MiB, GiB) == (1 << 20, 1 << 30)
    assert fmt_mib(620 * MiB) == "620.0" and fmt_mib(None) == "-"
    assert fmt_bytes(1023 * MiB) == "1023.0 MiB" and fmt_bytes(GiB) == "1.00 GiB"


def test_plus_minus_keeps_significant_digits_and_says_nothing_for_missing_figures():
    assert fmt_pm(0.00412, 0.00031, 3, 1) == "0.00412 ± 0.0003"
    assert fmt_pm(float("nan"), 1.0) == "-"


def test_parse_bytes_reads_both_unit_families_and_names_them_on_a_typo():
    assert parse_bytes("512 MiB") == 512 * MiB and parse_bytes("2gb") == 2 * 10**9
    with pytest.raises(UserError, match="KiB, MiB, GiB"):
        parse_bytes("2 gigs")
