"""The signalling protocol models: what a client may send, and what the server sends back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from server.signalling import protocol as p

VALID_CLIENT_MESSAGES: list[tuple[dict[str, Any], type[BaseModel]]] = [
    ({"type": "join", "room": "phong-kham-1"}, p.Join),
    ({"type": "join", "room": "r", "protocol": 1}, p.Join),
    ({"type": "offer", "sdp": "v=0\r\n"}, p.Offer),
    ({"type": "answer", "sdp": "v=0\r\n"}, p.Answer),
    (
        {
            "type": "candidate",
            "target": "publisher",
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0",
                          "sdpMLineIndex": 0},
        },
        p.Candidate,
    ),
    ({"type": "candidate", "target": "subscriber", "candidate": None}, p.Candidate),
    ({"type": "mute", "kind": "audio", "muted": True}, p.Mute),
    ({"type": "mute", "kind": "video", "muted": False}, p.Mute),
    ({"type": "video_preference", "participant_id": "u1", "quality": "low"}, p.VideoPreference),
    ({"type": "leave"}, p.Leave),
    ({"type": "ping"}, p.Ping),
    ({"type": "ping", "ts": 12.5}, p.Ping),
]


def parse(data: dict[str, Any]) -> BaseModel:
    """Validate one client message the way the connection does."""
    message = p.client_message.validate_python(data)
    assert isinstance(message, BaseModel)
    return message


def error_types(exc: ValidationError) -> set[str]:
    return {str(error["type"]) for error in exc.errors()}


@pytest.mark.parametrize(("data", "expected"), VALID_CLIENT_MESSAGES,
                         ids=[f"{d['type']}-{i}" for i, (d, _) in enumerate(VALID_CLIENT_MESSAGES)])
def test_every_client_message_type_parses_into_its_class(data: dict[str, Any],
                                                         expected: type[BaseModel]) -> None:
    """The discriminator on ``type`` picks the model class, and the fields come through unchanged."""
    message = parse(data)
    assert type(message) is expected
    dumped = message.model_dump()
    for key, value in data.items():
        assert dumped[key] == value


def test_client_types_constant_matches_the_union() -> None:
    """CLIENT_TYPES (used to answer unknown_type) lists exactly the types the union accepts."""
    types = {data["type"] for data, _ in VALID_CLIENT_MESSAGES}
    assert types == p.CLIENT_TYPES


def test_join_defaults_to_protocol_one() -> None:
    message = parse({"type": "join", "room": "abc"})
    assert isinstance(message, p.Join)
    assert message.protocol == 1 == p.PROTOCOL_VERSION


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_join_refuses_any_protocol_but_one(version: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse({"type": "join", "room": "abc", "protocol": version})
    assert any(error["loc"][-1] == "protocol" for error in caught.value.errors())


@pytest.mark.parametrize("room", ["", "x" * 65])
def test_join_room_length_is_bounded(room: str) -> None:
    with pytest.raises(ValidationError):
        parse({"type": "join", "room": room})


@pytest.mark.parametrize(
    "data",
    [
        {"type": "join", "room": "abc", "admin": True},
        {"type": "offer", "sdp": "v=0", "extra": 1},
        {"type": "answer", "sdp": "v=0", "target": "publisher"},
        {"type": "candidate", "target": "publisher", "candidate": None, "x": 1},
        {"type": "mute", "kind": "audio", "muted": True, "participant_id": "someone-else"},
        {"type": "leave", "reason": "bye"},
        {"type": "ping", "ts": 1.0, "pad": "x"},
    ],
    ids=lambda d: d["type"],
)
def test_unknown_fields_are_rejected(data: dict[str, Any]) -> None:
    """extra=forbid: a field the protocol does not define is an error, not silently dropped."""
    with pytest.raises(ValidationError) as caught:
        parse(data)
    assert "extra_forbidden" in error_types(caught.value)


def test_ice_candidate_ignores_browser_extras() -> None:
    """Browsers serialise RTCIceCandidate with usernameFragment etc.; those are dropped, not refused."""
    message = parse({
        "type": "candidate",
        "target": "publisher",
        "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0",
                      "sdpMLineIndex": 0, "usernameFragment": "abcd", "foo": [1, 2]},
    })
    assert isinstance(message, p.Candidate)
    assert message.candidate is not None
    assert message.candidate.sdpMid == "0"
    assert "usernameFragment" not in message.candidate.model_dump()


def test_candidate_null_means_end_of_candidates() -> None:
    message = parse({"type": "candidate", "target": "subscriber", "candidate": None})
    assert isinstance(message, p.Candidate)
    assert message.candidate is None
    assert message.target == "subscriber"


def test_candidate_field_is_required_even_if_null() -> None:
    """Omitting ``candidate`` is not the same as sending null."""
    with pytest.raises(ValidationError) as caught:
        parse({"type": "candidate", "target": "publisher"})
    assert "missing" in error_types(caught.value)


@pytest.mark.parametrize(
    "candidate",
    [
        {"candidate": "x" * 1025},
        {"candidate": "c", "sdpMid": "m" * 33},
        {"candidate": "c", "sdpMLineIndex": -1},
        {"candidate": "c", "sdpMLineIndex": 65},
        {"sdpMid": "0"},
    ],
)
def test_ice_candidate_fields_are_bounded(candidate: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse({"type": "candidate", "target": "publisher", "candidate": candidate})


def test_candidate_target_must_be_publisher_or_subscriber() -> None:
    with pytest.raises(ValidationError):
        parse({"type": "candidate", "target": "everyone", "candidate": None})


@pytest.mark.parametrize("kind", ["offer", "answer"])
def test_sdp_at_the_limit_is_accepted_and_one_more_char_is_rejected(kind: str) -> None:
    accepted = parse({"type": kind, "sdp": "v" * p.MAX_SDP_CHARS})
    assert isinstance(accepted, p.Offer | p.Answer)
    assert len(accepted.sdp) == p.MAX_SDP_CHARS
    with pytest.raises(ValidationError) as caught:
        parse({"type": kind, "sdp": "v" * (p.MAX_SDP_CHARS + 1)})
    assert "string_too_long" in error_types(caught.value)


@pytest.mark.parametrize("kind", ["offer", "answer"])
def test_empty_sdp_is_rejected(kind: str) -> None:
    with pytest.raises(ValidationError):
        parse({"type": kind, "sdp": ""})


@pytest.mark.parametrize(
    "data",
    [
        {"type": "nope"},
        {"room": "abc"},
        {"type": "joined", "room": "abc"},
        {"type": "mute", "kind": "screen", "muted": True},
        {"type": "mute", "kind": "audio", "muted": "perhaps"},
        {"type": "ping", "ts": "soon"},
    ],
)
def test_malformed_messages_are_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(data)


def test_unknown_type_is_reported_as_a_union_tag_error() -> None:
    """The discriminator refuses an unknown tag outright instead of trying every member."""
    with pytest.raises(ValidationError) as caught:
        parse({"type": "subscribe", "room": "abc"})
    assert error_types(caught.value) == {"union_tag_invalid"}


def test_messages_are_immutable() -> None:
    message = parse({"type": "mute", "kind": "audio", "muted": True})
    with pytest.raises(ValidationError):
        message.muted = False  # type: ignore[attr-defined]


# --- server → client ----------------------------------------------------------------------------


def wire(message: BaseModel) -> dict[str, Any]:
    """What goes out on the websocket: the JSON form, parsed back."""
    data = json.loads(message.model_dump_json())
    assert isinstance(data, dict)
    return data


PARTICIPANT = p.ParticipantInfo(id="p1", identity="u1", name="Bác sĩ An")


def test_joined_serialises_with_type_protocol_and_participants() -> None:
    data = wire(p.Joined(room="r1", participant=PARTICIPANT, participants=[PARTICIPANT],
                         ice_servers=[{"urls": ["stun:ice.example.org"]}]))
    assert data["type"] == "joined"
    assert data["protocol"] == 1
    assert data["room"] == "r1"
    assert data["participant"] == {"id": "p1", "identity": "u1", "name": "Bác sĩ An",
                                   "audio_muted": False, "video_muted": False}
    assert data["participants"] == [data["participant"]]
    assert data["ice_servers"] == [{"urls": ["stun:ice.example.org"]}]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (p.ServerAnswer(sdp="v=0"), {"type": "answer", "sdp": "v=0"}),
        (
            p.ServerOffer(sdp="v=0", tracks=[p.TrackRef(mid="0", participant_id="p1", kind="video", source="screen")]),
            {"type": "offer", "sdp": "v=0",
             "tracks": [{"mid": "0", "participant_id": "p1", "kind": "video", "source": "screen"}]},
        ),
        (p.ServerCandidate(target="publisher", candidate=None),
         {"type": "candidate", "target": "publisher", "candidate": None}),
        (p.ParticipantLeft(participant_id="p1"), {"type": "participant_left", "participant_id": "p1"}),
        (p.MuteChanged(participant_id="p1", kind="audio", muted=True),
         {"type": "mute", "participant_id": "p1", "kind": "audio", "muted": True}),
        (p.Pong(ts=3.0), {"type": "pong", "ts": 3.0}),
        (p.Pong(), {"type": "pong", "ts": None}),
        (p.Error(code=p.INVALID_MESSAGE, message="sdp: too long"),
         {"type": "error", "code": "invalid_message", "message": "sdp: too long"}),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseModel) else "",
)
def test_server_messages_serialise_with_their_type(message: BaseModel, expected: dict[str, Any]) -> None:
    assert wire(message) == expected


def test_participant_joined_serialises_with_type_and_participant() -> None:
    data = wire(p.ParticipantJoined(participant=PARTICIPANT.model_copy(update={"audio_muted": True})))
    assert data["type"] == "participant_joined"
    assert data["participant"]["id"] == "p1"
    assert data["participant"]["audio_muted"] is True


def test_server_message_type_cannot_be_overridden() -> None:
    """The ``type`` of a server message is a literal: building one with another type fails."""
    with pytest.raises(ValidationError):
        p.Error(type="pong", code="x", message="y")  # type: ignore[arg-type]


def test_server_candidate_round_trips_through_the_client_model() -> None:
    """A candidate the server sends is one the client model accepts back unchanged."""
    sent = p.ServerCandidate(target="subscriber",
                             candidate=p.IceCandidate(candidate="candidate:1 1 udp 1 127.0.0.1 9 typ host",
                                                      sdpMid="1", sdpMLineIndex=1))
    received = parse(wire(sent))
    assert isinstance(received, p.Candidate)
    assert received.candidate == sent.candidate


def test_video_preference() -> None:
    message = p.client_message.validate_python({"type": "video_preference", "participant_id": "u1", "quality": "off"})
    assert isinstance(message, p.VideoPreference) and message.quality == "off"
    for bad in ({"quality": "4k"}, {"quality": "low", "participant_id": ""}, {"quality": "low", "extra": 1}):
        with pytest.raises(ValidationError):
            p.client_message.validate_python({"type": "video_preference", "participant_id": "u1", **bad})


def test_an_offer_may_name_its_track_sources() -> None:
    old = p.client_message.validate_python({"type": "offer", "sdp": "v=0"})
    assert isinstance(old, p.Offer) and old.tracks is None  # clients from before sources still work
    offer = p.client_message.validate_python({"type": "offer", "sdp": "v=0", "tracks": [
        {"mid": "0", "source": "camera"}, {"mid": "1", "source": "screen"}, {"mid": "2", "source": "microphone"}]})
    assert isinstance(offer, p.Offer) and offer.tracks is not None
    assert [(t.mid, t.source) for t in offer.tracks] == [("0", "camera"), ("1", "screen"), ("2", "microphone")]


@pytest.mark.parametrize(("tracks", "words"), [
    ([{"mid": "0", "source": "whiteboard"}], "source"),
    ([{"mid": "0", "source": "screen"}, {"mid": "1", "source": "screen"}], "one track per source"),
    ([{"mid": "0", "source": "camera"}, {"mid": "0", "source": "screen"}], "named twice"),
    ([{"mid": "", "source": "camera"}], "mid"),
    ([{"mid": "0", "source": "camera", "extra": 1}], "extra"),
    ([{"mid": str(i), "source": "camera"} for i in range(17)], "16"),
])
def test_bad_track_sources_are_refused(tracks: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        p.client_message.validate_python({"type": "offer", "sdp": "v=0", "tracks": tracks})
