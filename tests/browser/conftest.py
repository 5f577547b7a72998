"""Browser tier: Playwright driving Debian's chromium (no browser download).

When a test fails, the page's screenshot and the hub's log are attached to the test output
(and the screenshot is kept under test-output/)."""

from __future__ import annotations

import shutil

import pytest
from support import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-output"
# Chromium's own background traffic is refused by this machine's closed network; turn it off.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # a laptop screen
    page = context.new_page()
    page.set_default_timeout(20_000)
    request.node._page = page
    yield page
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    page = getattr(item, "_page", None)
    if page is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{item.name}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
            report.sections.append(("failing step screenshot", f"{shot} (page {page.url})"))
        except Exception as exc:  # the page may be gone; the log below still helps
            report.sections.append(("failing step screenshot", f"could not take one: {exc}"))
    log = getattr(item, "_hub_log", None)
    if log is not None and log.exists():
        report.sections.append(("hub log (last 80 lines)", "\n".join(log.read_text(errors="replace").splitlines()[-80:])))
