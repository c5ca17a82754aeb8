"""Wire templates, translations and page routes into the app."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server.keys import SETTINGS, TRANSLATOR
from server.middlewares import issue_csrf
from server.requestctx import LOCALE, USER

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOCALE_DIR = HERE / "locale"


async def template_context(request: web.Request) -> dict[str, object]:
    return {
        "request": request,
        "user": request.get(USER),
        "locale": request.get(LOCALE, request.app[SETTINGS].default_locale),
        "csrf_token": issue_csrf(request),
    }


def setup(app: web.Application) -> None:
    from web import account_pages, audit_pages, pages, scheduling_pages

    translator = app[TRANSLATOR]
    translator.load(LOCALE_DIR)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        extensions=["jinja2.ext.i18n"],
        autoescape=jinja2.select_autoescape(["html"]),
        context_processors=[template_context],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(translator.gettext, translator.ngettext, newstyle=True)  # type: ignore[attr-defined]
    app.router.add_routes(pages.routes)
    app.router.add_routes(audit_pages.routes)
    app.router.add_routes(scheduling_pages.routes)
    app.router.add_routes(account_pages.routes)
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
