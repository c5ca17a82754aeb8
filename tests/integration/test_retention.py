"""Retention on SQLite and PostgreSQL: expired rows and their files are really deleted; each audited."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.app import create_app
from server.db.base import utcnow
from server.demo import Demo
from server.keys import DOCUMENT_STORAGE, SESSIONS
from server.records.audit import AuditEvent
from server.records.documents.models import Document, DocumentVersion
from server.records.retention import apply_retention, policy
from server.scheduling.models import Booking
from tests.conftest import login, make_settings, seed
from tests.integration.scheduling_helpers import book, day_after_tomorrow_at, open_resource

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


@pytest.fixture
async def any_db(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path,
                 database_url: str) -> tuple[TestClient, Demo]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, database_url)))
    return client, await seed(client.app)


async def test_expired_records_and_files_are_deleted_and_audited(any_db: tuple[TestClient, Demo]) -> None:
    client, demo = any_db
    csrf = await login(client, demo.users["doctor"].email)
    form = aiohttp.FormData()
    metadata = {"tenant_id": demo.facility.id, "kind": "attachment", "title": "x", "subject_type": "patient",
                "subject_id": demo.users["patient1"].id}
    form.add_field("metadata", json.dumps(metadata), content_type="application/json")
    form.add_field("file", PNG, filename="x.png", content_type="image/png")
    attachment = await (await client.post("/api/records/documents", headers={"X-CSRF-Token": csrf}, data=form)).json()
    note = await (await client.post("/api/records/documents", headers={"X-CSRF-Token": csrf}, json={
        "tenant_id": demo.facility.id, "kind": "note", "title": "n", "subject_type": "patient",
        "subject_id": demo.users["patient1"].id, "text": "S: …"})).json()
    admin_csrf = await login(client, demo.users["facility_admin"].email)
    resource_id = await open_resource(client, demo, admin_csrf)
    booking = await book(client, admin_csrf, resource_id, day_after_tomorrow_at(9), demo.users["patient1"].id)
    storage = client.app[DOCUMENT_STORAGE]
    async with client.app[SESSIONS]() as db:
        key = await db.scalar(select(DocumentVersion.storage_key).where(
            DocumentVersion.document_id == attachment["id"]))
    assert key and storage.exists(key)

    days = policy({"document.attachment": 30, "booking": 30})
    # Nothing is old enough yet.
    assert (await apply_retention(client.app[SESSIONS], storage, days)).deleted == {}
    # 40 days later the attachment and the booking are past 30 days; the note (10 years) stays.
    report = await apply_retention(client.app[SESSIONS], storage, days, now=utcnow() + timedelta(days=40))
    # …and the admin's login session, which expired 12 h after it began.
    assert report.deleted == {"document.attachment": 1, "booking": 1, "login_session": 1}
    assert not storage.exists(key)  # the file itself is gone
    async with client.app[SESSIONS]() as db:
        remaining = set((await db.execute(select(Document.id))).scalars())
        versions = await db.scalar(select(func.count()).select_from(DocumentVersion).where(
            DocumentVersion.document_id == attachment["id"]))
        bookings = await db.scalar(select(func.count()).select_from(Booking))
        audited = set((await db.execute(select(AuditEvent.target_id).where(
            AuditEvent.action == "retention.delete"))).scalars())
    assert remaining == {note["id"]} and versions == 0 and bookings == 0
    assert {attachment["id"], booking["id"]} <= audited


def test_unknown_record_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown record types"):
        policy({"document.gossip": 3})
    assert policy({})["document.note"] >= 3650  # medical records: at least 10 years
