"""What may be stored: content types checked against the bytes themselves, and a size limit."""

from __future__ import annotations

TEXT_TYPES = frozenset({"text/plain", "text/markdown", "application/json"})
# Magic numbers: the client's Content-Type is a claim, the first bytes are evidence.
FILE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
}
WEBP = "image/webp"  # RIFF....WEBP: the container's first four bytes alone would also match WAV and AVI
ALLOWED = TEXT_TYPES | frozenset(FILE_SIGNATURES) | {WEBP}


def sniff(data: bytes) -> str | None:
    """The file type the first bytes show (PDF, JPEG, PNG, WebP), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return next((kind for kind, signatures in FILE_SIGNATURES.items() if data.startswith(signatures)), None)


class ContentRefused(ValueError):
    """The content type is not accepted, does not match the bytes, or the content is too large."""


def check(content_type: str, data: bytes, max_bytes: int) -> str:
    """The normalised content type, or ContentRefused."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in ALLOWED:
        raise ContentRefused(f"content type {kind!r} is not accepted (allowed: {', '.join(sorted(ALLOWED))})")
    if len(data) > max_bytes:
        raise ContentRefused(f"the content is larger than {max_bytes // (1024 * 1024)} MiB")
    if not data:
        raise ContentRefused("the content is empty")
    if kind in TEXT_TYPES:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ContentRefused("text must be UTF-8") from None
    elif sniff(data) != kind:
        raise ContentRefused(f"the bytes are not a {kind} file")
    return kind
