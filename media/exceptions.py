"""Errors the media layer raises to its callers, one small class per kind."""


class MediaError(Exception):
    """Base class: the message is safe to show to the client that caused it."""

    code = "media_error"


class InvalidSdp(MediaError):
    code = "invalid_sdp"


class InvalidCandidate(MediaError):
    code = "invalid_candidate"


class NegotiationError(MediaError):
    """An SDP arrived in a state where it cannot be applied (e.g. an answer nobody asked for)."""

    code = "negotiation_error"


class NotAllowed(MediaError):
    code = "not_allowed"


class NotPublished(MediaError):
    """A viewer asked for a participant that publishes nothing (yet)."""

    code = "not_published"


class InvalidTrackSource(MediaError):
    """An offer's track sources are unknown, of the wrong kind, repeated, or name no media section."""

    code = "invalid_track_source"
