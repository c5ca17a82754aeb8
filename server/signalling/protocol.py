"""Signalling protocol v1: one pydantic model per message, a discriminated union on ``type``.

Every message from a client is validated here before anything acts on it. docs/protocol.md is
the prose version of this module; keep the two in step.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

PROTOCOL_VERSION = 1
SUBPROTOCOL = "caunoi.v1"
TOKEN_SUBPROTOCOL_PREFIX = "caunoi.token."  # noqa: S105  (a prefix, not a secret)

MAX_SDP_CHARS = 32 * 1024


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- client → server -----------------------------------------------------------------------------


class Join(_Message):
    type: Literal["join"]
    room: str = Field(min_length=1, max_length=64)
    protocol: Literal[1] = 1


TrackSource = Literal["camera", "screen", "microphone"]
"""What a published track carries (as LiveKit's TrackSource): at most one track per source."""


class PublishedTrack(_Message):
    """One media section of a publisher offer and what it carries."""

    mid: str = Field(min_length=1, max_length=32)
    source: TrackSource


class Offer(_Message):
    """The browser's offer on its publisher connection.

    ``tracks`` (optional, added in protocol 1 without breaking older clients) names the source of
    media sections by mid; a section not named keeps its source, or is the camera (video) or the
    microphone (audio).
    """

    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)
    tracks: list[PublishedTrack] | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _one_per_mid_and_source(self) -> Offer:
        mids: set[str] = set()
        sources: set[str] = set()
        for track in self.tracks or ():
            if track.mid in mids:
                raise ValueError(f"track {track.mid!r} is named twice")
            if track.source in sources:
                raise ValueError(f"two tracks are the {track.source!r}: publish one track per source")
            mids.add(track.mid)
            sources.add(track.source)
        return self


class Answer(_Message):
    """The browser's answer to the server's offer on the subscriber connection."""

    type: Literal["answer"]
    sdp: str = Field(min_length=1, max_length=MAX_SDP_CHARS)


class IceCandidate(_Message):
    model_config = ConfigDict(extra="ignore", frozen=True)  # browsers add usernameFragment etc.

    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=32)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)


class Candidate(_Message):
    """A trickled ICE candidate; ``candidate: null`` means end-of-candidates."""

    type: Literal["candidate"]
    target: Literal["publisher", "subscriber"]
    candidate: IceCandidate | None


class Mute(_Message):
    type: Literal["mute"]
    kind: Literal["audio", "video"]
    muted: bool


class VideoPreference(_Message):
    """What this client wants of one publisher's video: "high" (main view), "low" (a thumbnail:
    the lowest simulcast layer) or "off" (audio only, e.g. on a weak link)."""

    type: Literal["video_preference"]
    participant_id: str = Field(min_length=1, max_length=64)
    quality: Literal["high", "low", "off"]


class Leave(_Message):
    type: Literal["leave"]


class Ping(_Message):
    type: Literal["ping"]
    ts: float | None = None


ClientMessage = Annotated[
    Join | Offer | Answer | Candidate | Mute | VideoPreference | Leave | Ping, Field(discriminator="type")
]
client_message = TypeAdapter(ClientMessage)
CLIENT_TYPES = frozenset({"join", "offer", "answer", "candidate", "mute", "video_preference", "leave", "ping"})


# --- server → client -----------------------------------------------------------------------------


class ParticipantInfo(_Message):
    id: str
    identity: str
    name: str
    audio_muted: bool = False
    video_muted: bool = False


class Joined(_Message):
    type: Literal["joined"] = "joined"
    protocol: int = PROTOCOL_VERSION
    room: str
    participant: ParticipantInfo
    participants: list[ParticipantInfo]
    ice_servers: list[dict[str, object]]


class ServerAnswer(_Message):
    type: Literal["answer"] = "answer"
    sdp: str


class TrackRef(_Message):
    mid: str
    participant_id: str
    kind: Literal["audio", "video"]
    source: TrackSource


class ServerOffer(_Message):
    type: Literal["offer"] = "offer"
    sdp: str
    tracks: list[TrackRef]


class ServerCandidate(_Message):
    type: Literal["candidate"] = "candidate"
    target: Literal["publisher", "subscriber"]
    candidate: IceCandidate | None


class ParticipantJoined(_Message):
    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


class ParticipantLeft(_Message):
    type: Literal["participant_left"] = "participant_left"
    participant_id: str


class MuteChanged(_Message):
    type: Literal["mute"] = "mute"
    participant_id: str
    kind: Literal["audio", "video"]
    muted: bool


class Pong(_Message):
    type: Literal["pong"] = "pong"
    ts: float | None = None


class Error(_Message):
    type: Literal["error"] = "error"
    code: str
    message: str


# Error codes (docs/protocol.md lists them with their meaning).
INVALID_JSON = "invalid_json"
UNKNOWN_TYPE = "unknown_type"
INVALID_MESSAGE = "invalid_message"
NOT_JOINED = "not_joined"
ALREADY_JOINED = "already_joined"
WRONG_ROOM = "wrong_room"
TOO_MANY_ERRORS = "too_many_errors"
REPLACED = "replaced"
INTERNAL = "internal_error"
