"""Missing-value tokens of the text importers are matched per token, as written."""

from __future__ import annotations

import numpy as np
import pytest

from genosynth.formats.plink import read_pheno_file
from genosynth.formats.text_tables import MISSING_TOKENS, parse_numbers


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["-9", "-9.0", "1.5"], [np.nan, -9.0, 1.5]),    # every token a number
        (["-9", "-9.0", "NA"], [np.nan, -9.0, np.nan]),  # a text token in the row too
        (["-9.0", "-9e0", "-9"], [-9.0, -9.0, np.nan]),
        ([".", "-9.0", "nan"], [np.nan, -9.0, np.nan]),
    ],
)
def test_minus_nine_is_missing_only_as_the_exact_token(tokens, expected):
    values = parse_numbers(tokens, source="p.txt", row=2, missing=MISSING_TOKENS)
    np.testing.assert_array_equal(values, np.array(expected))


def test_a_token_outside_the_missing_set_is_a_number_even_when_it_is_minus_nine():
    genotype_missing = frozenset({"NA", "."})
    values = parse_numbers(["-9", "NA", "1"], source="g.txt", row=1, missing=genotype_missing)
    np.testing.assert_array_equal(values, [-9.0, np.nan, 1.0])


def test_the_rule_holds_through_the_plink_phenotype_reader(tmp_path):
    pheno = tmp_path / "p.txt"
    pheno.write_text("FID IID a b\nf i1 -9 -9.0\nf i2 -9.0 NA\nf i3 -9.0 -9\n")
    iids, table = read_pheno_file(str(pheno))
    assert iids == ["i1", "i2", "i3"]
    np.testing.assert_array_equal(table["a"].to_numpy(), [np.nan, -9.0, -9.0])
    np.testing.assert_array_equal(table["b"].to_numpy(), [-9.0, np.nan, np.nan])
