"""The application factory. No work at import time; every resource is owned by a cleanup context."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator

from aiohttp import web

from media.ice import IceConfig, IceServerConfig, apply_host_addresses
from media.sfu import Sfu
from server import api, whip
from server.auth.sessions import SessionCache
from server.bus.base import Bus
from server.bus.local import LocalBus
from server.db.engine import create_engine, session_factory
from server.db.migrate import upgrade
from server.i18n import Translator
from server.keys import (
    BACKGROUND,
    BUS,
    CONNECTIONS,
    DOCUMENT_STORAGE,
    ENGINE,
    LIVE_ROOMS,
    NOTIFIERS,
    PLUGINS,
    SECRET,
    SESSION_CACHE,
    SESSIONS,
    SETTINGS,
    SFU,
    TRANSLATOR,
)
from server.middlewares import MIDDLEWARES, security_headers
from server.notify.factory import notifiers_from
from server.plugins import Plugin, load_plugins
from server.records.documents import routes as documents
from server.records.documents.storage import LocalStorage
from server.records.fhir import routes as fhir
from server.records.fhir.export import export_ctx
from server.records.retention import retention_ctx
from server.rooms.policy import ROOM_CHECKS
from server.scheduling import feeds, series_routes
from server.scheduling import routes as scheduling
from server.scheduling.reminders import reminders_ctx
from server.settings import Settings
from server.signalling import handler as signalling
from server.signalling.rooms import LiveRooms

log = logging.getLogger(__name__)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = settings.effective_database_url
    if settings.migrate_on_start:
        await upgrade(url)
    engine = create_engine(url)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    yield
    await engine.dispose()


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    bus: Bus
    if settings.redis_url:
        from server.bus.redis import RedisBus

        bus = RedisBus(settings.redis_url)
    else:
        bus = LocalBus()
    app[BUS] = bus
    yield
    await bus.close()


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    """Fire-and-forget work (confirmations) finishes, or is cancelled, before the database closes."""
    yield
    background: set[asyncio.Task[None]] = app[BACKGROUND]
    tasks = list(background)
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:
            task.cancel()


async def media_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    config = IceConfig(
        servers=tuple(IceServerConfig(s.urls, s.username, s.credential) for s in settings.ice_servers),
        host_addresses=tuple(settings.ice_host_addresses),
        announced_address=settings.ice_announced_address,
    )
    apply_host_addresses(config.host_addresses)
    app[SFU] = Sfu(config)
    app[LIVE_ROOMS] = LiveRooms()
    yield
    await app[SFU].close()


def create_app(settings: Settings, plugins: list[Plugin] | None = None) -> web.Application:
    # Uploads (documents) are the largest bodies; everything else is far below.
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.document_max_bytes + 1024 * 1024)
    app[SETTINGS] = settings
    app[SECRET] = settings.signing_secret()
    app[TRANSLATOR] = Translator()
    app[PLUGINS] = load_plugins() if plugins is None else plugins
    app[NOTIFIERS] = notifiers_from(settings)
    app[BACKGROUND] = set()
    app[ROOM_CHECKS] = []
    app[whip.HTTP_SESSIONS] = whip.HttpSessions()
    app[DOCUMENT_STORAGE] = LocalStorage(settings.data_dir / "documents")
    # export_ctx after database_ctx: contexts close in reverse, so exports stop before the database closes.
    app.cleanup_ctx.extend([database_ctx, background_ctx, bus_ctx, media_ctx, export_ctx])
    if settings.reminders_enabled:
        app.cleanup_ctx.append(reminders_ctx)
    if settings.retention_enabled:
        app.cleanup_ctx.append(retention_ctx(settings.retention_interval_seconds))
    app[CONNECTIONS] = weakref.WeakSet()
    app[SESSION_CACHE] = SessionCache()
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(signalling.close_all)
    app.router.add_routes(api.routes)
    app.router.add_routes(signalling.routes)
    app.router.add_routes(whip.routes)
    app.router.add_routes(fhir.routes)
    app.router.add_routes(scheduling.routes)
    app.router.add_routes(feeds.routes)
    app.router.add_routes(series_routes.routes)
    app.router.add_routes(documents.routes)
    for plugin in app[PLUGINS]:
        plugin.setup(app)
    return app
