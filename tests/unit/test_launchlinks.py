"""Launch links (issue 17): the pull handed to nbgitpuller and `teamhub link` (the grammar of the fields:
test_link_grammar.py)."""

from __future__ import annotations

from support import run_teamhub
from teamhub.hub import launchlinks

ALLOWED = ("https://git.example.edu/course-cv",)


def test_an_allowed_pull_opens_the_file_through_nbgitpuller():
    pull = launchlinks.check_pull({"repo": "https://git.example.edu/course-cv/lab.git", "open": "week3/lab.ipynb"}, ALLOWED)
    assert (pull.folder, pull.branch) == ("lab", "main")
    assert pull.default_url().startswith("/git-pull?repo=https%3A%2F%2Fgit.example.edu%2Fcourse-cv%2Flab.git")
    assert "urlpath=lab%2Ftree%2Flab%2Fweek3%2Flab.ipynb" in pull.default_url()


def test_teamhub_link_prints_the_link_with_the_public_url(tmp_path):
    values = tmp_path / "links.yaml"
    values.write_text("launchLinks:\n  publicUrl: https://hub.example.edu\n  allowedRepos: [https://git.example.edu/cv/]\n")
    r = run_teamhub("link", "config/values.yaml", str(values), "--resource", "course-cv", "--accelerator", "strix-halo",
                    "--repo", "https://git.example.edu/cv/course.git", "--branch", "main", "--open", "week3/lab.ipynb")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("https://hub.example.edu/hub/launch?resource=course-cv&accelerator=strix-halo"
                                "&repo=https%3A%2F%2Fgit.example.edu%2Fcv%2Fcourse.git&branch=main&open=week3%2Flab.ipynb")
    r = run_teamhub("link", "config/values.yaml", str(values), "--resource", "cpu-small", "--repo", "HTTPS://Git.Example.edu:443/cv/lab.git/")
    assert r.returncode == 0 and "repo=https%3A%2F%2Fgit.example.edu%2Fcv%2Flab.git" in r.stdout  # printed canonical
    r = run_teamhub("link", "config/values.yaml", str(values), "--resource", "cpu-small", "--repo", "https://git.example.edu/cv/../x.git")
    assert r.returncode == 1 and "'..'" in r.stderr
    r = run_teamhub("link", "config/values.yaml", str(values), "--resource", "course-cv", "--minutes", "600")
    assert r.returncode == 1 and "at most 240 minutes" in r.stderr
    r = run_teamhub("link", "config/values.yaml", "--resource", "cpu-small")
    assert r.returncode == 2 and "launchLinks.publicUrl" in r.stderr
