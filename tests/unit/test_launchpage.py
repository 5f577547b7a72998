"""The launch page is built once per catalog and set of teams; each request still gets its own choice and
quota figures (issue 12). The hub loads values in a child and freezes its start-up objects."""

from __future__ import annotations

import asyncio
import gc
import re
import types

import pytest
from hubhelpers import VALUES
from support import DEMO_OVERLAY, DEMO_VALUES
from teamhub.catalog.access import Person
from teamhub.catalog.loader import load, load_or_raise
from teamhub.hub import config as hub_config
from teamhub.hub import launchpage
from teamhub.hub.loadvalues import load_forked
from teamhub.hub.quota import Usage
from teamhub.values.source import YamlFileError


@pytest.fixture
def catalog():
    return load_or_raise(DEMO_VALUES, demo=True).catalog


def checked_values(html: str, name: str) -> list:
    return re.findall(rf'name="{name}"[^>]* value="([^"]+)"[^>]*checked', html)


def count_builds(monkeypatch) -> dict:
    calls = {"page": 0, "card": 0}
    for name, real in (("page", launchpage.page_view), ("card", launchpage.card_view)):
        def counted(*args, _name=name, _real=real, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(launchpage, f"{name}_view", counted)
    return calls


def test_the_page_is_built_once_per_set_of_teams_and_cards_once_per_catalog(catalog, monkeypatch):
    calls = count_builds(monkeypatch)
    launchpage.render(catalog, Person("local:alice"), previous={"resource": "cpu-large"})
    assert calls == {"page": 1, "card": 3}  # alice may launch three environments
    launchpage.render(catalog, Person("local:alice"), usage=lambda team: Usage(1, 1))
    assert calls == {"page": 1, "card": 3}  # another request, another choice: nothing rendered again
    launchpage.render(catalog, Person("github:stranger"))  # only cpu-small, which alice's page rendered already
    assert calls == {"page": 2, "card": 3}
    launchpage.render(load_or_raise(DEMO_VALUES, demo=True).catalog, Person("local:alice"))  # new values: a new catalog
    assert calls == {"page": 3, "card": 6}


def test_a_cached_page_shows_each_request_its_own_choice_and_quota(catalog):
    alice = Person("local:alice")
    first = launchpage.render(catalog, alice, usage=lambda team: Usage(0, 0))
    assert checked_values(first, "resource") == ["cpu-small"] and "0 of 30 used, 30 left" in first and "0 of 8 used, 8 left" in first
    chosen = launchpage.render(catalog, alice, usage=lambda team: Usage(3, 1),
                               previous={"resource": "course-cv", "accelerator": "mi300x", "sessionMinutes": "30"})
    assert checked_values(chosen, "resource") == ["course-cv"] and checked_values(chosen, "accelerator") == ["mi300x"]
    assert re.search(r'<option value="30" selected>', chosen) and "3 of 30 used, 27 left" in chosen and "1 of 8 used, 7 left" in chosen
    # no accelerator asked for: the first of the chosen environment's; an unknown one: none (the script picks)
    assert checked_values(launchpage.render(catalog, alice, previous={"resource": "course-cv"}), "accelerator") == ["strix-halo"]
    assert checked_values(launchpage.render(catalog, alice, previous={"resource": "course-cv", "accelerator": "nope"}), "accelerator") == []
    again = launchpage.render(catalog, alice, usage=lambda team: Usage(0, 0))
    assert again == first  # the fills of one request never leak into the next


def test_catalog_text_cannot_pose_as_a_slot(tmp_path):
    text = VALUES.read_text().replace('displayName: "Python (2 CPUs)"', 'displayName: "<teamhub-slot 0> & co"')
    assert text != VALUES.read_text()
    path = tmp_path / "values.yaml"
    path.write_text(text)
    html = launchpage.render(load_or_raise([path, DEMO_OVERLAY], demo=True).catalog, Person("local:alice"))
    assert "&lt;teamhub-slot 0&gt; &amp; co" in html and "<teamhub-slot" not in html


def test_a_card_is_kept_per_team_it_counts_for_not_per_team_name(tmp_path):
    """Cards show the charged team's description, so two teams of one display name share no card."""
    text = VALUES.read_text().replace('displayName: "NLP 2026"', 'displayName: "Computer Vision 2026"\n      description: "Summer term"')
    assert text != VALUES.read_text()
    path = tmp_path / "values.yaml"
    path.write_text(text)
    catalog = load_or_raise([path, DEMO_OVERLAY], demo=True).catalog
    alice = launchpage.render(catalog, Person("local:alice"))  # cv-course: cpu-large counts for "Winter term"
    bob = launchpage.render(catalog, Person("local:bob"))  # nlp-course: the same cpu-large counts for "Summer term"
    assert "Summer term" not in alice
    assert "Winter term" not in bob and bob.count("Summer term") == 3  # the quota row, course-nlp, cpu-large


def test_pages_kept_per_catalog_are_bounded(catalog, monkeypatch):
    monkeypatch.setattr(launchpage, "MAX_TEAM_SETS", 2)
    for name in ("local:alice", "local:bob", "local:carol", "local:ada"):
        launchpage.render(catalog, Person(name))
    assert len(launchpage.cache_for(catalog).pages) == 2


def test_the_hub_loads_values_in_a_child_with_the_same_outcome(tmp_path):
    ours, reference = load_forked([VALUES]), load([VALUES])
    assert ours.ok and ours.values == reference.values and ours.problems == reference.problems
    assert set(ours.catalog.resources) == set(reference.catalog.resources)
    assert ours.source.locations == {}  # the line map stayed in the child
    broken = tmp_path / "broken.yaml"
    broken.write_text(VALUES.read_text().replace("image: scipy", "image: no-such-image", 1))
    assert [str(p) for p in load_forked([broken]).errors] == [str(p) for p in load([broken]).errors] != []
    with pytest.raises(YamlFileError):
        load_forked([tmp_path / "missing.yaml"])


def test_without_a_child_the_hub_loads_in_process(monkeypatch):
    monkeypatch.setattr("teamhub.hub.loadvalues._in_child", lambda paths, accounts_file=None, demo=False: None)
    assert load_forked([VALUES]).values == load([VALUES]).values


def test_the_hub_freezes_its_start_up_objects_once_started():
    from jupyterhub.app import JupyterHub

    loop = asyncio.new_event_loop()
    app = JupyterHub.instance()
    try:
        app._start_future = loop.create_future()
        hub_config.freeze_after_start()
        assert gc.get_freeze_count() == 0  # not while starting
        app._start_future.set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        JupyterHub.clear_instance()
        loop.close()


def test_only_staff_see_the_copy_link_control(catalog):
    admin = launchpage.render(catalog, Person("local:ada"))
    student = launchpage.render(catalog, Person("local:alice"))
    assert 'id="th-copy-link"' in admin and "/hub/launch" in admin
    assert 'id="th-copy-link"' not in student


# --- per-request caches (issue 25): the latest page string, the budget cells, the person without auth state ---

def test_a_request_with_the_same_figures_gets_the_same_string_and_new_figures_a_new_one(catalog):
    alice = Person("local:alice")
    first = launchpage.render(catalog, alice, usage=lambda team: Usage(1, 0))
    assert launchpage.render(catalog, alice, usage=lambda team: Usage(1, 0)) is first  # not joined again
    moved = launchpage.render(catalog, alice, usage=lambda team: Usage(2, 1))
    assert "2 of 30 used, 28 left" in moved and "1 of 30 used" not in moved
    chosen = launchpage.render(catalog, alice, usage=lambda team: Usage(2, 1), previous={"resource": "cpu-large"})
    assert checked_values(chosen, "resource") == ["cpu-large"]
    assert launchpage.render(catalog, alice, usage=lambda team: Usage(1, 0)) == first  # back: the first figures again


def test_new_values_and_new_team_membership_get_their_own_page(tmp_path):
    """The hub reads values once (a change restarts it: the chart's checksum of what the hub reads); a catalog
    object is the cache's key, so values read anew are never served from an older catalog's pages. A person's
    teams (GitHub teams or OIDC groups at their last login) pick the page: a change of teams shows the new page."""
    text = VALUES.read_text().replace("    cv-course:\n", "    cv-course:\n      githubTeams: [physics-lab:cv]\n", 1)
    assert text != VALUES.read_text()
    path = tmp_path / "values.yaml"
    path.write_text(text)
    old = load_or_raise([path]).catalog
    octo = launchpage.render(old, Person("github:octo", frozenset({"physics-lab:cv"})))
    assert 'value="course-cv"' in octo
    assert 'value="course-cv"' not in launchpage.render(old, Person("github:octo"))  # left the team
    path.write_text(text.replace('displayName: "Python (2 CPUs)"', 'displayName: "Python, two cores"'))
    new = load_or_raise([path]).catalog
    assert "Python, two cores" in launchpage.render(new, Person("github:octo", frozenset({"physics-lab:cv"})))
    assert "Python, two cores" not in launchpage.render(old, Person("github:octo", frozenset({"physics-lab:cv"})))


def test_budget_cells_follow_their_numbers():
    line = {"unit": "GPU-hours", "used": 1.0, "amount": 4, "left": 3.0, "days": 30, "minutes_for_one": 180}
    assert launchpage.budget_text([line]) == ("3.0 of 4 GPU-hours left (last 30 days); a session on 1 GPU started now "
                                              "ends after at most 3 h")
    assert "2.5 of 4 GPU-hours left" in launchpage.budget_text([{**line, "left": 2.5, "minutes_for_one": 150}])
    assert "ends after at most 2 h 30 min" in launchpage.budget_text([{**line, "left": 2.5, "minutes_for_one": 150}])
    assert launchpage.budget_text([]) == "no limit"


def test_a_person_with_auth_state_has_it_read_and_one_without_gets_the_page_at_once():
    from hubhelpers import configured, kube_spawner
    from teamhub.auth import person_now

    c = configured()
    plain = kube_spawner(c, "local:alice")
    assert person_now(plain.user) == Person("local:alice")
    page = launchpage.options_form(plain)
    assert isinstance(page, str) and 'value="course-cv"' in page  # no task for JupyterHub to await
    grouped = kube_spawner(c, "github:octo", groups=["physics-lab:cv"])
    assert person_now(grouped.user) is None
    pending = launchpage.options_form(grouped)
    assert asyncio.iscoroutine(pending)
    assert asyncio.run(pending) == asyncio.run(grouped.get_options_form())  # the groups come from the auth state


def test_budget_figures_of_a_team_that_runs_nothing_are_shared_and_move_when_it_starts_or_stops(tmp_path):
    """Ledger.still: a team with no open or recently closed record uses only its window's sum, so its overview is
    kept for those sums; a record opening or closing moves it back to the computed figures (issue 25)."""
    from teamhub.catalog.model import Budget
    from teamhub.usage import budget, store

    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    store.migrate(url)
    s = store.Store(url)
    team = types.SimpleNamespace(key="lab", budgets=(Budget("gpu", 4.0, 30), Budget("cpu", 40.0, 30)))
    now = 1_000_000.0
    first = budget.overview(s, team, now)
    assert s.ledger.still("lab", team.budgets, now) == (0.0, 0.0)
    assert budget.overview(s, team, now + 600) is first  # nothing runs: the same figures ten minutes later
    assert first == budget._overview(s, team, now + 600)
    record = s.open(now, server="local:a/", person="local:a", team="lab", resource="gpu", accelerator=None, gpus=1,
                    gpu_kind="nvidia.com/gpu", cpu=2.0, memory=None)
    assert s.ledger.still("lab", team.budgets, now) is None and s.ledger.still("other", team.budgets, now) == (0.0, 0.0)
    running = budget.overview(s, team, now + 3600)
    assert running[0]["used"] == 1.0 and running[1]["used"] == 2.0 and running == budget._overview(s, team, now + 3600)
    assert budget.overview(s, team, now + 7200)[0]["used"] == 2.0  # a running server's use moves with the clock
    s.close(record, now + 3600, "stopped")
    assert s.ledger.still("lab", team.budgets, now + 7200) is None  # closed since the window's sum: counted from memory
    assert budget.overview(s, team, now + 7200)[0]["used"] == 1.0
    s.dispose()


def test_quota_figures_for_every_team_in_one_pass():
    from teamhub.hub.quota import Hold, QuotaBook

    book = QuotaBook()
    for hold in (Hold("a/", "lab", 1), Hold("b/", "lab", 2), Hold("c/", "course", 0), Hold("d/", None, 1)):
        book.restore(hold)
    assert book.by_team() == {team: book.usage(team) for team in ("lab", "course", None)}
    assert book.usage("nobody") == launchpage.NONE_HELD
    assert book.by_team() is book.by_team()  # kept while no hold changes
    book.release("b/")
    assert book.by_team()["lab"] == book.usage("lab") == Usage(1, 1)
    book.restore(Hold("e/", "course", 1))
    assert book.by_team()["course"] == Usage(2, 1)
    book.reserve_now(types.SimpleNamespace(teams={}), Hold("f/", "course", 2))  # no quota of that team to check
    assert book.by_team()["course"] == Usage(3, 3)


def test_a_persons_teams_are_resolved_once_per_catalog(catalog, monkeypatch):
    calls = []
    real = launchpage.teams_of
    monkeypatch.setattr(launchpage, "teams_of", lambda *args: calls.append(args) or real(*args))
    alice = Person("local:alice")
    page = launchpage.render(catalog, alice)
    assert launchpage.render(catalog, Person("local:alice"), usage=lambda team: Usage(1, 1)) != page  # new figures
    assert launchpage.render(catalog, Person("github:octo", frozenset({"physics-lab:cv"}))) != page
    assert len(calls) == 2  # alice once, octo once


def test_a_still_teams_budget_cell_is_kept_while_the_ledgers_stamp_stays(tmp_path):
    """Ledger.stamp: while no record opens or closes and no window is summed or due for its refresh, a team with no
    open or recent record keeps its cell and the page asks nothing about its budget; a team that runs something
    (in the stamp's moving set) is asked on every view (issue 25)."""
    from teamhub.catalog.model import Budget
    from teamhub.usage import budget, store

    text = VALUES.read_text().replace("quota: {maxServers: 30, maxGpus: 8}", "quota: {maxServers: 30, maxGpus: 8, gpuHours: {amount: 4}}")
    assert text != VALUES.read_text()
    path = tmp_path / "values.yaml"
    path.write_text(text)
    catalog = load_or_raise([path, DEMO_OVERLAY], demo=True).catalog
    asked = []
    line = {"unit": "GPU-hours", "used": 1.0, "amount": 4, "left": 3.0, "days": 30, "minutes_for_one": 180}

    def budgets(team):
        asked.append(team)
        return [line]

    alice = Person("local:alice")  # in cv-course, whose GPU-hours the page shows
    version = (object(), 1, 1)
    first = launchpage.render(catalog, alice, budgets=budgets, budget_stamp=(version, frozenset()))
    assert asked == ["cv-course"] and "3.0 of 4 GPU-hours left" in first
    again = launchpage.render(catalog, alice, budgets=lambda team: [{**line, "left": 2.0}], budget_stamp=(version, frozenset()))
    assert again is first  # kept: the budget was not asked
    moved = launchpage.render(catalog, alice, budgets=budgets, budget_stamp=((version[0], 2, 1), frozenset()))
    assert asked == ["cv-course"] * 2 and moved == first
    launchpage.render(catalog, alice, budgets=budgets, budget_stamp=((version[0], 2, 1), frozenset({"cv-course"})))
    launchpage.render(catalog, alice, budgets=budgets, budget_stamp=None)
    assert asked == ["cv-course"] * 4  # running something, or a window due for its refresh: asked every time

    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    store.migrate(url)
    s = store.Store(url)
    team = types.SimpleNamespace(key="lab", budgets=(Budget("gpu", 4.0, 30),))
    now = 1_000_000.0
    budget.overview(s, team, now)  # the window's first sum
    stamp = s.ledger.stamp(now + 30)
    assert stamp is not None and stamp == s.ledger.stamp(now + 59) and "lab" not in stamp[1]
    assert s.ledger.stamp(now + 60) is None  # due for its refresh: the figures are read (which starts it)
    s.open(now + 30, server="local:a/", person="local:a", team="lab", resource="gpu", accelerator=None, gpus=1,
           gpu_kind="nvidia.com/gpu", cpu=2.0, memory=None)
    moved = s.ledger.stamp(now + 30)
    assert moved[0] != stamp[0] and "lab" in moved[1]
    budget.overview(s, team, now + 120)  # no event loop here: the refresh is applied at once
    assert s.ledger.stamp(now + 120)[0] != moved[0] and s.ledger.stamp(now + 120) is not None
    s.dispose()
