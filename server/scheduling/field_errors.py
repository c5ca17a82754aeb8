"""Every mistake of a request body at once, each with where it is.

An editor saves many rows in one request (a week of hours, a list of holidays); answering with the
first mistake only makes a person fix, save, fix, save. The answer keeps the usual error shape and
adds ``errors``: one entry per mistake, with its dotted ``field`` ("rules.3.end"), the list
``section`` and ``index`` when it is inside a list, the field ``name``, a ``type`` a page can
translate (pydantic's error type, or one of ours such as ``overlap``) and the ``message``.
"""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.errors import ApiError

ModelT = TypeVar("ModelT", bound=BaseModel)


class FieldErrors(ApiError):
    def __init__(self, errors: list[dict[str, object]]) -> None:
        first = errors[0]
        super().__init__(400, "invalid_body", f"{first['field']}: {first['message']}")
        self.errors = errors

    def response(self) -> web.Response:
        return web.json_response({"error": {"code": self.code, "message": self.message, "errors": self.errors}},
                                 status=self.status)


def field_error(loc: tuple[int | str, ...], message: str, kind: str) -> dict[str, object]:
    entry: dict[str, object] = {"field": ".".join(str(part) for part in loc) or "body", "type": kind,
                                "message": message}
    if len(loc) >= 2 and isinstance(loc[1], int):
        entry["section"], entry["index"] = loc[0], loc[1]
    names = [part for part in loc if isinstance(part, str)]
    if names:
        entry["name"] = names[-1]
    return entry


def errors_of(exc: ValidationError) -> list[dict[str, object]]:
    result = []
    for error in exc.errors():
        # Our own checks raise PydanticCustomError: their type ("end_before_start") is what a page translates.
        message = error["msg"].removeprefix("Value error, ")
        result.append(field_error(tuple(error["loc"]), message, error["type"]))
    return result


async def parse_all(request: web.Request, model: type[ModelT]) -> ModelT:
    """Like server.validation.parse_body, but a 400 lists every mistake (FieldErrors)."""
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FieldErrors(errors_of(exc)) from None
