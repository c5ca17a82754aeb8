"""clinics.eligibility: Thông tư 30/2023 list by ICD-10, honest about being incomplete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinics.eligibility import ConditionList, InvalidCode, Verdict, icd10_key


def test_the_shipped_list_is_marked_incomplete_and_has_the_verified_rows() -> None:
    shipped = ConditionList.load()
    assert not shipped.complete and shipped.rows_total == 50
    assert [c.number for c in shipped.conditions] == list(range(1, 22))  # rows 1–21, none invented


@pytest.mark.parametrize("code,row", [("J00", 2), ("I10", 16), ("E66.9", 1), ("E11.9", 20), ("E119", 20),
                                      ("z09", 14), ("M17.0", 11)])
def test_listed_codes_and_their_subcodes_are_eligible(code: str, row: int) -> None:
    decision = ConditionList.load().decide(code)
    assert decision.verdict == Verdict.ELIGIBLE
    assert decision.condition is not None and decision.condition.number == row


def test_an_unlisted_code_is_not_on_the_verified_list_never_not_allowed() -> None:
    decision = ConditionList.load().decide("J45")  # asthma: probably in rows 22–50, which we lack
    assert decision.verdict == Verdict.NOT_ON_VERIFIED_LIST and decision.condition is None


def test_a_complete_list_replaced_by_an_administrator_can_say_not_eligible(tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text("no,specialty_vi,condition_vi,icd10_codes,notes\n1,Hô hấp,Hen,J45,\n",
                                       encoding="utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps({
        "title": "test", "version": "v2", "source": "official", "rows_total": 1, "complete": True,
        "conditions_file": "list.csv"}), encoding="utf-8")
    replaced = ConditionList.load(tmp_path / "manifest.json")
    assert replaced.decide("J45.0").verdict == Verdict.ELIGIBLE
    assert replaced.decide("I10").verdict == Verdict.NOT_ELIGIBLE
    assert replaced.decide("I10").list_version == "v2"


@pytest.mark.parametrize("code", ["", "10", "XX", "J4", "hypertension", "J45..1"])
def test_non_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidCode):
        icd10_key(code)
