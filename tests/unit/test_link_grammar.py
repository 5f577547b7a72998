"""The one grammar of launch-link fields (issue 23, finding 2): the held-out ways out of an allow-list entry.

Each variant below reached another repository through git or the browser while a textual prefix check passed
it; every one must be refused, through the link's own check (launchlinks) and the grammar the pull guard uses.
"""

from __future__ import annotations

import pytest
from support import run_teamhub
from teamhub.catalog.access import RequestRefused
from teamhub.hub import launchlinks
from teamhub.pullguard import grammar

ENTRY = "https://git.example.edu/course"
ALLOWED = (ENTRY,)

WAYS_OUT = [
    "https://git.example.edu/course/../course-evil/x.git",     # dot segments
    "https://git.example.edu/course/./../evil/x.git",
    "https://git.example.edu/course/%2e%2e/evil/x.git",        # percent-encoded dot segments
    "https://git.example.edu/course/%2E%2E/evil/x.git",
    "https://git.example.edu/course/.%2e/evil/x.git",
    "https://git.example.edu/course/%252e%252e/evil/x.git",    # encoded twice
    "https://git.example.edu/course/..%2fevil/x.git",          # encoded separators
    "https://git.example.edu/course%2f..%2fevil/x.git",
    "https://git.example.edu/course/%2F/x.git",
    "https://git.example.edu/course/..%5cevil/x.git",
    "https://git.example.edu/course\\..\\evil/x.git",           # backslashes
    "https://git.example.edu/course/\uff0e\uff0e/evil/x.git",    # fullwidth full stops
    "https://git.example.edu/course/\u2024\u2024/evil/x.git",    # one-dot leaders
    "https://git.example.edu/course/%e2%80%a4%e2%80%a4/evil/x.git",
    "https://git.example.edu/course/%ef%bc%8e%ef%bc%8e/x.git",
    "https://git.exаmple.edu/course/x.git",                      # a Cyrillic а in the host
    "https://git.example.edu/cоurse/x.git",                      # and in the path
    "https://git.example.edu@evil.example/course/x.git",        # userinfo
    "https://user:pw@git.example.edu/course/x.git",
    "https://git.example.edu/course//x.git",                    # empty segment
    "https://git.example.edu/course/x.git?u=1",
    "https://git.example.edu/course/x.git#../../evil",
    "https://git.example.edu/course/%00/x.git",
    "https://git.example.edu/course/%ff/x.git",                 # a byte that is not text
]


@pytest.mark.parametrize("repo", WAYS_OUT)
def test_every_way_out_of_the_entry_is_refused(repo):
    with pytest.raises(RequestRefused) as exc:
        launchlinks.check_pull({"repo": repo}, ALLOWED)
    assert exc.value.status in (400, 403)
    with pytest.raises(grammar.GrammarError):
        if grammar.repo_on_list(repo, ALLOWED) is None:
            raise grammar.GrammarError("off the list")


@pytest.mark.parametrize("repo", [
    "https://git.example.edu/course-evil/x.git",                # a prefix that is not a whole segment
    "https://git.example.edu/courseX.git",
    "http://git.example.edu/course/x.git",                       # another scheme
    "https://git.example.edu:8443/course/x.git",                 # another port
    "https://git.example.edu.evil.example/course/x.git",         # another host
    "https://evil.example/git.example.edu/course/x.git",
])
def test_other_places_are_off_the_list(repo):
    with pytest.raises(RequestRefused) as exc:
        launchlinks.check_pull({"repo": repo}, ALLOWED)
    assert exc.value.status == 403 and "not on this hub's list" in exc.value.message


@pytest.mark.parametrize("repo, canonical", [
    ("https://git.example.edu/course/lab.git", "https://git.example.edu/course/lab.git"),
    ("HTTPS://Git.Example.EDU:443/course/lab.git/", "https://git.example.edu/course/lab.git"),  # default port, case
    ("https://git.example.edu/course/%6cab.git", "https://git.example.edu/course/lab.git"),      # decoded once
    ("https://git.example.edu/course", "https://git.example.edu/course"),
])
def test_allowed_repositories_are_handed_on_canonical(repo, canonical):
    pull = launchlinks.check_pull({"repo": repo}, ALLOWED)
    assert pull.repo == canonical
    assert grammar.parse_repo(pull.repo) == grammar.parse_repo(repo)


def test_an_entry_with_a_trailing_slash_and_a_port_matches_the_same_place():
    entries = ("http://127.0.0.1:8080/course/",)
    assert str(grammar.repo_on_list("http://127.0.0.1:8080/course/lab.git", entries)) == "http://127.0.0.1:8080/course/lab.git"
    assert grammar.repo_on_list("http://127.0.0.1:8081/course/lab.git", entries) is None
    assert grammar.repo_on_list("http://127.0.0.1/course/lab.git", entries) is None


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a\\..\\b", "./a", "a/%2e%2e/b", "a//b", "a/",
                                  "week3/lab.ipynb\"><svg/onload=alert(1)>", "<svg/onload=alert(1)>", "a/\uff0e\uff0e/b",
                                  "lab.ipynb?x=1", "lab.ipynb#x", ".ssh/id_rsa", "-rf"])
def test_open_is_a_relative_path_of_plain_names(path):
    with pytest.raises(RequestRefused, match="leaves the repository|not valid text|holds"):
        launchlinks.check_pull({"repo": f"{ENTRY}/lab.git", "open": path}, ALLOWED)


@pytest.mark.parametrize("branch", ["../main", "-x", "a..b", "a//b", "main.lock", "a/.b", "main/", "ma in", "<b>"])
def test_branches_outside_the_grammar_are_refused(branch):
    with pytest.raises(RequestRefused, match="branch"):
        launchlinks.check_pull({"repo": f"{ENTRY}/lab.git", "branch": branch}, ALLOWED)


def test_server_names_are_slugs():
    assert grammar.parse_server("cv-2") == "cv-2"
    for name in ("CV", "a/b", "../x", "-x", "a" * 41, "<x>"):
        with pytest.raises(grammar.GrammarError):
            grammar.parse_server(name)


def test_validate_refuses_allow_list_entries_outside_the_grammar(tmp_path):
    values = tmp_path / "links.yaml"
    values.write_text("launchLinks:\n  allowedRepos:\n    - https://git.example.edu/course\n"
                      "    - https://git.example.edu/a/../b\n")
    r = run_teamhub("validate", "config/values.yaml", str(values))
    assert r.returncode == 1
    assert "links.yaml:4: launchLinks.allowedRepos[1]" in r.stdout + r.stderr
    assert "'..'" in r.stdout + r.stderr


SINGLE_USER = ("jupyter_server", "nbgitpuller", "tornado", "jinja2")  # what every single-user server has


def test_the_grammar_needs_only_the_standard_library():
    """The single-user images carry teamhub.pullguard without teamhub's requirements: the standard library,
    and in the extension only what a single-user server with nbgitpuller has."""
    import ast
    import sys
    from pathlib import Path

    for module in Path(grammar.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in SINGLE_USER, \
                    f"{module.name} imports {name}"


def test_the_guard_takes_a_field_given_twice_only_with_one_value():
    """JupyterHub carries a launch link's own query along after a start, so `repo` and `branch` can arrive twice
    with the same value; two different values would be read differently by the guard and by nbgitpuller."""
    from teamhub.pullguard.extension import checked_arguments
    from tornado import web

    allowed = (grammar.parse_repo("https://git.example.org/course/", "allowed repository"),)
    repo = b"https://git.example.org/course/lab.git"
    out = checked_arguments({"repo": [repo, repo], "branch": [b"main", b"main"]}, allowed)
    assert out["repo"] == [repo]
    with pytest.raises(web.HTTPError) as refused:
        checked_arguments({"repo": [repo, b"https://git.example.org/course-evil/x.git"]}, allowed)
    assert refused.value.status_code == 400
