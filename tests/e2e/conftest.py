"""Browser tests: real headless Chromium (Debian's) against the app, inside a private network
namespace made by scripts/netns-run.sh, so that ICE never leaves for this machine's addresses."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from server.app import create_app
from server.demo import DEMO_PASSWORD, Demo
from tests.conftest import make_settings, seed

CHROMIUM = "/usr/bin/chromium"
# Chromium keeps only the last --disable-features switch: repeat Playwright's own list (which stops
# start-up calls to outside hosts) and add WebRtcHideLocalIpsWithMdns, so that ICE candidates carry
# real addresses instead of .local names.
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,"
    "HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,ThirdPartyStoragePartitioning,"
    "AvoidCorsURLLoaderRestartOnRedirect,TcpPortRandomizationWin,OptimizationHints,"
    "NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch"
)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
    f"--disable-features={PLAYWRIGHT_DISABLED_FEATURES},WebRtcHideLocalIpsWithMdns",
]


@pytest.fixture(autouse=True, scope="session")
def _inside_private_namespace() -> None:
    if not os.environ.get("CAUNOI_NETNS"):
        pytest.fail("browser tests run only inside a private network namespace: "
                    "use `make e2e` (scripts/netns-run.sh), never plain pytest", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/services.sh (apt-get install chromium)", pytrace=False)


@pytest.fixture
async def live(aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path) -> tuple[TestServer, Demo]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'e2e.sqlite3'}")
    server = await aiohttp_server(create_app(settings), host="127.0.0.1")
    demo = await seed(server.app)
    return server, demo


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def new_user_page(browser: Browser, live: tuple[TestServer, Demo]) -> Callable[[str], Awaitable[Page]]:
    """A page of its own browser context (own cookies), logged in as the given e-mail."""
    server, _ = live
    contexts: list[BrowserContext] = []

    async def _open(email: str) -> Page:
        context = await browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        await context.grant_permissions(["camera", "microphone"])
        contexts.append(context)
        page = await context.new_page()
        await page.goto(str(server.make_url("/login")))
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", DEMO_PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/rooms")
        return page

    return _open
