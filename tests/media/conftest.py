"""media/ tests use real aiortc peers; they run inside scripts/netns-run.sh's private namespace."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _inside_private_namespace() -> None:
    if not os.environ.get("CAUNOI_NETNS"):
        pytest.fail("media tests run only inside a private network namespace: use `make e2e`", pytrace=False)
