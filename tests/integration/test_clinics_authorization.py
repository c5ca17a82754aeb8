"""Authorization matrix for the clinics vertical: every clinics route × every role × both facilities.

Each role runs against a fresh database holding one visit of patient1 at the demo station (consent
given, admitted, a chat message, a saved record) and a second facility with its own admin, doctor and
patient. Outsiders get 404 — never a hint that the thing exists — and each such denial is audited;
anonymous callers get 401 from the API, 403 on unsafe methods (no session, so no CSRF token) and a login
redirect from pages. A route that is not in the table fails the completeness test: a new route needs
its row here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from clinics.demo import HOSPITAL_SLUG
from server.app import create_app
from server.auth.models import Tenant
from server.keys import SESSIONS
from server.records.audit import AuditEvent, Outcome
from tests.conftest import login, make_settings, seed
from tests.integration.fhir_support import World, build_world
from tests.integration.test_visit_record import RECORD
from tests.integration.test_visits import give_consent

ROLES = ["anonymous", "facility_admin", "doctor", "nurse", "patient1", "patient2", "other_admin",
         "other_doctor", "patient3", "teacher", "platform_admin"]
STAFF = {"facility_admin", "doctor", "nurse"}
CLINICAL = {"doctor", "nurse"}
OTHER_STAFF = {"other_admin", "other_doctor"}


@dataclass
class Case:
    method: str
    route: str  # the route's template as registered, to check that every route has a row
    path: str
    allowed: dict[str, int]  # role → status for those who may
    json: Any = None
    forbidden: set[str] = field(default_factory=set)  # who sees the thing but may not do this: 403
    anonymous: int | None = None  # default: 401 for the API, 403 for unsafe methods, 302 for pages

    def expected(self, role: str) -> int:
        if role == "anonymous":
            if self.anonymous is not None:
                return self.anonymous
            if not self.path.startswith("/api/"):
                return 302
            return 401 if self.method == "GET" else 403
        if role in self.allowed:
            return self.allowed[role]
        return 403 if role in self.forbidden else 404


def each(roles: set[str], status: int) -> dict[str, int]:
    return {role: status for role in roles}


@dataclass
class Visit:
    encounter: str
    consent: str
    document: str
    department: str
    consultation: str


async def open_visit(client: TestClient, aiohttp_client: Callable[..., Awaitable[TestClient]], world: World) -> Visit:
    """patient1's visit at the demo station: consent, arrival, admission, a message and a record."""
    doctor = await aiohttp_client(client.server)
    doctor_csrf = await login(doctor, world.users["doctor"].email)
    patient = await aiohttp_client(client.server)
    patient_csrf = await login(patient, world.users["patient1"].email)
    created = await doctor.post(f"/api/clinics/{world.facility.id}/encounters", headers={"X-CSRF-Token": doctor_csrf},
                                json={"patient_id": world.users["patient1"].id})
    assert created.status == 201, await created.text()
    encounter = (await created.json())["id"]
    consent = await give_consent(patient, patient_csrf, encounter)
    base = f"/api/clinics/encounters/{encounter}"
    assert (await patient.post(f"{base}/arrive", headers={"X-CSRF-Token": patient_csrf})).status == 200
    assert (await patient.post(f"{base}/messages", headers={"X-CSRF-Token": patient_csrf},
                               json={"text": "Tôi đã vào phòng chờ"})).status == 201
    assert (await doctor.post(f"{base}/admit", headers={"X-CSRF-Token": doctor_csrf})).status == 200
    saved = await doctor.put(f"{base}/record", headers={"X-CSRF-Token": doctor_csrf}, json=RECORD)
    assert saved.status == 200, await saved.text()
    admin = await aiohttp_client(client.server)
    admin_csrf = await login(admin, world.users["facility_admin"].email)
    department = await admin.post(f"/api/clinics/{world.facility.id}/departments", headers={"X-CSRF-Token": admin_csrf},
                                  json={"name": "Phòng Khám ngoài giờ"})
    assert department.status == 201
    # A hội chẩn about patient1, asked of the demo's city hospital (the demo seeds the data-sharing consent).
    async with client.app[SESSIONS]() as db:
        hospital = await db.scalar(select(Tenant.id).where(Tenant.slug == HOSPITAL_SLUG))
    consultation = await doctor.post(f"/api/clinics/{world.facility.id}/consultation-requests",
                                     headers={"X-CSRF-Token": doctor_csrf}, json={
                                         "consulted_tenant_id": hospital, "department": "Khoa Nội tim mạch",
                                         "patient_id": world.users["patient1"].id, "reason": "Tăng huyết áp kháng trị",
                                         "questions": ["Có cần chuyển tuyến không?"]})
    assert consultation.status == 201, await consultation.text()
    return Visit(encounter=encounter, consent=str(consent["id"]), document=(await saved.json())["document_id"],
                 department=(await department.json())["id"], consultation=(await consultation.json())["id"])


def cases(world: World, visit: Visit) -> list[Case]:
    """In order: reads, then refused writes (invalid bodies: 400 proves the caller got past the
    authorization check without changing anything), then the writes that change the visit."""
    f, o = world.facility.id, world.other.id
    e = f"/api/clinics/encounters/{visit.encounter}"
    patient1 = world.users["patient1"].id
    k = f"/api/clinics/consultation-requests/{visit.consultation}"
    return [
        # The facility and its patients.
        Case("GET", "/api/clinics/{tenant_id}/consultations", f"/api/clinics/{f}/consultations", each(STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/consultations", f"/api/clinics/{o}/consultations",
             each(OTHER_STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/profile", f"/api/clinics/{f}/profile", each(STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/parents", f"/api/clinics/{f}/parents",
             {**each(STAFF, 200), "platform_admin": 200}),
        Case("GET", "/api/clinics/{tenant_id}/patients", f"/api/clinics/{f}/patients?q=Ph", each(STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/patients/{patient_id}", f"/api/clinics/{f}/patients/{patient1}",
             {**each(STAFF, 200), "patient1": 200}),
        Case("GET", "/api/clinics/{tenant_id}/queue", f"/api/clinics/{f}/queue", each(STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/queue", f"/api/clinics/{o}/queue", each(OTHER_STAFF, 200)),
        # The visit.
        Case("GET", "/api/clinics/encounters/{encounter_id}/waiting", f"{e}/waiting",
             {**each(STAFF, 200), "patient1": 200}),
        Case("GET", "/api/clinics/encounters/{encounter_id}/messages", f"{e}/messages",
             {**each(STAFF, 200), "patient1": 200}),
        Case("GET", "/api/clinics/encounters/{encounter_id}/consent", f"{e}/consent", {"patient1": 200}),
        # An attachment that is not of this visit: not found for everyone (the found case: test_visit_files.py).
        Case("GET", "/api/clinics/encounters/{encounter_id}/attachments/{document_id}",
             f"{e}/attachments/{'0' * 36}", {}),
        Case("GET", "/api/clinics/encounters/{encounter_id}/record", f"{e}/record",
             {**each(STAFF, 200), "patient1": 409}),  # the patient: only the summary, after the visit
        Case("GET", "/api/clinics/encounters/{encounter_id}/record.pdf", f"{e}/record.pdf",
             {**each(STAFF, 200), "patient1": 409}),
        # The record and call pages (the visit is in progress), the patient's call and summary.
        Case("GET", "/clinic/encounters/{encounter_id}/record", f"/clinic/encounters/{visit.encounter}/record",
             each(STAFF, 200)),
        Case("GET", "/clinic/encounters/{encounter_id}/call", f"/clinic/encounters/{visit.encounter}/call",
             {"doctor": 200}),  # the call is for the room's members: the doctor who hosts it
        Case("GET", "/visit/{encounter_id}/call", f"/visit/{visit.encounter}/call", {"patient1": 200}),
        Case("GET", "/visit/{encounter_id}/summary", f"/visit/{visit.encounter}/summary",
             {**each(STAFF, 200), "patient1": 200}),  # the patient's says "after the visit" until it ends
        # Hội chẩn, as seen from the requesting station (the hospital's side: tests/integration/test_consultation.py).
        Case("GET", "/api/clinics/{tenant_id}/consultation-targets", f"/api/clinics/{f}/consultation-targets",
             each(STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/consultation-targets", f"/api/clinics/{o}/consultation-targets",
             each(OTHER_STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/consultation-requests", f"/api/clinics/{f}/consultation-requests",
             each(STAFF, 200)),
        Case("GET", "/api/clinics/consultation-requests/{consultation_id}", k, each(STAFF, 200)),
        Case("GET", "/api/clinics/consultation-requests/{consultation_id}/people", f"{k}/people", each(STAFF, 200)),
        Case("GET", "/api/clinics/consultation-requests/{consultation_id}/attachments/{document_id}",
             f"{k}/attachments/{'0' * 36}", {}),
        # No minutes yet: 404 for the station's staff too (not a denial), and for everyone else (a denial).
        Case("GET", "/api/clinics/consultation-requests/{consultation_id}/minutes", f"{k}/minutes", each(STAFF, 404)),
        Case("GET", "/api/clinics/consultation-requests/{consultation_id}/minutes.pdf", f"{k}/minutes.pdf",
             each(STAFF, 404)),
        Case("GET", "/clinic/{tenant_id}/consultations", f"/clinic/{f}/consultations", each(STAFF, 200)),
        Case("GET", "/consultation/{consultation_id}", f"/consultation/{visit.consultation}", each(STAFF, 200)),
        Case("POST", "/api/clinics/{tenant_id}/consultation-requests", f"/api/clinics/{f}/consultation-requests",
             each(STAFF, 400), {}),
        # Only the consulted hospital accepts, declines, schedules, starts and concludes.
        Case("POST", "/api/clinics/consultation-requests/{consultation_id}/accept", f"{k}/accept", {},
             forbidden=STAFF),
        Case("POST", "/api/clinics/consultation-requests/{consultation_id}/decline", f"{k}/decline", {}, {},
             forbidden=STAFF),
        Case("POST", "/api/clinics/consultation-requests/{consultation_id}/schedule", f"{k}/schedule", {}, {},
             forbidden=STAFF),
        Case("POST", "/api/clinics/consultation-requests/{consultation_id}/start", f"{k}/start", {},
             forbidden=STAFF),
        Case("PUT", "/api/clinics/consultation-requests/{consultation_id}/conclusion", f"{k}/conclusion", {}, {},
             forbidden=STAFF),
        Case("POST", "/api/clinics/consultation-requests/{consultation_id}/attachments", f"{k}/attachments",
             each(STAFF, 415), {}),  # JSON, not a file
        Case("POST", "/api/clinics/consultation-requests/{consultation_id}/minutes/sign", f"{k}/minutes/sign",
             each(STAFF, 404), {}),  # no minutes yet: nothing to sign
        # Staff and departments: the administrator's; departments also to staff of other facilities
        # when this one offers telemedicine (the other test facility does not).
        Case("GET", "/api/clinics/{tenant_id}/departments", f"/api/clinics/{f}/departments",
             each(STAFF | OTHER_STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/departments", f"/api/clinics/{o}/departments", each(OTHER_STAFF, 200)),
        Case("GET", "/api/clinics/{tenant_id}/practitioners", f"/api/clinics/{f}/practitioners", each(STAFF, 200)),
        Case("GET", "/clinic/{tenant_id}/staff", f"/clinic/{f}/staff", {"facility_admin": 200}),
        Case("POST", "/api/clinics/{tenant_id}/departments", f"/api/clinics/{f}/departments", {"facility_admin": 400},
             {}),
        Case("PATCH", "/api/clinics/departments/{department_id}", f"/api/clinics/departments/{visit.department}",
             {"facility_admin": 400}, {"bogus": 1}),
        Case("POST", "/api/clinics/{tenant_id}/practitioners", f"/api/clinics/{f}/practitioners",
             {"facility_admin": 400}, {}),
        Case("PATCH", "/api/clinics/{tenant_id}/practitioners/{user_id}",
             f"/api/clinics/{f}/practitioners/{world.users['nurse'].id}", {"facility_admin": 400}, {"bogus": 1}),
        Case("POST", "/api/clinics/{tenant_id}/practitioners/{user_id}/password-link",
             f"/api/clinics/{f}/practitioners/{world.users['nurse'].id}/password-link", {"facility_admin": 201}),
        # One's own history: keyed by the session, nothing to guess, so everyone logged in gets theirs.
        Case("GET", "/api/clinics/my/visits", "/api/clinics/my/visits", each(set(ROLES) - {"anonymous"}, 200)),
        Case("GET", "/my/visits", "/my/visits", each(set(ROLES) - {"anonymous"}, 200)),
        # Pages.
        Case("GET", "/visit/{encounter_id}", f"/visit/{visit.encounter}", {"patient1": 200}),
        Case("GET", "/clinic/{tenant_id}/dashboard", f"/clinic/{f}/dashboard", each(STAFF, 200)),
        Case("GET", "/clinic/{tenant_id}/dashboard", f"/clinic/{o}/dashboard", each(OTHER_STAFF, 200)),
        # A link that was never issued: the same answer as a used or expired one (410), for everyone.
        Case("GET", "/join/{token}", "/join/not-a-real-token-0123456789", each(set(ROLES), 410), anonymous=410),
        # Refused writes: invalid bodies.
        Case("PUT", "/api/clinics/{tenant_id}/profile", f"/api/clinics/{f}/profile", {"facility_admin": 400}, {}),
        Case("POST", "/api/clinics/{tenant_id}/parents", f"/api/clinics/{f}/parents", {"platform_admin": 400}, {}),
        Case("POST", "/api/clinics/{tenant_id}/eligibility", f"/api/clinics/{f}/eligibility", each(CLINICAL, 400), {}),
        Case("POST", "/api/clinics/{tenant_id}/patients", f"/api/clinics/{f}/patients", each(STAFF, 400), {}),
        Case("POST", "/api/clinics/{tenant_id}/encounters", f"/api/clinics/{f}/encounters", each(STAFF, 400), {}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/messages", f"{e}/messages",
             {**each(STAFF, 400), "patient1": 400}, {}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/attachments", f"{e}/attachments",
             {**each(STAFF, 415), "patient1": 415}, {}),  # JSON, not multipart
        Case("PUT", "/api/clinics/encounters/{encounter_id}/record", f"{e}/record", each(CLINICAL, 400), {},
             forbidden={"facility_admin", "patient1"}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/guests", f"{e}/guests", each(STAFF, 400), {},
             forbidden={"patient1"}),
        # Writes that change the visit, last.
        Case("POST", "/api/clinics/encounters/{encounter_id}/consent", f"{e}/consent", {"patient1": 201},
             {"purpose": "recording", "text_version": 1, "language": "vi", "accepted": False}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/arrive", f"{e}/arrive",
             {**each(STAFF, 200), "patient1": 200}),  # already in progress: arriving again changes nothing
        Case("POST", "/api/clinics/encounters/{encounter_id}/admit", f"{e}/admit", each(STAFF, 409),
             forbidden={"patient1"}),  # 409: already admitted
        Case("POST", "/api/clinics/{tenant_id}/admit-all", f"/api/clinics/{f}/admit-all", each(STAFF, 200)),
        Case("POST", "/api/clinics/consents/{consent_id}/withdraw", f"/api/clinics/consents/{visit.consent}/withdraw",
             {"patient1": 200}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/link", f"{e}/link", each(STAFF, 201),
             forbidden={"patient1"}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/end", f"{e}/end", each(STAFF, 200),
             forbidden={"patient1"}),
        # The station (clinics/station.py, witnessed_consent.py); after "end" above, so the visit is over.
        Case("GET", "/clinic/{tenant_id}/station", f"/clinic/{f}/station", each(CLINICAL, 200)),
        Case("GET", "/api/clinics/{tenant_id}/station", f"/api/clinics/{f}/station", each(CLINICAL, 200)),
        Case("POST", "/api/clinics/{tenant_id}/station/walk-ins", f"/api/clinics/{f}/station/walk-ins",
             each(CLINICAL, 400), {}),
        Case("GET", "/api/clinics/encounters/{encounter_id}/consent/witness", f"{e}/consent/witness",
             each(CLINICAL, 200), forbidden={"patient1", "facility_admin"}),
        Case("POST", "/api/clinics/encounters/{encounter_id}/consent/witness", f"{e}/consent/witness",
             each(CLINICAL, 400), {}, forbidden={"patient1", "facility_admin"}),
        Case("POST", "/api/clinics/consents/{consent_id}/evidence", f"/api/clinics/consents/{visit.consent}/evidence",
             each(CLINICAL, 400), {}),  # 400: a scan comes as multipart
        Case("POST", "/api/clinics/encounters/{encounter_id}/assist", f"{e}/assist",
             each(CLINICAL, 409)),  # 409: the visit has ended
        Case("GET", "/clinic/{tenant_id}/station/assist/{encounter_id}",
             f"/clinic/{f}/station/assist/{visit.encounter}", each(CLINICAL, 303)),  # no session: to the station
        Case("POST", "/clinic/{tenant_id}/station/assist/{encounter_id}/finish",
             f"/clinic/{f}/station/assist/{visit.encounter}/finish", each(CLINICAL, 303), anonymous=403),
    ]


async def denied_count(client: TestClient) -> int:
    async with client.app[SESSIONS]() as db:
        return int((await db.execute(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.outcome == Outcome.DENIED))).scalar_one())


@pytest.fixture
async def world(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path,
                sqlite_url: str) -> tuple[TestClient, World, Visit]:
    client = await aiohttp_client(create_app(make_settings(tmp_path, sqlite_url)))
    world = await build_world(client, await seed(client.app))
    return client, world, await open_visit(client, aiohttp_client, world)


@pytest.mark.parametrize("role", ROLES)
async def test_clinics_route_matrix(role: str, world: tuple[TestClient, World, Visit],
                                    aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    client, w, visit = world
    browser = await aiohttp_client(client.server)
    csrf = "" if role == "anonymous" else await login(browser, w.users[role].email)
    for case in cases(w, visit):
        status = case.expected(role)
        before = await denied_count(client)
        response = await browser.request(case.method, case.path, json=case.json, headers={"X-CSRF-Token": csrf},
                                         allow_redirects=False)
        where = f"{role} {case.method} {case.path}"
        assert response.status == status, f"{where}: {response.status} {await response.text()}, expected {status}"
        if (status == 404 and role != "anonymous" and role not in case.allowed) or status == 410:
            assert await denied_count(client) == before + 1, f"{where}: the denial was not audited"
            if case.path.startswith("/api/"):
                assert (await response.json())["error"]["code"] == "not_found", where
        if status == 302:
            assert response.headers["Location"].startswith("/login"), where


async def test_every_clinics_route_is_in_the_matrix(world: tuple[TestClient, World, Visit]) -> None:
    client, w, visit = world
    covered = {(case.method, case.route) for case in cases(w, visit)}
    registered = {(route.method, route.resource.canonical) for route in client.app.router.routes()
                  if route.resource is not None and route.method != "HEAD"
                  and getattr(route.handler, "__module__", "").startswith("clinics.")}
    assert registered - covered == set(), "clinics routes without a row in the authorization matrix"
    assert covered - registered == set(), "rows for routes that do not exist"
