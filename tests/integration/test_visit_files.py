"""Images and PDFs in a visit's chat: upload, download, the limits, who may see them, the audit trail.

Runs on SQLite and PostgreSQL. The size cap is lowered to 64 KiB so that "too large" is cheap to send.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from server.records.documents.models import Document, DocumentKind, SubjectType
from tests.conftest import login
from tests.integration.fhir_support import World, start_app

MAX_BYTES = 64 * 1024


def png() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"


def form(data: bytes, filename: str, content_type: str, name: str = "file") -> FormData:
    body = FormData()
    body.add_field(name, data, filename=filename, content_type=content_type)
    return body


async def browser(aiohttp_client: Callable[..., Awaitable[TestClient]], client: TestClient, world: World,
                  who: str) -> tuple[TestClient, str]:
    other = await aiohttp_client(client.server)
    return other, await login(other, world.users[who].email)


async def open_visit(doctor: TestClient, csrf: str, world: World, patient: str = "patient1") -> str:
    created = await doctor.post(f"/api/clinics/{world.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                json={"patient_id": world.users[patient].id})
    assert created.status == 201, await created.text()
    encounter: str = (await created.json())["id"]
    return encounter


async def upload(who: TestClient, csrf: str, encounter: str, body: FormData) -> Any:
    return await who.post(f"/api/clinics/encounters/{encounter}/attachments", data=body,
                          headers={"X-CSRF-Token": csrf})


async def audit_rows(client: TestClient, action: str) -> list[AuditEvent]:
    async with client.app[SESSIONS]() as db:
        return list((await db.execute(select(AuditEvent).where(AuditEvent.action == action))).scalars().all())


async def test_visit_files(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path,
                           database_url: str) -> None:
    client, world = await start_app(aiohttp_client, tmp_path, database_url, document_max_bytes=MAX_BYTES)
    doctor, doctor_csrf = await browser(aiohttp_client, client, world, "doctor")
    patient, patient_csrf = await browser(aiohttp_client, client, world, "patient1")
    encounter = await open_visit(doctor, doctor_csrf, world)
    other_encounter = await open_visit(doctor, doctor_csrf, world, "patient2")

    # The patient sends a photo; the type comes from the bytes, not from what the client claims.
    image = png()
    sent = await upload(patient, patient_csrf, encounter, form(image, "ảnh vết thương.png", "image/jpeg"))
    assert sent.status == 201, await sent.text()
    item = await sent.json()
    assert item["from_clinic"] is False and item["sender_name"] == world.users["patient1"].display_name
    attachment = item["attachment"]
    assert attachment["content_type"] == "image/png" and attachment["size"] == len(image)
    assert attachment["filename"] == "ảnh vết thương.png"
    # The doctor sends a PDF, then a WebP; a text message goes between.
    pdf = await (await upload(doctor, doctor_csrf, encounter, form(PDF, "../../don-thuoc.pdf", "text/plain"))).json()
    assert pdf["from_clinic"] is True and pdf["attachment"]["filename"] == "don-thuoc.pdf"
    said = await doctor.post(f"/api/clinics/encounters/{encounter}/messages", headers={"X-CSRF-Token": doctor_csrf},
                             json={"text": "Tôi đã xem ảnh."})
    assert said.status == 201
    webp = await upload(doctor, doctor_csrf, encounter, form(WEBP, "x.webp", "application/octet-stream"))
    assert webp.status == 201 and (await webp.json())["attachment"]["content_type"] == "image/webp"

    # Stored as attachments of the patient, linked to the visit.
    async with client.app[SESSIONS]() as db:
        stored = (await db.execute(select(Document).where(Document.context_id == encounter))).scalars().all()
    assert len(stored) == 3 and all(d.kind == DocumentKind.ATTACHMENT and d.subject_type == SubjectType.PATIENT
                                    and d.subject_id == world.users["patient1"].id and d.context_type == "encounter"
                                    for d in stored)

    # Both sides see them in the chat, in order, between the text messages.
    chat = await (await patient.get(f"/api/clinics/encounters/{encounter}/messages")).json()
    kinds = [m["attachment"]["content_type"] if "attachment" in m else m["text"] for m in chat["messages"]]
    assert kinds == ["image/png", "application/pdf", "Tôi đã xem ảnh.", "image/webp"]
    later = await (await doctor.get(f"/api/clinics/encounters/{encounter}/messages",
                                    params={"after": chat["messages"][1]["sent_at"]})).json()
    assert [m.get("attachment", {}).get("content_type") for m in later["messages"]] == [None, "image/webp"]

    # Download: the patient and the facility's staff; an attachment, never cached, sandboxed.
    url = attachment["url"]
    got = await patient.get(url)
    assert got.status == 200 and await got.read() == image
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Cache-Control"] == "private, no-store"
    assert got.headers["Content-Security-Policy"] == "sandbox"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''%E1%BA%A3nh" in disposition
    nurse, _ = await browser(aiohttp_client, client, world, "nurse")
    assert (await nurse.get(url)).status == 200
    assert await (await doctor.get(pdf["attachment"]["url"])).read() == PDF

    # Too large: refused while streaming (413), and up front when the length says so.
    big = await upload(patient, patient_csrf, encounter, form(image + b"\x00" * MAX_BYTES, "big.png", "image/png"))
    assert big.status == 413 and (await big.json())["error"]["code"] == "too_large"
    # Wrong type: the bytes decide (415), whatever the name or the header says.
    for data, name, claimed in [(b"GIF89a" + b"\x00" * 40, "a.png", "image/png"),
                                (b"MZ\x90\x00" + b"\x00" * 60, "tai-lieu.pdf", "application/pdf"),
                                (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.svg", "image/svg+xml"),
                                (b"hello, just text", "a.txt", "text/plain")]:
        refused = await upload(patient, patient_csrf, encounter, form(data, name, claimed))
        assert refused.status == 415, (name, await refused.text())
    # Malformed requests: no file part, not multipart at all.
    misnamed = await upload(patient, patient_csrf, encounter, form(PDF, "a.pdf", "application/pdf", "photo"))
    assert misnamed.status == 400
    not_multipart = await patient.post(f"/api/clinics/encounters/{encounter}/attachments", json={"file": "x"},
                                       headers={"X-CSRF-Token": patient_csrf})
    assert not_multipart.status == 415
    async with client.app[SESSIONS]() as db:
        assert len((await db.execute(select(Document).where(Document.context_id == encounter))).scalars().all()) == 3

    # Another patient of the same facility, and another facility's doctor: 404, as if nothing existed.
    patient2, patient2_csrf = await browser(aiohttp_client, client, world, "patient2")
    stranger, stranger_csrf = await browser(aiohttp_client, client, world, "other_doctor")
    for outsider, csrf in ((patient2, patient2_csrf), (stranger, stranger_csrf)):
        assert (await outsider.get(url)).status == 404
        assert (await upload(outsider, csrf, encounter, form(image, "x.png", "image/png"))).status == 404
        assert (await outsider.get(f"/api/clinics/encounters/{encounter}/messages")).status == 404
    # An attachment asked for through another visit (even one the doctor may see) is not found either.
    assert (await doctor.get(url.replace(encounter, other_encounter))).status == 404
    assert (await doctor.get(f"/api/clinics/encounters/{encounter}/attachments/{'0' * 36}")).status == 404
    # Anonymous: 401.
    assert (await (await aiohttp_client(client.server)).get(url)).status == 401

    # The audit trail: each upload and read, and each refusal, with who did it.
    uploads = await audit_rows(client, "clinic.attachment.upload")
    assert sum(r.outcome == Outcome.SUCCESS for r in uploads) == 3
    refusals = [r for r in uploads if r.outcome == Outcome.DENIED]
    assert {r.actor_id for r in refusals} >= {world.users["patient1"].id, world.users["patient2"].id,
                                              world.users["other_doctor"].id}
    reads = await audit_rows(client, "clinic.attachment.read")
    assert {r.actor_id for r in reads if r.outcome == Outcome.SUCCESS} == {
        world.users["patient1"].id, world.users["nurse"].id, world.users["doctor"].id}
    denied = {r.actor_id for r in reads if r.outcome == Outcome.DENIED}
    assert denied == {world.users["patient2"].id, world.users["other_doctor"].id, world.users["doctor"].id}


async def test_a_closed_visit_takes_no_more_files(aiohttp_client: Callable[..., Awaitable[TestClient]],
                                                  tmp_path: Path, database_url: str) -> None:
    client, world = await start_app(aiohttp_client, tmp_path, database_url)
    doctor, csrf = await browser(aiohttp_client, client, world, "doctor")
    encounter = await open_visit(doctor, csrf, world)
    assert (await upload(doctor, csrf, encounter, form(PDF, "a.pdf", "application/pdf"))).status == 201
    ended = await doctor.post(f"/api/clinics/encounters/{encounter}/end", headers={"X-CSRF-Token": csrf})
    assert ended.status == 200, await ended.text()
    late = await upload(doctor, csrf, encounter, form(PDF, "b.pdf", "application/pdf"))
    assert late.status == 409 and (await late.json())["error"]["code"] == "visit_closed"
    # What was sent stays readable in the visit's history.
    chat = await (await doctor.get(f"/api/clinics/encounters/{encounter}/messages")).json()
    assert [m["attachment"]["filename"] for m in chat["messages"]] == ["a.pdf"]
