"""Chat between the patient and the clinic about one visit: in the waiting room (before the patient
has a room token) and during the call. Polled, like the waiting room, so it survives weak links."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from clinics import attachments
from clinics.attachments import chat_items
from clinics.models import VisitMessage
from clinics.visits import ACTIVE, is_staff, visit_of
from server.errors import ApiError
from server.keys import SESSIONS
from server.records.audit import Outcome, audit, audit_row
from server.requestctx import USER, audit_context
from server.validation import parse_body

routes = web.RouteTableDef()
routes.post("/api/clinics/encounters/{encounter_id}/attachments")(attachments.upload)
routes.get("/api/clinics/encounters/{encounter_id}/attachments/{document_id}")(attachments.download)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)


def message_json(message: VisitMessage) -> dict[str, object]:
    """A text message; images and PDFs are items of the same shape with an ``attachment``
    (clinics/attachments.py)."""
    return {"id": message.id, "sender_name": message.sender_name, "from_clinic": message.from_clinic,
            "text": message.text, "sent_at": message.sent_at.isoformat()}


@routes.post("/api/clinics/encounters/{encounter_id}/messages")
async def send_message(request: web.Request) -> web.Response:
    encounter = await visit_of(request, "clinic.chat.send")
    body = await parse_body(request, MessageIn)
    if encounter.status not in ACTIVE:
        raise ApiError(409, "visit_closed", "this visit has ended")
    user = request[USER]
    async with request.app[SESSIONS].begin() as db:
        message = VisitMessage(encounter_id=encounter.id, sender_id=user.id, sender_name=user.display_name,
                               from_clinic=is_staff(user, encounter.tenant_id), text=body.text.strip())
        db.add(message)
        await db.flush()
        db.add(audit_row(audit_context(request), "clinic.chat.send", Outcome.SUCCESS, target_type="encounter",
                         target_id=encounter.id, tenant_id=encounter.tenant_id))
    return web.json_response(message_json(message), status=201)


@routes.get("/api/clinics/encounters/{encounter_id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    """Messages and attachments after ``after`` (ISO time of the last one seen), oldest first."""
    encounter = await visit_of(request, "clinic.chat.read")
    query = select(VisitMessage).where(VisitMessage.encounter_id == encounter.id)
    after = None
    if "after" in request.query:
        try:
            after = datetime.fromisoformat(request.query["after"])
        except ValueError:
            raise ApiError(400, "invalid_query", "after is an ISO 8601 time") from None
        if after.tzinfo is None:
            raise ApiError(400, "invalid_query", "after needs a time zone offset")
        query = query.where(VisitMessage.sent_at > after)
    async with request.app[SESSIONS]() as db:
        messages = (await db.execute(query.order_by(VisitMessage.sent_at).limit(200))).scalars().all()
        files = await chat_items(db, encounter, after)
    items = sorted([*(message_json(m) for m in messages), *files], key=lambda item: str(item["sent_at"]))
    if items:  # polling every few seconds: audit the reads that disclosed something
        await audit(request.app[SESSIONS], audit_context(request), "clinic.chat.read", Outcome.SUCCESS,
                    target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id)
    return web.json_response({"messages": items})
