"""Where document files live: a directory under the data dir (an S3-compatible store can implement
the same three methods). Keys are random, not derived from names, so nothing leaks through paths."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key.replace("-", "").replace("_", "").isalnum():
            raise ValueError("invalid storage key")
        return self.root / key[:2] / key

    async def put(self, data: bytes) -> str:
        key = secrets.token_urlsafe(24)
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".part")
            temporary.write_bytes(data)
            temporary.replace(path)  # never a half-written file under the real key

        await asyncio.to_thread(write)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()
