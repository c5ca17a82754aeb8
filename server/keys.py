"""Typed application state (web.AppKey), in one module."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from media.sfu import Sfu
from server.auth.sessions import SessionCache
from server.bus.base import Bus
from server.i18n import Translator
from server.notify.base import Notifier
from server.plugins import Plugin
from server.records.documents.storage import LocalStorage
from server.settings import Settings
from server.signalling.rooms import LiveRooms

if TYPE_CHECKING:
    from server.signalling.connection import Connection

SETTINGS = web.AppKey("settings", Settings)
SECRET = web.AppKey("secret", str)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
SESSION_CACHE = web.AppKey("session_cache", SessionCache)
BUS = web.AppKey("bus", Bus)
SFU = web.AppKey("sfu", Sfu)
LIVE_ROOMS = web.AppKey("live_rooms", LiveRooms)
PLUGINS = web.AppKey("plugins", list[Plugin])
TRANSLATOR = web.AppKey("translator", Translator)
DOCUMENT_STORAGE = web.AppKey("document_storage", LocalStorage)
NOTIFIERS = web.AppKey("notifiers", list[Notifier])
BACKGROUND = web.AppKey("background", set[asyncio.Task[None]])
CONNECTIONS = web.AppKey("connections", weakref.WeakSet["Connection"])
