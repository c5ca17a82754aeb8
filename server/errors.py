"""One error shape for every API: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

from aiohttp import web


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class ApiError(Exception):
    """Raise from a handler; the error middleware answers with the JSON error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message)
