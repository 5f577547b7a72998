"""A person's journey in a real browser (issue 7): log in, see your team's environments, start one, work, stop.

Playwright drives Debian's chromium against the real hub and proxy in local mode (as `make demo`), with
tests/browser/values.yaml. The login, launch and progress pages are saved to test-output/ on the way
(`make screenshots` copies them into docs/screenshots/).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from browserkit import ARTIFACTS, http_login, password_of
from playwright.sync_api import TimeoutError as PlaywrightTimeout

LAB_TIMEOUT = 120_000  # ms: the first JupyterLab load is slow on a busy 2-core machine
ANNOUNCEMENT = "Friday 18:00-19:00, servers will be stopped."
EXPECTED = {
    "alice": {"cpu-small", "course-cv", "cpu-large"},  # everyone + cv-course
    "bob": {"cpu-small", "course-nlp", "cpu-large"},  # everyone + nlp-course
}
CELL = 'import os; print(os.environ["TEAMHUB_SESSION_END"], os.environ["TEAMHUB_RESOURCE"], os.environ.get("HSA_OVERRIDE_GFX_VERSION"))'


# --- helpers -------------------------------------------------------------------------------------------

def shot(page, name: str) -> None:
    """A picture for people (README): test-output/<name>.png, copied to docs/ by `make screenshots`."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(page, hub, name: str, password: str | None = None) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password or password_of(name))
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)


def offered(page) -> set:
    return set(page.eval_on_selector_all('input[name="resource"]', "els => els.map(e => e.value)"))


def card(page, resource: str):
    return page.locator(".th-card", has=page.locator(f'input[name="resource"][value="{resource}"]'))


def server_process(hub, username: str) -> psutil.Process | None:
    """The JupyterLab process the hub started for `username` (local mode)."""
    hub.track()
    for proc in psutil.Process(hub.proc.pid).children(recursive=True):
        try:
            if proc.environ().get("JUPYTERHUB_USER") == username and "jupyterhub-singleuser" in " ".join(proc.cmdline()):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def wait_stopped(admin_api, username: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not admin_api.get(f"/users/{username}").json().get("servers"):
            return
        time.sleep(0.3)
    raise AssertionError(f"server of {username} still running after {timeout}s")


def run_cell_in_lab(page, lab_url: str, home, expect: str) -> str:
    """Open a notebook in JupyterLab, run its one cell with Shift+Enter, return the output text."""
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": "journey", "metadata": {}, "outputs": [],
                           "source": CELL}],
                "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
                "nbformat": 4, "nbformat_minor": 5}
    (home / "journey.ipynb").write_text(json.dumps(notebook))
    page.goto(f"{lab_url}/tree/journey.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=LAB_TIMEOUT)
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=LAB_TIMEOUT)
    output = page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-OutputArea-output")
    for _attempt in range(4):  # a run sent while the kernel's channels are still connecting can be lost: run it again
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            output.filter(has_text=expect).wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:
            continue
    else:
        raise AssertionError(f"the cell printed no {expect!r} after 4 runs")
    return output.inner_text().strip()


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def admin_api(hub):
    client = http_login(hub, "ada")
    api = hub.api(hub.token(client, "local:ada"))
    yield api
    api.close()


@pytest.fixture(autouse=True)
def no_servers_left(hub, admin_api):
    """Every test starts and ends with no server running (and stops what it started, even when it fails)."""
    yield
    for user in admin_api.get("/users").json():
        if user.get("servers"):
            admin_api.delete(f"/users/{user['name']}/server")
            wait_stopped(admin_api, user["name"])


# --- 1. the login page -----------------------------------------------------------------------------------

def test_login_page_shows_every_enabled_method_and_the_announcement(hub, page):
    page.goto(f"{hub.url}/hub/login")
    assert page.get_by_text(ANNOUNCEMENT).is_visible()
    assert page.get_by_role("heading", name="Physics Lab Jupyter").is_visible()
    assert page.locator("#username_input").is_visible() and page.locator("#password_input").is_visible()
    assert page.get_by_role("button", name="Sign in", exact=True).is_visible()
    assert page.get_by_role("button", name="Sign in with GitHub").is_visible()
    assert page.get_by_role("button", name="Sign in with University SSO").is_visible()
    assert page.locator(".teamhub-dummy").count() == 0  # dummy login is off
    shot(page, "login")


def test_wrong_password_says_so_in_the_page(hub, page):
    login_url = f"{hub.url}/hub/login"
    page.goto(login_url)
    page.fill("#username_input", "alice")
    page.fill("#password_input", "not-her-password")
    page.click("#login_submit")
    error = page.locator(".login_error")
    error.wait_for()
    assert re.search(r"invalid username or password", error.inner_text(), re.I), error.inner_text()
    assert page.locator("#username_input").input_value() == "alice"  # she only retypes the password
    assert "/hub/login" in page.url or "/hub/local/login" in page.url


# --- 2. each team sees its own environments ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_team_member_sees_exactly_their_teams_environments(hub, page, name):
    login(page, hub, name)
    page.goto(f"{hub.url}/hub/spawn")
    page.wait_for_selector("#teamhub-launch")
    assert offered(page) == EXPECTED[name]
    minutes = page.eval_on_selector_all("#th-minutes option", "os => os.map(o => o.value)")
    assert "60" in minutes and "15" in minutes
    large = card(page, "cpu-large")
    assert "8 (up to 8)" in large.inner_text() and "32Gi (up to 32Gi)" in large.inner_text() and "4 h" in large.inner_text()
    if name == "alice":
        cv = card(page, "course-cv")
        text = cv.inner_text()
        assert "4 (up to 8)" in text and "16Gi (up to 24Gi)" in text and "Time limit\n4 h" in text, text
        assert "Computer Vision 2026" in text  # which team's quota it counts against
        assert cv.get_by_label(re.compile("AMD Radeon 8060S")).count() == 1
        assert cv.get_by_label(re.compile("AMD Instinct MI300X")).count() == 1
        assert "Computer Vision 2026" in page.locator(".th-quota").inner_text()
        page.check("#res-course-cv")  # the picture shows an accelerator choice
        assert page.is_checked("#acc-course-cv-strix-halo")  # the first accelerator is preselected
        shot(page, "launch")
    else:
        text = card(page, "course-nlp").inner_text()
        assert "1 × nvidia.com/gpu" in text and "Time limit\n3 h" in text and "NLP 2026" in text, text
        assert page.locator(".th-accs").count() == 0  # bob's environments offer no accelerator choice


# --- 3 + 4. start, work in JupyterLab, stop, start something else --------------------------------------

def test_start_work_stop_and_start_something_else(hub, page, admin_api):
    user = "local:alice"
    login(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("#res-course-cv")
    page.check("#acc-course-cv-strix-halo")
    page.select_option("#th-minutes", "90")
    started = time.time()
    page.get_by_role("button", name="Start").click()

    page.wait_for_url(re.compile(r"/hub/spawn-pending/"), timeout=30_000)
    page.wait_for_function("document.getElementById('progress-message') && "
                           "document.getElementById('progress-message').innerText.includes('Computer Vision course')")
    shot(page, "progress")
    page.wait_for_url(re.compile(r"/user/local(%3A|:)alice/lab"), timeout=LAB_TIMEOUT)
    lab_url = page.url.split("/lab")[0] + "/lab"

    proc = server_process(hub, user)
    assert proc is not None, "no JupyterLab process for alice"
    env = proc.environ()
    assert env["TEAMHUB_RESOURCE"] == "course-cv" and env["TEAMHUB_SESSION_MINUTES"] == "90"
    assert env["HSA_OVERRIDE_GFX_VERSION"] == "11.5.1"  # the strix-halo accelerator's env
    end = env["TEAMHUB_SESSION_END"]
    end_epoch = datetime.fromisoformat(end.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    assert started + 90 * 60 - 10 <= end_epoch <= time.time() + 90 * 60 + 10

    out = run_cell_in_lab(page, lab_url, Path(proc.cwd()), end)
    assert out == f"{end} course-cv 11.5.1", out

    # Stop from the hub's home page.
    page.goto(f"{hub.url}/hub/home")
    page.locator("#stop").click()
    page.locator("#stop").wait_for(state="hidden", timeout=30_000)
    wait_stopped(admin_api, user)
    assert server_process(hub, user) is None

    # A second start: another environment, a shorter session; nothing of the first carries over.
    page.goto(f"{hub.url}/hub/spawn")
    assert page.is_checked("#res-course-cv")  # the page remembers the last choice ...
    page.check("#res-cpu-large")  # ... and she picks something else
    assert page.locator('input[name="accelerator"]:checked').count() == 0
    page.select_option("#th-minutes", "30")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/user/local(%3A|:)alice/lab"), timeout=LAB_TIMEOUT)
    proc = server_process(hub, user)
    env = proc.environ()
    assert env["TEAMHUB_RESOURCE"] == "cpu-large" and env["TEAMHUB_SESSION_MINUTES"] == "30"
    assert "HSA_OVERRIDE_GFX_VERSION" not in env
    info = admin_api.get(f"/users/{user}").json()["servers"][""]["state"]["teamhub"]
    assert (info["resource"], info["accelerator"], info["minutes"]) == ("cpu-large", None, 30)
    out = run_cell_in_lab(page, lab_url, Path(proc.cwd()), env["TEAMHUB_SESSION_END"])
    assert out == f"{env['TEAMHUB_SESSION_END']} cpu-large None", out

    page.goto(f"{hub.url}/hub/home")
    page.locator("#stop").click()
    wait_stopped(admin_api, user)


# --- 5. refusals read as sentences in the page ----------------------------------------------------------

def assert_readable_refusal(page, words: str) -> None:
    body = page.locator("body").inner_text()
    assert words in body, body[:1500]
    for ugly in ("Traceback", "500 : Internal Server Error", "HTTPError", "%%"):
        assert ugly not in body, body[:1500]


def test_an_over_quota_start_says_why(hub, page, admin_api):
    # erin (workshop team, maxServers: 1) already has a server; frank of the same team is refused.
    erin = http_login(hub, "erin")
    r = hub.spawn_form(erin, {"resource": "cpu-large", "sessionMinutes": "30"})
    assert r.status_code == 302, r.text[:500]
    hub.wait_ready(admin_api, "local:erin")

    login(page, hub, "frank")
    page.goto(f"{hub.url}/hub/spawn")
    assert "1 of 1 used, 0 left" in page.locator(".th-quota").inner_text()
    page.check("#res-cpu-large")
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    assert_readable_refusal(page, "Weekend workshop")
    assert "already runs 1 of its 1 allowed servers" in page.locator(".spawn-error-msg").inner_text()
    assert page.is_checked("#res-cpu-large")  # the page keeps frank's choice: Start again means the same thing
    assert not admin_api.get("/users/local:frank").json().get("servers")


def test_a_session_beyond_the_limit_is_refused_readably(hub, page, admin_api):
    login(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("#res-cpu-large")  # at most 4 h; the page disables longer lengths
    assert page.is_disabled('#th-minutes option[value="300"]')
    # Send 300 minutes anyway, as a tampered form would.
    page.evaluate("""() => { const s = document.getElementById('th-minutes');
                             const o = s.querySelector('option[value="300"]'); o.disabled = false; s.value = '300'; }""")
    page.get_by_role("button", name="Start").click()
    page.wait_for_load_state()
    assert_readable_refusal(page, "at most 240 minutes")
    assert page.is_checked("#res-cpu-large")
    assert not admin_api.get("/users/local:alice").json().get("servers")


# --- 6. keyboard only ------------------------------------------------------------------------------------

def focused(page) -> dict:
    return page.evaluate("() => { const e = document.activeElement; return {id: e.id, name: e.name || '', value: e.value || '', "
                         "tag: e.tagName, type: e.type || '', text: (e.innerText || '').trim()}; }")


def tab_to(page, match, limit: int = 40) -> dict:
    for _ in range(limit):
        page.keyboard.press("Tab")
        el = focused(page)
        if match(el):
            return el
    raise AssertionError(f"Tab never reached the element; last focused: {focused(page)}")


def test_keyboard_only_login_and_launch(hub, page, admin_api):
    page.goto(f"{hub.url}/hub/login")
    assert focused(page)["id"] == "username_input"  # autofocus: type right away
    page.keyboard.type("bob")
    page.keyboard.press("Tab")
    page.keyboard.type(password_of("bob"))
    assert tab_to(page, lambda e: e["id"] == "login_submit", limit=3)
    page.keyboard.press("Space")
    page.wait_for_url(lambda url: "/hub/login" not in url)

    page.goto(f"{hub.url}/hub/spawn")
    tab_to(page, lambda e: e["name"] == "resource")
    for _ in range(5):  # arrow keys move through the radio group
        if focused(page)["value"] == "cpu-large":
            break
        page.keyboard.press("ArrowRight")
    assert focused(page)["value"] == "cpu-large" and page.is_checked("#res-cpu-large")
    tab_to(page, lambda e: e["id"] == "th-minutes", limit=3)
    page.keyboard.press("ArrowUp")  # 60 min (default) -> 30 min
    assert page.eval_on_selector("#th-minutes", "s => s.value") == "30"
    tab_to(page, lambda e: e["tag"] == "BUTTON" and e["text"] == "Start", limit=3)
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/hub/spawn-pending/|/user/local(%3A|:)bob/"), timeout=30_000)
    hub.wait_ready(admin_api, "local:bob")
    info = admin_api.get("/users/local:bob").json()["servers"][""]["state"]["teamhub"]
    assert (info["resource"], info["minutes"]) == ("cpu-large", 30)
