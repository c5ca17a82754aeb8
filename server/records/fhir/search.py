"""Search parameters and searchset Bundles.

Strict on purpose: an unknown or malformed parameter is a 400, not silently ignored, because a client
whose filter was dropped would take a wider result for the narrow one it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from multidict import MultiMapping

from server.records.dates import InvalidDate, parse_interval
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.resources import Resource

COUNT_DEFAULT = 50
COUNT_MAX = 200
PAGING = frozenset({"_count", "_offset"})
ACCEPTED_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
DATE_PREFIXES = ("eq", "ge", "le", "gt", "lt")


@dataclass(frozen=True)
class SearchRequest:
    values: Mapping[str, tuple[str, ...]]
    """Each parameter given (once, except dates) with its comma-separated alternatives."""
    count: int
    offset: int
    items: tuple[tuple[str, str], ...]
    """The filter parameters as given, in order, for the Bundle's links."""

    def any_of(self, name: str) -> tuple[str, ...] | None:
        return self.values.get(name)


def _int(name: str, raw: str, low: int) -> int:
    if not raw.isdigit() or len(raw) > 9:
        raise bad_parameter(f"{name} must be a whole number of at least {low}")
    value = int(raw)
    if value < low:
        raise bad_parameter(f"{name} must be a whole number of at least {low}")
    return value


def parse_search(query: MultiMapping[str], allowed: frozenset[str], repeatable: frozenset[str] = frozenset()
                 ) -> SearchRequest:
    values: dict[str, tuple[str, ...]] = {}
    items: list[tuple[str, str]] = []
    count, offset = COUNT_DEFAULT, 0
    for name in set(query.keys()):
        given = query.getall(name)
        if name == "_format":
            if any(v not in ACCEPTED_FORMATS for v in given):
                raise bad_parameter("only JSON is served (_format=json)")
            continue
        if name not in allowed and name not in PAGING:
            raise bad_parameter(f"unsupported search parameter {name[:40]!r}; see /fhir/R4/metadata")
        if len(given) > 1 and name not in repeatable:
            raise bad_parameter(f"give {name} once; separate alternatives with commas")
        if name == "_count":
            count = min(_int("_count", given[0], 0), COUNT_MAX)  # FHIR lets a server return fewer
        elif name == "_offset":
            offset = _int("_offset", given[0], 0)
        else:
            if any(not v.strip() for v in given):
                raise bad_parameter(f"{name} needs a value")
            values[name] = tuple(part.strip() for v in given for part in
                                 ((v,) if name in repeatable else v.split(",")) if part.strip())
    for name, value in query.items():
        if name not in PAGING and name != "_format":
            items.append((name, value))
    return SearchRequest(values=values, count=count, offset=offset, items=tuple(items))


def strip_reference(value: str, types: Sequence[str]) -> str:
    """'Practitioner/abc' or 'abc' -> 'abc'; a reference to another type is a 400."""
    if "/" not in value:
        return value
    resource_type, _, resource_id = value.rpartition("/")
    resource_type = resource_type.rsplit("/", 1)[-1]  # an absolute URL ends in Type/id too
    if resource_type not in types or not resource_id:
        raise bad_parameter(f"expected a reference to {' or '.join(types)}, got {value[:80]!r}")
    return resource_id


def date_bounds(values: Sequence[str], zone: str) -> tuple[datetime | None, datetime | None]:
    """FHIR date comparisons (eq, ge, le, gt, lt), all of which must hold, as [not_before, before)."""
    low: datetime | None = None
    high: datetime | None = None
    for raw in values:
        prefix = raw[:2] if raw[:2] in DATE_PREFIXES else "eq"
        value = raw[2:] if raw[:2] in DATE_PREFIXES else raw
        try:
            interval = parse_interval(value, zone)
        except InvalidDate as exc:
            raise bad_parameter(f"date: {exc}") from None
        lower = {"eq": interval.start, "ge": interval.start, "gt": interval.end}.get(prefix)
        upper = {"eq": interval.end, "le": interval.end, "lt": interval.start}.get(prefix)
        if lower is not None:
            low = lower if low is None else max(low, lower)
        if upper is not None:
            high = upper if high is None else min(high, upper)
    return low, high


def searchset(base_url: str, resource_type: str, search: SearchRequest, resources: Sequence[Resource],
              total: int) -> Resource:
    def link(relation: str, offset: int) -> dict[str, str]:
        query = urlencode([*search.items, ("_count", str(search.count)), ("_offset", str(offset))])
        return {"relation": relation, "url": f"{base_url}/{resource_type}?{query}"}

    links = [link("self", search.offset)]
    if search.count and search.offset + search.count < total:
        links.append(link("next", search.offset + search.count))
    if search.offset > 0:
        links.append(link("previous", max(0, search.offset - max(search.count, 1))))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if resources:
        bundle["entry"] = [{"fullUrl": f"{base_url}/{resource_type}/{r['id']}", "resource": r,
                            "search": {"mode": "match"}} for r in resources]
    return bundle
