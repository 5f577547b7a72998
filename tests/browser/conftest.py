"""Browser tier: Playwright driving Debian's chromium (no browser download).

When a test fails, the page's screenshot and the hub's log are attached to the test output
(and the screenshot is kept under test-output/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browserkit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, browser_hub


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread while the
# browser is open, and the tiers after this one call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found (looked for {CHROMIUM}): the browser tier needs Debian's chromium; "
                    "`make setup` installs it (apt-get install chromium)", pytrace=False)
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


# --- the hub under test ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def providers():
    from integration.fakeproviders import FakeGitHub, FakeOIDC

    gh, oidc = FakeGitHub().start(), FakeOIDC().start()
    yield gh, oidc
    gh.stop()
    oidc.stop()


@pytest.fixture(scope="module")
def hub(providers, tmp_path_factory):
    """The real hub and proxy in local mode (as `make demo`), every login method but dummy enabled."""
    with browser_hub(tmp_path_factory.mktemp("browserhub"), *providers) as h:
        yield h


@pytest.fixture(autouse=True)
def _attach_hub_log(request):
    """Every browser test's failure report carries the hub log (see pytest_runtest_makereport)."""
    if "hub" in request.fixturenames:
        request.node._hub_log = request.getfixturevalue("hub").log_path
