"""May this condition be examined and treated remotely? Thông tư 30/2023/TT-BYT's list, by ICD-10.

The list ships as a data file with its source and version (clinics/data/circular-30-2023.json) and
an administrator can replace it. The shipped list is incomplete (21 of 50 rows could be verified), so
a code that is not on it is reported as "not on the verified list" — a warning that offers referral
or an in-person visit — and never as "not allowed", unless the loaded list says it is complete.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MANIFEST = Path(__file__).parent / "data" / "circular-30-2023.json"
_ICD10 = re.compile(r"^[A-Z]\d{2}(\.?[0-9A-Z]{1,4})?$")


class Verdict(enum.StrEnum):
    ELIGIBLE = "eligible"  # on the list
    NOT_ON_VERIFIED_LIST = "not_on_verified_list"  # the list we have is incomplete: cannot decide
    NOT_ELIGIBLE = "not_eligible"  # the list is complete and the code is not on it


class InvalidCode(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Condition:
    number: int
    specialty: str
    name: str
    codes: tuple[str, ...]  # normalised, without dots: "E11.9" → "E119"


@dataclass(frozen=True, slots=True)
class Decision:
    code: str
    verdict: Verdict
    condition: Condition | None
    list_version: str


def icd10_key(code: str) -> str:
    """'e11.9 ' → 'E119': upper case, no dot (the list prints both 'E119' and 'E11.9', and 'Z09.')."""
    cleaned = code.strip().upper().rstrip(".")
    if not _ICD10.match(cleaned):
        raise InvalidCode(f"{code!r} is not an ICD-10 code (e.g. J00, E11.9)")
    return cleaned.replace(".", "")


@dataclass(frozen=True)
class ConditionList:
    title: str
    version: str
    source: str
    complete: bool
    rows_total: int
    conditions: tuple[Condition, ...]

    @classmethod
    def load(cls, manifest_path: Path = DEFAULT_MANIFEST) -> ConditionList:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        text = (manifest_path.parent / manifest["conditions_file"]).read_text(encoding="utf-8")
        rows = csv.DictReader(io.StringIO("\n".join(line for line in text.splitlines() if not line.startswith("#"))))
        conditions = tuple(
            Condition(int(row["no"]), row["specialty_vi"], row["condition_vi"],
                      tuple(icd10_key(code) for code in row["icd10_codes"].split(";") if code.strip()))
            for row in rows
        )
        return cls(manifest["title"], manifest["version"], manifest["source"], bool(manifest["complete"]),
                   int(manifest["rows_total"]), conditions)

    def decide(self, code: str) -> Decision:
        """A listed category covers its subcodes: E66 covers E66.0 and E66.9."""
        key = icd10_key(code)
        for condition in self.conditions:
            if any(key.startswith(listed) for listed in condition.codes):
                return Decision(key, Verdict.ELIGIBLE, condition, self.version)
        verdict = Verdict.NOT_ELIGIBLE if self.complete else Verdict.NOT_ON_VERIFIED_LIST
        return Decision(key, verdict, None, self.version)
