"""The ``caunoi`` command: serve, migrate, demo, token, apikey."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from server.settings import Settings, SettingsError, load_settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from server.app import create_app
    from server.logs import AccessLogger, configure_logging

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        settings = load_settings(**overrides)  # validated like the environment variables
    if args.workers < 1:
        print("caunoi serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        return _serve_workers(settings, args.workers)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    if not args.reuse_port:
        print(f"Cầu Nối: {settings.effective_public_url}", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log_class=AccessLogger,
                handler_cancellation=True, reuse_port=args.reuse_port or None)
    return 0


def _serve_workers(settings: Settings, workers: int) -> int:
    """N server processes on one port (SO_REUSEPORT: the kernel spreads connections over them).

    Like N nodes on one machine: they share the database and, through Redis, room presence, so a
    bus in Redis is required. Migrations and the signing secret are prepared here, once, before any
    worker starts; the background jobs (reminders, retention) run in the first worker only.
    """
    import os
    import signal
    import subprocess

    if not settings.redis_url:
        print("caunoi serve: --workers > 1 needs CAUNOI_REDIS_URL (the in-process bus reaches one process "
              "only)", file=sys.stderr)
        return 2
    if settings.migrate_on_start:
        from server.db.migrate import upgrade_sync

        upgrade_sync(settings.effective_database_url)
    settings.signing_secret()  # the embedded default creates its secret file now, not N times at once
    command = [sys.executable, "-m", "server", "serve", "--reuse-port", "--host", settings.host,
               "--port", str(settings.port)]
    children: list[subprocess.Popen[bytes]] = []
    for index in range(workers):
        env = {**os.environ, "CAUNOI_MIGRATE_ON_START": "false"}
        if index > 0:
            env.update(CAUNOI_REMINDERS_ENABLED="false", CAUNOI_RETENTION_ENABLED="false")
        # Own session: a Ctrl-C in the terminal reaches this process only, which stops each worker once.
        children.append(subprocess.Popen(command, env=env, start_new_session=True,  # noqa: S603 (our interpreter)
                                         preexec_fn=_die_with_parent))
    print(f"Cầu Nối: {settings.effective_public_url} ({workers} workers)", flush=True)

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while any(child.poll() is None for child in children):
        for child in children:
            if child.poll() not in (None, 0) and status == 0:
                # One worker died: stop the rest, so that a supervisor sees the failure and restarts.
                status = 1
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    return status


def _die_with_parent() -> None:
    """In a worker, before exec: get SIGTERM if the parent dies (even by SIGKILL), so that no worker
    is left holding the port. Linux only; elsewhere workers outlive a killed parent."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from server.db.migrate import upgrade_sync

    upgrade_sync(settings.effective_database_url)
    print("database is at the latest revision")
    return 0


async def _seed(settings: Settings) -> int:
    from server.db.engine import create_engine, session_factory
    from server.db.migrate import upgrade
    from server.demo import seed_demo
    from server.plugins import load_plugins

    await upgrade(settings.effective_database_url)
    settings.signing_secret()  # the embedded default creates and stores its secret now
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine).begin() as db:
            demo = await seed_demo(db, load_plugins())
    finally:
        await engine.dispose()
    if demo is None:
        print("demo data is already present")
    else:
        print("demo data created")
    from server.demo import DEMO_PASSWORD, PEOPLE

    print(f"\nOpen {settings.effective_public_url} and log in as (password: {DEMO_PASSWORD}):")
    for _handle, email, name, role, _tenant in PEOPLE:
        print(f"  {role.value:<15} {email:<28} {name}")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from server.auth.tokens import Grants, mint_room_token

    grants = Grants(can_publish=args.publish, can_subscribe=args.subscribe, room_admin=args.admin)
    token = mint_room_token(settings.signing_secret(), room=args.room, identity=args.identity, grants=grants,
                            ttl_seconds=args.ttl, name=args.name or args.identity)
    print(token)
    print(f"expires {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(time.time() + args.ttl))}",
          file=sys.stderr)
    return 0


async def _apikey(settings: Settings, args: argparse.Namespace) -> int:
    from server.auth.apikeys import ApiKeyError, create_api_key, revoke_api_key
    from server.db.engine import create_engine, session_factory
    from server.db.migrate import upgrade

    await upgrade(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine).begin() as db:
            if args.revoke:
                revoked = await revoke_api_key(db, args.revoke)
                print(f"revoked key {revoked.prefix}… ({revoked.name})")
                return 0
            key, row = await create_api_key(db, args.user, args.name or "")
    except ApiKeyError as exc:
        print(f"caunoi apikey: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(key)
    print(f"key {row.prefix}… ({row.name}) for {args.user}: shown once, store it now; "
          f"revoke with: caunoi apikey --revoke {row.prefix}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="caunoi", description="Cầu Nối: telemedicine and virtual classrooms")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web, signalling and media server")
    serve.add_argument("--host", help="address to listen on (default: CAUNOI_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: CAUNOI_PORT or 8080)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (SO_REUSEPORT); more than 1 needs CAUNOI_REDIS_URL")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for each worker
    commands.add_parser("migrate", help="bring the database schema to the latest revision")
    commands.add_parser("demo", help="create demo data (a facility, a school, their people)")
    token = commands.add_parser("token", help="print a signed room token (for WHIP/WHEP or test clients)")
    token.add_argument("--room", required=True)
    token.add_argument("--identity", required=True)
    token.add_argument("--name", help="display name (default: the identity)")
    token.add_argument("--publish", action="store_true", help="grant can_publish")
    token.add_argument("--subscribe", action="store_true", help="grant can_subscribe")
    token.add_argument("--admin", action="store_true", help="grant room_admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    apikey = commands.add_parser("apikey", help="print a new API key for a user (FHIR API), or revoke one")
    which = apikey.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", metavar="EMAIL", help="the user the key acts as, with that user's roles")
    which.add_argument("--revoke", metavar="PREFIX", help="revoke the key starting with these 8 characters")
    apikey.add_argument("--name", help="what the key is for (e.g. the client's name)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            return _migrate(settings, args)
        if args.command == "demo":
            return asyncio.run(_seed(settings))
        if args.command == "token":
            return _token(settings, args)
        if args.command == "apikey":
            return asyncio.run(_apikey(settings, args))
    except SettingsError as exc:
        print(f"caunoi: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
