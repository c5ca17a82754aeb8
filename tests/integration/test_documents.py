"""Versioned documents over HTTP: text and files, content checks, versions, signatures, access."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from server.demo import Demo
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from tests.conftest import login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def note(demo: Demo, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {"tenant_id": demo.facility.id, "kind": "note", "title": "Phiếu khám từ xa",
                               "subject_type": "patient", "subject_id": demo.users["patient1"].id,
                               "context_type": "encounter", "context_id": "enc-1",
                               "content_type": "text/markdown", "text": "S: ho 3 ngày\nO: …\nA: J06.9\nP: …"}
    body.update(changes)
    return body


async def test_versions_and_signatures(client: TestClient, demo: Demo,
                                       aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    csrf = await login(client, demo.users["doctor"].email)
    headers = {"X-CSRF-Token": csrf}
    created = await client.post("/api/records/documents", headers=headers, json=note(demo))
    assert created.status == 201, await created.text()
    document = await created.json()
    assert document["current_version"] == 1 and document["versions"][0]["content_type"] == "text/markdown"

    signed = await client.post(f"/api/records/documents/{document['id']}/versions/1/sign", headers=headers)
    assert signed.status == 201
    assert (await signed.json())["signer_role"] == "doctor"
    again = await client.post(f"/api/records/documents/{document['id']}/versions/1/sign", headers=headers)
    assert again.status == 409

    changed = await client.post(f"/api/records/documents/{document['id']}/versions", headers=headers,
                                json={"content_type": "text/markdown", "text": "S: ho 3 ngày, sốt nhẹ"})
    assert changed.status == 201 and (await changed.json())["current_version"] == 2
    stale = await client.post(f"/api/records/documents/{document['id']}/versions/1/sign", headers=headers)
    assert stale.status == 409  # version 1 was replaced: sign the current one
    full = await (await client.get(f"/api/records/documents/{document['id']}")).json()
    assert [v["version"] for v in full["versions"]] == [1, 2]
    assert full["versions"][0]["signatures"][0]["sha256"] == full["versions"][0]["sha256"]
    assert full["versions"][1]["signatures"] == []
    old = await client.get(f"/api/records/documents/{document['id']}/versions/1/content")
    assert (await old.text()).startswith("S: ho 3 ngày\n")
    assert old.headers["Content-Security-Policy"] == "sandbox"

    # The patient reads their own record; the other patient and another tenant do not.
    patient = await aiohttp_client(client.server)
    patient_csrf = await login(patient, demo.users["patient1"].email)
    assert (await patient.get(f"/api/records/documents/{document['id']}")).status == 200
    assert (await patient.post(f"/api/records/documents/{document['id']}/versions/2/sign",
                               headers={"X-CSRF-Token": patient_csrf})).status == 403
    assert (await patient.post(f"/api/records/documents/{document['id']}/versions",
                               headers={"X-CSRF-Token": patient_csrf}, json={"text": "x"})).status == 403
    for handle in ("patient2", "teacher"):
        other = await aiohttp_client(client.server)
        await login(other, demo.users[handle].email)
        assert (await other.get(f"/api/records/documents/{document['id']}")).status == 404, handle
        assert (await other.get(f"/api/records/documents/{document['id']}/versions/1/content")).status == 404
        listed = await (await other.get("/api/records/documents",
                                        params={"subject_id": demo.users["patient1"].id})).json()
        assert listed["documents"] == []
    async with client.app[SESSIONS]() as db:
        denied = await db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == Outcome.DENIED, AuditEvent.action.like("records.document.%")))
        reads = await db.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.outcome == Outcome.SUCCESS, AuditEvent.action.in_(["records.document.read",
                                                                          "records.document.content"])))
    assert denied == 4 and reads == 3


async def test_files_are_checked_against_their_bytes(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["nurse"].email)
    meta = note(demo, kind="attachment", title="Ảnh tổn thương da", content_type="image/png", text=None)
    del meta["text"], meta["content_type"]

    async def upload(data: bytes, content_type: str) -> aiohttp.ClientResponse:
        form = aiohttp.FormData()
        form.add_field("metadata", json.dumps(meta), content_type="application/json")
        form.add_field("file", data, filename="da.png", content_type=content_type)
        return await client.post("/api/records/documents", headers={"X-CSRF-Token": csrf}, data=form)

    good = await upload(PNG, "image/png")
    assert good.status == 201, await good.text()
    document = await good.json()
    content = await client.get(f"/api/records/documents/{document['id']}/versions/1/content")
    assert await content.read() == PNG and content.content_type == "image/png"
    assert document["versions"][0]["sha256"] == hashlib.sha256(PNG).hexdigest()

    lying = await upload(b"<script>alert(1)</script>", "image/png")
    assert lying.status == 415
    assert (await lying.json())["error"]["code"] == "content_refused"
    assert (await upload(b"MZ\x90\x00", "application/x-msdownload")).status == 415
    too_big = await upload(PNG + b"\x00" * (10 * 1024 * 1024), "image/png")
    assert too_big.status in (413,)


async def test_bad_requests(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["doctor"].email)
    headers = {"X-CSRF-Token": csrf}
    cases = [
        (note(demo, subject_id=demo.users["teacher"].id), 422),  # not a patient of this facility
        (note(demo, tenant_id=demo.school.id), 404),  # a doctor writes nothing at a school
        (note(demo, kind="gossip"), 400),
        (note(demo, text=None), 400),
        (note(demo, content_type="text/html", text="<b>x</b>"), 415),
    ]
    for body, status in cases:
        response = await client.post("/api/records/documents", headers=headers, json=body)
        assert response.status == status, (body, await response.text())
    assert (await client.get("/api/records/documents")).status == 400
