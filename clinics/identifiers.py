"""Vietnamese identifiers: the citizen ID (CCCD) and the health-insurance (BHYT) card code.

Formats from ../shared/domain/vn-telemedicine-rules.md §f. Neither has a check digit, so only the
format (and, for the CCCD, its embedded century/sex and birth year) can be validated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CCCD = re.compile(r"^\d{12}$")
_BHYT_NEW = re.compile(r"^\d{10}$")  # the social-insurance number, printed on cards since 2021
_BHYT_OLD = re.compile(r"^[A-Z]{2}[1-5]\d{2}\d{10}$")  # group + benefit level + province + BHXH number


class InvalidIdentifier(ValueError):
    """The value is not in the expected format; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Cccd:
    number: str
    province_code: str  # pre-2025 code of the place of birth registration (001 Hà Nội, 079 TP.HCM …)
    sex: str  # "male" | "female"
    birth_year: int


def normalise(value: str) -> str:
    return re.sub(r"[\s.-]", "", value).upper()


def parse_cccd(value: str, birth_year: int | None = None) -> Cccd:
    """A 12-digit CCCD; if ``birth_year`` is known it must agree with the number."""
    number = normalise(value)
    if not _CCCD.match(number):
        raise InvalidIdentifier("a CCCD number has exactly 12 digits")
    century_sex = int(number[3])
    century = 1900 + 100 * (century_sex // 2)
    year = century + int(number[4:6])
    if birth_year is not None and birth_year != year:
        raise InvalidIdentifier(f"this CCCD number belongs to someone born in {year}")
    return Cccd(number, number[:3], "male" if century_sex % 2 == 0 else "female", year)


def parse_bhyt(value: str) -> str:
    """A health-insurance card code: the 10-digit BHXH number (cards since 2021) or the older
    15-character code (2 letters, benefit level 1–5, 2-digit province, 10-digit BHXH number)."""
    code = normalise(value)
    if _BHYT_NEW.match(code) or _BHYT_OLD.match(code):
        return code
    raise InvalidIdentifier("a health-insurance number has 10 digits, or 15 characters like GD4010120152431")


def bhxh_number(bhyt: str) -> str:
    """The 10-digit social-insurance number inside either form of the card code."""
    return parse_bhyt(bhyt)[-10:]
