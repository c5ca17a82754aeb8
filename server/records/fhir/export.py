"""Bulk Data export (FHIR Bulk Data Access, system level): GET /fhir/R4/$export.

A facility or school administrator exports their tenants: every served type but Slot (computed, not
stored), read with the same searches and the same authorization as the API, restricted to the tenants
they administer. The work runs as an asyncio task owned by the application (export_ctx); its state
and NDJSON files live in ``{data_dir}/fhir-exports/{job}/``, so a status request answered by another
worker process on the same data directory sees the same job. Jobs and their files are deleted after
EXPORT_TTL, finished or not, and on DELETE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from server.auth.models import Role
from server.db.base import utcnow
from server.keys import SESSIONS, SETTINGS
from server.records.audit import AuditContext, Outcome, audit_row
from server.records.fhir.queries import Context
from server.records.fhir.resources import instant
from server.records.fhir.search import COUNT_MAX, SearchRequest
from server.records.fhir.types import ResourceType, served
from server.records.scope import Scope

log = logging.getLogger(__name__)
EXPORT_TTL = 3600.0
"""Seconds a job and its files are kept after it started (CAUNOI_FHIR_EXPORT_TTL_SECONDS)."""
SWEEP_SECONDS = 300.0
COMPUTED = frozenset({"Slot"})
"""Not stored, so not exported: slots are computed per schedule and date range."""
EXPORTERS = frozenset({Role.FACILITY_ADMIN, Role.SCHOOL_ADMIN})
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


@dataclass
class Job:
    id: str
    owner: str
    tenants: list[str]
    types: list[str]
    request: str
    transaction_time: str
    created: float
    status: str = "running"  # running, done, failed
    progress: str = "starting"
    output: list[dict[str, Any]] = field(default_factory=list)


def exportable(app: web.Application) -> list[str]:
    return [name for name in served(app) if name not in COMPUTED]


def export_scope(scope: Scope) -> Scope | None:
    """The reader's scope narrowed to the tenants they administer, or None if there are none."""
    tenants = frozenset(t for t, role in scope.roles if role in EXPORTERS)
    if not tenants:
        return None
    return Scope(user_id=scope.user_id, members=tenants, staff=tenants, patients=scope.patients & tenants,
                 audit=tenants, is_patient=False,
                 roles=frozenset((t, role) for t, role in scope.roles if t in tenants))


class ExportJobs:
    """The jobs under one directory, and the tasks of those this process runs."""

    def __init__(self, root: Path, ttl: float = EXPORT_TTL) -> None:
        self.root = root
        self.ttl = ttl
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def _dir(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def load(self, job_id: str) -> Job | None:
        try:
            return Job(**json.loads((self._dir(job_id) / "job.json").read_text()))
        except (KeyError, FileNotFoundError, NotADirectoryError, json.JSONDecodeError, TypeError):
            return None

    def save(self, job: Job) -> None:
        directory = self._dir(job.id)
        if not directory.is_dir():
            return  # deleted (cancelled) meanwhile: do not bring it back
        temporary = directory / "job.json.part"
        temporary.write_text(json.dumps(job.__dict__))
        temporary.replace(directory / "job.json")

    def create(self, owner: str, tenants: list[str], types: list[str], request: str) -> Job:
        job = Job(id=secrets.token_urlsafe(16), owner=owner, tenants=tenants, types=types, request=request,
                  transaction_time=instant(utcnow()), created=time.time())
        self._dir(job.id).mkdir(parents=True)
        self.save(job)
        return job

    def file(self, job: Job, name: str) -> Path | None:
        listed = {entry["file"] for entry in job.output}
        return self._dir(job.id) / name if name in listed else None

    def running_for(self, owner: str) -> bool:
        return any(not task.done() and (job := self.load(job_id)) is not None and job.owner == owner
                   for job_id, task in self.tasks.items())

    def delete(self, job_id: str) -> None:
        task = self.tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
        with contextlib.suppress(KeyError):
            shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Delete jobs older than the TTL; returns how many."""
        now = time.time() if now is None else now
        removed = 0
        if not self.root.is_dir():
            return 0
        for directory in self.root.iterdir():
            job = self.load(directory.name) if JOB_ID.match(directory.name) else None
            started = job.created if job else directory.stat().st_mtime
            if now - started > self.ttl:
                self.delete(directory.name) if job else shutil.rmtree(directory, ignore_errors=True)
                removed += 1
        return removed


EXPORTS = web.AppKey("fhir_exports", ExportJobs)


async def run(app: web.Application, jobs: ExportJobs, job: Job, scope: Scope, context: AuditContext) -> None:
    """Write one NDJSON file per type with resources; audit one row per Patient exported."""
    settings = app[SETTINGS]
    ctx = Context(settings.timezone, settings.effective_public_url)
    directory = jobs.root / job.id
    exported: list[tuple[str, str | None]] = []
    try:
        for number, name in enumerate(job.types, start=1):
            job.progress = f"{name} ({number} of {len(job.types)} types)"
            await asyncio.to_thread(jobs.save, job)
            count = await _write_type(app, directory / f"{name}.ndjson", served(app)[name], scope, ctx, exported)
            if count:
                job.output.append({"type": name, "file": f"{name}.ndjson", "count": count})
        async with app[SESSIONS].begin() as db:
            for patient_id, tenant in exported:
                db.add(audit_row(context, "fhir.export", Outcome.SUCCESS, target_type="Patient",
                                 target_id=patient_id, tenant_id=tenant))
        job.status, job.progress = "done", "done"
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("FHIR export %s failed", job.id)
        job.status, job.progress = "failed", "failed"
    await asyncio.to_thread(jobs.save, job)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


async def _write_type(app: web.Application, path: Path, rtype: ResourceType, scope: Scope, ctx: Context,
                      exported: list[tuple[str, str | None]]) -> int:
    """Page through the type's search, as a client would, appending each page to the file."""
    count, total = 0, 1
    while count < total:
        async with app[SESSIONS]() as db:
            found = await rtype.search(db, scope, SearchRequest(values={}, count=COUNT_MAX, offset=count, items=()),
                                       ctx)
        if not found.page:
            break
        lines = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r, _ in found.page)
        await asyncio.to_thread(_append, path, lines)
        if rtype.name == "Patient":
            exported.extend((r["id"], tenant) for r, tenant in found.page)
        count += len(found.page)
        total = found.total
    return count


def start(app: web.Application, job: Job, scope: Scope, context: AuditContext) -> None:
    jobs = app[EXPORTS]
    task = asyncio.create_task(run(app, jobs, job, scope, context), name=f"fhir-export-{job.id}")
    jobs.tasks[job.id] = task
    task.add_done_callback(lambda _: jobs.tasks.pop(job.id, None))


async def export_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the export tasks and the sweeper; cancels both before the database closes."""
    settings = app[SETTINGS]
    jobs = ExportJobs(settings.data_dir / "fhir-exports", settings.fhir_export_ttl_seconds)
    app[EXPORTS] = jobs

    async def sweeper() -> None:
        while True:
            try:
                await asyncio.to_thread(jobs.sweep)
            except OSError:
                log.exception("sweeping FHIR exports failed")
            await asyncio.sleep(SWEEP_SECONDS)

    sweeping = asyncio.create_task(sweeper(), name="fhir-export-sweeper")
    yield
    tasks = [sweeping, *jobs.tasks.values()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
