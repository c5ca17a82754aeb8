"""A remote visit end to end over HTTP: one-time join link, waiting room, admission, room token only
after admission, end of visit; walk-ins; access."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient

from server.db.base import utcnow
from server.demo import Demo
from tests.conftest import login, page_csrf


async def give_consent(client: TestClient, csrf: str, encounter_id: str, **extra: object) -> dict[str, object]:
    status = await (await client.get(f"/api/clinics/encounters/{encounter_id}/consent")).json()
    text = status["text"]
    response = await client.post(f"/api/clinics/encounters/{encounter_id}/consent", headers={"X-CSRF-Token": csrf},
                                 json={"purpose": text["purpose"], "text_version": text["version"],
                                       "language": text["language"], "accepted": True, **extra})
    assert response.status == 201, await response.text()
    result: dict[str, object] = await response.json()
    return result


async def test_visit_flow(client: TestClient, demo: Demo,
                          aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    csrf = await login(client, demo.users["doctor"].email)
    created = await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                json={"patient_id": demo.users["patient1"].id,
                                      "scheduled_start": (utcnow() + timedelta(minutes=5)).isoformat()})
    assert created.status == 201, await created.text()
    visit = await created.json()
    assert visit["status"] == "planned" and visit["practitioner_id"] == demo.users["doctor"].id
    link = urlsplit(visit["join_link"]).path

    # The patient has no password: the link logs them in once, and only once.
    phone = await aiohttp_client(client.server)
    opened = await phone.get(link, allow_redirects=False)
    assert opened.status == 302 and opened.headers["Location"] == f"/visit/{visit['id']}"
    me = await (await phone.get("/api/me")).json()
    assert me["id"] == demo.users["patient1"].id
    other_phone = await aiohttp_client(client.server)
    assert (await other_phone.get(link, allow_redirects=False)).status == 410
    assert (await other_phone.get("/join/" + "x" * 43, allow_redirects=False)).status == 410

    # Not admitted yet: no room token for the patient (the doctor gets one).
    patient_csrf = await page_csrf(phone, "/rooms")
    token_url = f"/api/rooms/{visit['room']}/token"
    refused = await phone.post(token_url, headers={"X-CSRF-Token": patient_csrf})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "not_admitted"
    assert (await client.post(token_url, headers={"X-CSRF-Token": csrf})).status == 200

    waiting_url = f"/api/clinics/encounters/{visit['id']}/waiting"
    arrive_url = f"/api/clinics/encounters/{visit['id']}/arrive"
    no_consent = await phone.post(arrive_url, headers={"X-CSRF-Token": patient_csrf})
    assert no_consent.status == 409 and (await no_consent.json())["error"]["code"] == "consent_required"
    await give_consent(phone, patient_csrf, visit["id"])
    arrived = await (await phone.post(arrive_url, headers={"X-CSRF-Token": patient_csrf})).json()
    assert arrived["status"] == "waiting" and arrived["position"] == 1
    state = await (await phone.get(waiting_url)).json()
    assert state["practitioner_status"] == "available" and state["room"] is None  # the room stays hidden

    queue = await (await client.get(f"/api/clinics/{demo.facility.id}/queue")).json()
    assert queue["waiting"] == 1 and queue["encounters"][0]["patient_name"] == demo.users["patient1"].display_name
    assert (await phone.post(f"/api/clinics/encounters/{visit['id']}/admit",
                             headers={"X-CSRF-Token": patient_csrf})).status == 403  # patients cannot admit

    admitted = await client.post(f"/api/clinics/encounters/{visit['id']}/admit", headers={"X-CSRF-Token": csrf})
    assert admitted.status == 200
    state = await (await phone.get(waiting_url)).json()
    assert state["status"] == "in_progress" and state["room"] == visit["room"]
    assert (await phone.post(token_url, headers={"X-CSRF-Token": patient_csrf})).status == 200

    ended = await client.post(f"/api/clinics/encounters/{visit['id']}/end", headers={"X-CSRF-Token": csrf})
    assert (await ended.json())["status"] == "finished"
    assert (await phone.post(token_url, headers={"X-CSRF-Token": patient_csrf})).status == 403

    # Another patient sees nothing of this visit.
    stranger = await aiohttp_client(client.server)
    await login(stranger, demo.users["patient2"].email)
    assert (await stranger.get(waiting_url)).status == 404


async def test_walk_ins_queue_in_order_and_admit_all(client: TestClient, demo: Demo) -> None:
    csrf = await login(client, demo.users["nurse"].email)
    url = f"/api/clinics/{demo.facility.id}/encounters"
    first = await (await client.post(url, headers={"X-CSRF-Token": csrf}, json={
        "patient_id": demo.users["patient1"].id, "practitioner_id": demo.users["doctor"].id, "walk_in": True,
        "scheduled_start": (utcnow() - timedelta(minutes=2)).isoformat()})).json()
    second = await (await client.post(url, headers={"X-CSRF-Token": csrf}, json={
        "patient_id": demo.users["patient2"].id, "practitioner_id": demo.users["doctor"].id, "walk_in": True})).json()
    assert first["status"] == second["status"] == "waiting"
    positions = [(await (await client.get(f"/api/clinics/encounters/{v['id']}/waiting")).json())["position"]
                 for v in (first, second)]
    assert positions == [1, 2]
    bad = await client.post(url, headers={"X-CSRF-Token": csrf},
                            json={"patient_id": demo.users["teacher"].id, "walk_in": True})
    assert bad.status == 422
    doctor_csrf = await login(client, demo.users["doctor"].email)
    admitted = await (await client.post(f"/api/clinics/{demo.facility.id}/admit-all",
                                        headers={"X-CSRF-Token": doctor_csrf})).json()
    assert sorted(admitted["admitted"]) == sorted([first["id"], second["id"]])


async def test_dashboard_and_visit_pages(client: TestClient, demo: Demo,
                                         aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    assert (await client.get(f"/clinic/{demo.facility.id}/dashboard", allow_redirects=False)).status == 302
    csrf = await login(client, demo.users["doctor"].email)
    page = await client.get(f"/clinic/{demo.facility.id}/dashboard")
    assert page.status == 200 and "Lượt khám từ xa hôm nay" in await page.text()
    rooms = await (await client.get("/rooms")).text()
    assert f"/clinic/{demo.facility.id}/dashboard" in rooms
    visit = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users["patient1"].id})).json()
    patient = await aiohttp_client(client.server)
    await login(patient, demo.users["patient2"].email)
    assert (await patient.get(f"/clinic/{demo.facility.id}/dashboard")).status == 404
    assert (await patient.get(f"/visit/{visit['id']}")).status == 404  # not their visit
    owner = await aiohttp_client(client.server)
    await login(owner, demo.users["patient1"].email)
    page = await owner.get(f"/visit/{visit['id']}")
    assert page.status == 200 and "Kiểm tra camera" in await page.text()


async def test_chat_between_patient_and_clinic(client: TestClient, demo: Demo,
                                               aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    csrf = await login(client, demo.users["nurse"].email)
    visit = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users["patient1"].id, "walk_in": True})).json()
    url = f"/api/clinics/encounters/{visit['id']}/messages"
    phone = await aiohttp_client(client.server)
    await phone.get(urlsplit(visit["join_link"]).path)
    patient_csrf = await page_csrf(phone, "/rooms")
    sent = await (await phone.post(url, headers={"X-CSRF-Token": patient_csrf}, json={"text": "Tôi đã đến"})).json()
    assert sent["from_clinic"] is False
    reply = await (await client.post(url, headers={"X-CSRF-Token": csrf}, json={"text": "Chờ 5 phút nhé"})).json()
    assert reply["from_clinic"] is True
    everything = (await (await phone.get(url)).json())["messages"]
    assert [m["text"] for m in everything] == ["Tôi đã đến", "Chờ 5 phút nhé"]
    newer = (await (await phone.get(url, params={"after": sent["sent_at"]})).json())["messages"]
    assert [m["text"] for m in newer] == ["Chờ 5 phút nhé"]
    assert (await phone.post(url, headers={"X-CSRF-Token": patient_csrf}, json={"text": ""})).status == 400
    stranger = await aiohttp_client(client.server)
    stranger_csrf = await login(stranger, demo.users["patient2"].email)
    assert (await stranger.get(url)).status == 404
    assert (await stranger.post(url, headers={"X-CSRF-Token": stranger_csrf}, json={"text": "x"})).status == 404
    doctor_csrf = await login(client, demo.users["doctor"].email)
    await client.post(f"/api/clinics/encounters/{visit['id']}/end", headers={"X-CSRF-Token": doctor_csrf})
    assert (await phone.post(url, headers={"X-CSRF-Token": patient_csrf}, json={"text": "x"})).status == 409


async def test_an_invited_guest_joins_once_the_visit_is_in_progress(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    csrf = await login(client, demo.users["doctor"].email)
    visit = await (await client.post(f"/api/clinics/{demo.facility.id}/encounters", headers={"X-CSRF-Token": csrf},
                                     json={"patient_id": demo.users["patient2"].id, "walk_in": True})).json()
    invited = await client.post(f"/api/clinics/encounters/{visit['id']}/guests", headers={"X-CSRF-Token": csrf},
                                json={"name": "Võ Văn Em", "role": "family", "phone": "0912345678"})
    assert invited.status == 201, await invited.text()
    guest = await invited.json()
    father = await aiohttp_client(client.server)
    opened = await father.get(urlsplit(guest["join_link"]).path, allow_redirects=False)
    assert opened.status == 302 and opened.headers["Location"] == f"/rooms/{visit['room']}"
    father_csrf = await page_csrf(father, "/rooms")
    token_url = f"/api/rooms/{visit['room']}/token"
    assert (await (await father.post(token_url, headers={"X-CSRF-Token": father_csrf})).json())["error"][
        "code"] == "not_admitted"
    await client.post(f"/api/clinics/encounters/{visit['id']}/admit", headers={"X-CSRF-Token": csrf})
    granted = await father.post(token_url, headers={"X-CSRF-Token": father_csrf})
    assert granted.status == 200 and (await granted.json())["grants"]["room_admin"] is False
    # The guest sees nothing else: not the patient's visit data, not other rooms.
    assert (await father.get(f"/api/clinics/encounters/{visit['id']}/waiting")).status == 404
    patient = await aiohttp_client(client.server)
    patient_csrf = await login(patient, demo.users["patient1"].email)
    assert (await patient.post(f"/api/clinics/encounters/{visit['id']}/guests",
                               headers={"X-CSRF-Token": patient_csrf},
                               json={"name": "x", "role": "family"})).status == 404
