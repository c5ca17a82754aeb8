"""Plugins: the web layer and the verticals (clinics, classrooms) join the app through the
``caunoi.plugins`` entry-point group, so server/ never imports them (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points

from aiohttp import web

from server.rooms.models import Room


@dataclass(frozen=True)
class Plugin:
    """What a plugin hands the server."""

    name: str
    setup: Callable[[web.Application], None]
    """Adds routes, middlewares or cleanup contexts to the app."""
    models: str | None = None
    """Dotted module holding the plugin's SQLAlchemy models (for Alembic)."""
    seed_demo: Callable[..., Awaitable[None]] | None = None
    """Adds the plugin's demo data: called with (session, demo) by ``caunoi demo``."""
    room_link: Callable[[Room], str] | None = None
    order: int = 100
    extras: dict[str, object] = field(default_factory=dict)


GROUP = "caunoi.plugins"


def load_plugins() -> list[Plugin]:
    plugins = [entry.load() for entry in entry_points(group=GROUP)]
    for plugin in plugins:
        if not isinstance(plugin, Plugin):
            raise TypeError(f"entry point in {GROUP} is not a server.plugins.Plugin: {plugin!r}")
    return sorted(plugins, key=lambda p: (p.order, p.name))


def import_plugin_models() -> None:
    for plugin in load_plugins():
        if plugin.models:
            import_module(plugin.models)
