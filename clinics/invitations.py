"""Delivering a visit's one-time join link to the patient (or a minor's guardian) through the shared
core's notifiers (SMS through the HTTP gateway, e-mail), and issuing a new link when the first is lost.

The text carries no health data and not even the patient's name: an SMS is read on shared phones.
Delivery runs after the response (a slow gateway must not hold up the clinic), and its outcome per
channel is audited, so staff can see whether the patient was reached.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select, update

from clinics.models import Encounter, JoinLink, PatientProfile
from server.auth.models import Tenant, User
from server.db.base import utcnow
from server.errors import ApiError
from server.i18n import locale_var
from server.keys import BACKGROUND, NOTIFIERS, SESSIONS, SETTINGS, TRANSLATOR
from server.notify.base import Notification, NotifyError
from server.records.audit import AuditContext, Outcome, audit_row
from server.requestctx import USER, audit_context

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
LOCAL_MOBILE = re.compile(r"^0(\d{9})$")  # 0xxxxxxxxx: a Vietnamese mobile number as people write it


def e164(phone: str | None) -> str | None:
    """The number an SMS gateway wants: +84xxxxxxxxx from the local 0xxxxxxxxx; E.164 as it is."""
    if not phone:
        return None
    digits = re.sub(r"[\s.\-()]", "", phone)
    if match := LOCAL_MOBILE.match(digits):
        return f"+84{match.group(1)}"
    return digits if re.fullmatch(r"\+\d{8,15}", digits) else None


def link_message(app: web.Application, locale: str, facility: str, encounter: Encounter, link: str) -> Notification:
    token = locale_var.set(locale)
    try:
        _ = app[TRANSLATOR].gettext
        when = encounter.scheduled_start.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%H:%M %d/%m/%Y")
        subject = _("Your remote visit at {when}").format(when=when)
        body = _("{facility}: your remote visit is at {when}. Open this link on your phone to check the camera "
                 "and enter the waiting room: {link} (it works once).").format(facility=facility, when=when,
                                                                                link=link)
        return Notification(subject=subject, body=body)
    finally:
        locale_var.reset(token)


async def recipient(app: web.Application, encounter: Encounter) -> tuple[str | None, str | None, str]:
    """(phone, e-mail, locale) of whom to tell: a minor's guardian by phone, else the patient."""
    async with app[SESSIONS]() as db:
        user = await db.get(User, encounter.patient_id)
        profile = await db.scalar(select(PatientProfile).where(PatientProfile.user_id == encounter.patient_id,
                                                               PatientProfile.tenant_id == encounter.tenant_id))
    assert user is not None
    locale = user.locale or app[SETTINGS].default_locale
    if profile is not None and profile.guardian_phone:
        return e164(profile.guardian_phone), None, locale
    phone = e164(user.phone) or e164(profile.phone if profile else None)
    email = None if user.email.endswith(".invalid") else user.email
    return phone, email, locale


async def send_link(app: web.Application, context: AuditContext, encounter: Encounter, link: str) -> list[str]:
    """Queue the link's delivery; returns the channels that will try (none: staff must pass it on)."""
    phone, email, locale = await recipient(app, encounter)
    async with app[SESSIONS]() as db:
        tenant = await db.get(Tenant, encounter.tenant_id)
    base = link_message(app, locale, tenant.name if tenant else "", encounter, link)
    notification = Notification(subject=base.subject, body=base.body, email=email, phone=phone)
    return await _deliver(app, context, encounter, notification)


async def send_guest_link(app: web.Application, context: AuditContext, encounter: Encounter, phone: str | None,
                          link: str) -> list[str]:
    """A guest's link by SMS, when staff gave their number; nothing else is known about a guest."""
    number = e164(phone)
    if number is None:
        return []
    async with app[SESSIONS]() as db:
        tenant = await db.get(Tenant, encounter.tenant_id)
    token = locale_var.set(app[SETTINGS].default_locale)
    try:
        _ = app[TRANSLATOR].gettext
        body = _("{facility} invites you to join a remote visit. Open this link on your phone: {link} "
                 "(it works once).").format(facility=tenant.name if tenant else "", link=link)
    finally:
        locale_var.reset(token)
    notification = Notification(subject=body[:60], body=body, phone=number)
    return await _deliver(app, context, encounter, notification)


async def _deliver(app: web.Application, context: AuditContext, encounter: Encounter,
                   notification: Notification) -> list[str]:
    notifiers = [n for n in app[NOTIFIERS] if n.accepts(notification)]

    async def deliver() -> None:
        for notifier in notifiers:
            try:
                await notifier.send(notification)
                outcome = Outcome.SUCCESS
            except NotifyError as exc:
                log.warning("join link for encounter %s via %s failed: %s", encounter.id, notifier.channel, exc)
                outcome = Outcome.FAILURE
            async with app[SESSIONS].begin() as db:
                db.add(audit_row(context, f"clinic.join_link.send.{notifier.channel}", outcome,
                                 target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id))

    task = asyncio.create_task(deliver(), name=f"join-link-{encounter.id}")
    background: set[asyncio.Task[None]] = app[BACKGROUND]
    background.add(task)
    task.add_done_callback(background.discard)
    return [n.channel for n in notifiers]


@routes.post("/api/clinics/encounters/{encounter_id}/link")
async def reissue_link(request: web.Request) -> web.Response:
    """A new join link for the patient (the SMS was lost, the link opened on the wrong phone): the
    patient's unused links stop working, the new one is sent and shown once. Staff only."""
    from clinics.visits import ACTIVE, LINK_VALID_AFTER_START, _digest, is_staff, visit_of

    encounter = await visit_of(request, "clinic.join_link.reissue")
    if not is_staff(request[USER], encounter.tenant_id):
        raise ApiError(403, "forbidden", "only the clinic issues join links")
    if encounter.status not in ACTIVE:
        raise ApiError(409, "visit_closed", "this visit has ended or was cancelled")
    now = utcnow()
    token = secrets.token_urlsafe(32)
    async with request.app[SESSIONS].begin() as db:
        await db.execute(update(JoinLink).where(JoinLink.encounter_id == encounter.id,
                                                JoinLink.guest_user_id.is_(None), JoinLink.used_at.is_(None))
                         .values(expires_at=now))
        db.add(JoinLink(encounter_id=encounter.id, token_hash=_digest(token),
                        expires_at=max(encounter.scheduled_start, now) + LINK_VALID_AFTER_START))
        db.add(audit_row(audit_context(request), "clinic.join_link.reissue", Outcome.SUCCESS,
                         target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id))
    link = f"{request.app[SETTINGS].effective_public_url}/join/{token}"
    sent_via = await send_link(request.app, audit_context(request), encounter, link)
    return web.json_response({"join_link": link, "sent_via": sent_via}, status=201,
                             headers={"Cache-Control": "no-store"})
