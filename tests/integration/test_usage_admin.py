"""The admins' usage page `/hub/usage` (issue 14) on a real hub: the figures an admin sees for a team with a
running GPU server and a budget, the CSV download parsed as CSV, a period given wrong (a sentence, 400), and a
403 page for everyone else; and the ServiceMonitor's token, which reads /hub/metrics and nothing more. The stop button's call (JupyterHub's REST API with the admin's session and the page's xsrf token) is made
here as the page's script makes it; the browser tier clicks it."""

from __future__ import annotations

import csv
import html
import io
import re
import sqlite3
import time

import httpx
import pytest
import yaml
from hubprocess import HubProcess, demo_values
from teamhub.auth.passwords import hash_password

PASSWORD = "usage-admin-pass"
METRICS_TOKEN = "metrics-scrape-token-for-tests-0123456789abcdef"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    state = tmp_path_factory.mktemp("usage-admin-hub")
    values = demo_values()
    for user in values["auth"]["local"]["users"].values():
        user["passwordHash"] = hash_password(PASSWORD, 4)
    values["catalog"]["teams"]["cv-course"]["quota"]["gpuHours"] = {"amount": 40, "window": "30d"}
    (state / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    # as the chart gives it with metrics.serviceMonitor.enabled (Secret key metrics-token)
    h = HubProcess(state / "values.yaml", state, extra_env={"TEAMHUB_METRICS_TOKEN": METRICS_TOKEN}).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def alice_running(hub):
    alice = hub.login("alice", PASSWORD)
    api = hub.api(hub.token(alice, "local:alice"))
    r = api.post("/users/local:alice/server", json={"resource": "course-cv", "accelerator": "mi300x", "sessionMinutes": 120})
    assert r.status_code in (201, 202), r.text
    hub.wait_ready(api, "local:alice")
    yield
    api.delete("/users/local:alice/server")


def row(html: str, attr: str) -> str:
    start = html.index(attr)
    return html[start:html.index("</tr>", start)]


def test_an_admin_sees_teams_running_servers_and_totals(hub, alice_running):
    admin = hub.login("ada", PASSWORD)
    home = admin.get("/hub/home").text
    assert 'id="teamhub-nav-usage"' in home  # linked from the hub's navigation
    r = admin.get("/hub/usage")
    assert r.status_code == 200
    page = r.text
    cv = row(page, 'data-team="cv-course"')
    assert "Computer Vision 2026" in cv
    assert '<td class="num" data-field="members">1</td>' in cv  # alice signed in; ada is staff
    assert "1 of 30" in cv and "1 of 8" in cv  # servers and GPUs against the quota
    assert "of 40 GPU-hours used" in cv, cv
    assert "no limit" in row(page, 'data-team="staff"')  # staff: maxGpus only
    alice = row(page, 'data-person="local:alice"')
    assert "course-cv" in alice and "mi300x" in alice and "cv-course" in alice
    assert 'data-url="/hub/api/users/local%3Aalice/server"' in alice  # the stop button's API call
    assert "Z</td>" in alice  # started and deadline as UTC times
    assert 'id="teamhub-totals"' in page and "No usage in this period" not in page  # alice's open record counts
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and not [a for a in assets if re.match(r"(https?:)?//", a)], assets  # served by the hub: no CDN


def test_the_csv_download_parses(hub, alice_running):
    admin = hub.login("ada", PASSWORD)
    r = admin.get("/hub/usage", params={"from": "2000-01-01", "to": "2100-01-01", "by": "team,resource", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["team", "resource", "gpu_hours", "server_hours", "cpu_core_hours", "sessions", "failed_starts"]
    cv = next(x for x in rows if x["team"] == "cv-course" and x["resource"] == "course-cv")
    assert int(cv["sessions"]) >= 1 and float(cv["gpu_hours"]) >= 0


def test_a_wrong_period_is_a_sentence_not_an_error(hub):
    admin = hub.login("ada", PASSWORD)
    r = admin.get("/hub/usage", params={"from": "last week"})
    assert r.status_code == 400
    assert "from 'last week': give a date like 2026-11-01" in html.unescape(r.text)
    r = admin.get("/hub/usage", params={"by": "colour"})
    assert r.status_code == 400 and "choose from team, person, resource, accelerator" in r.text
    assert "Traceback" not in hub.log()


def test_others_get_403(hub):
    bob = hub.login("bob", PASSWORD)
    assert 'id="teamhub-nav-usage"' not in bob.get("/hub/home").text
    for params in ({}, {"format": "csv"}):
        r = bob.get("/hub/usage", params=params)
        assert r.status_code == 403
        assert "This page is for the hub's administrators only." in html.unescape(r.text)
        assert "gpu_hours" not in r.text
    assert "Traceback" not in hub.log()


def test_the_stop_button_call_stops_the_server_with_the_admins_session(hub, alice_running):
    admin = hub.login("ada", PASSWORD)
    page = admin.get("/hub/usage").text
    url = re.search(r'data-person="local:alice".*?data-url="([^"]+)"', page, re.S).group(1)
    xsrf = re.search(r'"X-XSRFToken": "([^"]+)"', page).group(1)
    assert admin.delete(url).status_code == 403  # the session alone is not enough: JupyterHub wants the xsrf token
    assert admin.delete(url, headers={"X-XSRFToken": xsrf}).status_code in (202, 204)
    end = time.monotonic() + 30
    while 'data-person="local:alice"' in admin.get("/hub/usage").text:
        assert time.monotonic() < end, "alice's server still listed 30 s after the stop"
        time.sleep(0.5)
    assert end_reason(hub, "local:alice") == "admin"  # an admin stopped it, not alice


def end_reason(hub, person: str) -> str | None:
    """The end reason of the person's latest usage record, read from the hub's SQLite database."""
    con = sqlite3.connect(hub.state / "jupyterhub.sqlite")
    try:
        return con.execute("SELECT end_reason FROM teamhub_usage WHERE person = ? ORDER BY id DESC LIMIT 1", (person,)).fetchone()[0]
    finally:
        con.close()


def stop_and_wait(hub, api, person: str) -> str | None:
    assert api.delete(f"/users/{person}/server").status_code in (202, 204)
    end = time.monotonic() + 30
    while end_reason(hub, person) is None:
        assert time.monotonic() < end, f"{person}'s usage record still open 30 s after the stop"
        time.sleep(0.25)
    return end_reason(hub, person)


def test_a_stop_through_the_admin_api_is_admin_and_the_persons_own_is_stopped(hub):
    """JupyterHub's admin API (an admin's token, as its admin panel calls it) records `admin`; the same call by
    the server's owner records `stopped`."""
    admin = hub.api(hub.token(hub.login("ada", PASSWORD), "local:ada"))
    bob = hub.api(hub.token(hub.login("bob", PASSWORD), "local:bob"))
    for stopper, reason in ((admin, "admin"), (bob, "stopped")):
        r = bob.post("/users/local:bob/server", json={"resource": "cpu-small", "sessionMinutes": 30})
        assert r.status_code in (201, 202), r.text
        hub.wait_ready(bob, "local:bob")
        assert end_reason(hub, "local:bob") is None
        assert stop_and_wait(hub, stopper, "local:bob") == reason


def test_the_metrics_token_reads_metrics_and_nothing_else(hub):
    from prometheus_client.parser import text_string_to_metric_families

    auth = {"Authorization": f"token {METRICS_TOKEN}"}
    r = httpx.get(f"{hub.url}/hub/metrics", headers=auth, timeout=30)
    assert r.status_code == 200
    assert any(f.name.startswith("teamhub_") for f in text_string_to_metric_families(r.text))
    assert httpx.get(f"{hub.url}/hub/metrics", timeout=30).status_code == 403
    assert httpx.get(f"{hub.url}/hub/api/users", headers=auth, timeout=30).status_code == 403
    assert httpx.delete(f"{hub.url}/hub/api/users/local:alice/server", headers=auth, timeout=30).status_code == 403
