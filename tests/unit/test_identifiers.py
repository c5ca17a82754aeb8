"""clinics.identifiers: CCCD and BHYT formats."""

from __future__ import annotations

import pytest

from clinics.identifiers import InvalidIdentifier, bhxh_number, parse_bhyt, parse_cccd


def test_cccd_decodes_province_sex_and_birth_year() -> None:
    card = parse_cccd("001 087 123456")
    assert (card.number, card.province_code, card.sex, card.birth_year) == ("001087123456", "001", "male", 1987)
    girl = parse_cccd("079315000001")
    assert (girl.sex, girl.birth_year) == ("female", 2015)
    assert parse_cccd("092301000002", birth_year=2001).birth_year == 2001


@pytest.mark.parametrize("value", ["", "12345678901", "1234567890123", "00108712345A", "CCCD001087123"])
def test_cccd_must_be_twelve_digits(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match="12 digits"):
        parse_cccd(value)


def test_cccd_must_agree_with_the_birth_year() -> None:
    with pytest.raises(InvalidIdentifier, match="born in 1987"):
        parse_cccd("001087123456", birth_year=1990)


@pytest.mark.parametrize("value,expected", [
    ("0123456789", "0123456789"),  # the BHXH number, cards since 2021
    ("GD4010120152431", "GD4010120152431"),  # the older 15-character code
    ("gd4 01 0120152431", "GD4010120152431"),
])
def test_both_bhyt_forms_are_accepted(value: str, expected: str) -> None:
    assert parse_bhyt(value) == expected


@pytest.mark.parametrize("value", ["012345678", "01234567890", "GD6010120152431", "G14010120152431",
                                   "GD40101201524", "ABCDEFGHIJ"])
def test_other_bhyt_forms_are_refused(value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_bhyt(value)


def test_bhxh_number_is_inside_both_forms() -> None:
    assert bhxh_number("GD4010120152431") == bhxh_number("0120152431") == "0120152431"
