"""The admins' usage page in a real browser (issue 14): an admin reaches it from the hub's navigation with the
keyboard, sees the teams and the running servers, and stops a server with its Stop button (JupyterHub's REST
API with the admin's own session and xsrf token). The page is saved as test-output/usage-admin.png
(`make screenshots` copies it to docs/screenshots/)."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest
from browserkit import browser_hub, http_login
from test_journey import login, shot


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The browser tier's hub with GPU-hour budgets, so the page has every figure to show."""
    def edit(values):
        values["catalog"]["teams"]["cv-course"]["quota"]["gpuHours"] = {"amount": 400, "window": "30d"}
        values["catalog"]["teams"]["nlp-course"]["quota"]["gpuHours"] = {"amount": 200, "window": "30d"}

    with browser_hub(tmp_path_factory.mktemp("adminhub"), edit=edit) as h:
        yield h


def start_server(hub, name: str, **options) -> None:
    client = http_login(hub, name)
    api = hub.api(hub.token(client, f"local:{name}"))
    r = api.post(f"/users/local:{name}/server", json=options)
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(api, f"local:{name}")


def test_an_admin_sees_usage_and_stops_a_server_from_the_keyboard(hub, page):
    start_server(hub, "alice", resource="course-cv", accelerator="mi300x", sessionMinutes=120)
    start_server(hub, "bob", resource="cpu-large", sessionMinutes=60)
    login(page, hub, "ada")
    nav = page.locator("#teamhub-nav-usage")
    nav.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/hub/usage$"))
    cv = page.locator('#teamhub-teams tr[data-team="cv-course"]')
    assert cv.locator('[data-field="gpus"]').inner_text() == "1 of 8"
    assert "of 400 GPU-hours used" in cv.locator('[data-field="budgets"]').inner_text()
    alice = page.locator('#teamhub-running tr[data-person="local:alice"]')
    assert "course-cv" in alice.inner_text() and "mi300x" in alice.inner_text()
    assert page.locator('#teamhub-totals tbody tr').count() >= 2
    shot(page, "usage-admin")

    stop = page.get_by_role("button", name="Stop the default server of local:bob")
    stop.focus()
    page.keyboard.press("Enter")
    page.locator("#teamhub-stop-status", has_text=re.compile(r"^Stop(ped|ping) the default server of local:bob\.$")).wait_for()
    end = time.monotonic() + 30
    while page.reload() and page.locator('#teamhub-running tr[data-person="local:bob"]').count():
        assert time.monotonic() < end, "bob's server still listed 30 s after Stop"
        time.sleep(0.5)
    assert page.locator('#teamhub-running tr[data-person="local:alice"]').count() == 1
    con = sqlite3.connect(hub.state / "jupyterhub.sqlite")
    try:
        reason = con.execute("SELECT end_reason FROM teamhub_usage WHERE person = 'local:bob' ORDER BY id DESC").fetchone()[0]
    finally:
        con.close()
    assert reason == "admin"  # the usage record says an admin stopped it


def test_a_person_who_is_not_an_admin_gets_a_sentence(hub, page):
    login(page, hub, "carol")
    assert page.locator("#teamhub-nav-usage").count() == 0
    r = page.goto(f"{hub.url}/hub/usage")
    assert r.status == 403
    assert "This page is for the hub's administrators only." in page.inner_text("body")
