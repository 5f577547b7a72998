"""A teacher's launch link in a real browser (issue 17): from logged out, through login, to the launch page with
the link's choice preselected, Start, and JupyterLab with the course repository pulled and its notebook open;
then the home page's server list and its Stop button (JupyterHub's own API, called from the page).
The launch page is saved as test-output/launch-link.png, the home page's server list as server-list.png
(`make screenshots` copies them to docs/screenshots/)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from browserkit import browser_hub, password_of
from gitserve import GitServer, make_repo
from test_journey import LAB_TIMEOUT, shot

NOTEBOOK = '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Week 3 lab"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture(scope="module")
def git(tmp_path_factory):
    root = tmp_path_factory.mktemp("git")
    make_repo(root, "course", {"week3/lab.ipynb": NOTEBOOK})
    server = GitServer(root).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(git, tmp_path_factory):
    """The browser tier's hub (conftest.py) with the loopback git server on launchLinks.allowedRepos."""
    def edit(values):
        values["launchLinks"] = {"allowedRepos": [f"{git.url}/"]}

    with browser_hub(tmp_path_factory.mktemp("linkhub"), edit=edit) as h:
        yield h


def test_a_launch_link_from_logged_out_to_the_notebook(hub, git, page):
    link = f"{hub.url}/hub/launch?" + urlencode({"resource": "cpu-large", "sessionMinutes": "90", "repo": f"{git.url}/course.git",
                                                 "branch": "main", "open": "week3/lab.ipynb"})
    page.goto(link)
    page.wait_for_url(re.compile(r"/hub/login"))
    page.fill("#username_input", "alice")
    page.fill("#password_input", password_of("alice"))
    page.click("#login_submit")
    page.wait_for_url(re.compile(r"/hub/launch\?"))
    assert page.is_checked("#res-cpu-large")
    assert page.locator("#th-minutes").input_value() == "90"
    assert "week3/lab.ipynb" in page.locator("#teamhub-link-pull").inner_text()
    shot(page, "launch-link")
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/user/local(%3A|:)alice/lab/tree/course/week3/lab\.ipynb"), timeout=LAB_TIMEOUT)
    # The notebook is open in JupyterLab: its markdown rendered in a notebook panel.
    page.locator(".jp-NotebookPanel .jp-RenderedMarkdown", has_text="Week 3 lab").first.wait_for(timeout=LAB_TIMEOUT)
    home = next((hub.state / "homes").glob("*alice*"))
    assert (home / "course" / "week3" / "lab.ipynb").read_text() == NOTEBOOK
    # The home page lists the server with its environment and time left; Stop stops it through JupyterHub's API.
    page.goto(f"{hub.url}/hub/home")
    row = page.locator('tr.teamhub-server[data-server-name=""]')
    assert row.locator(".teamhub-resource").inner_text() == "Python (8 CPUs)"
    assert re.fullmatch(r"1 h( \d+ min)? left \(ends .+Z\)", row.locator(".teamhub-time-left").inner_text())
    shot(page, "server-list")
    with page.expect_navigation():  # the page reloads once the hub answered
        page.click("#teamhub-stop-default")
    for _ in range(60):
        if not page.locator("tr.teamhub-server").count():
            break
        page.wait_for_timeout(1000)  # the hub answered 202: still stopping
        page.reload()
    assert not page.locator("tr.teamhub-server").count()
    assert page.locator("#start").inner_text().strip() == "Start My Server"  # JupyterHub's own part agrees
