"""Who gets what: teams from every source, allowed resources, and the start-request verdicts."""

from __future__ import annotations

import pytest
from support import CONFIG, DEMO_OVERLAY, load_demo
from teamhub.catalog import loader
from teamhub.catalog.access import Person, RequestRefused, check_request, resolve, teams_of


@pytest.fixture(scope="module")
def catalog():
    return load_demo().catalog


def keys(access):
    return [r.key for r in access.resources]


def test_local_user_teams_come_from_their_account(catalog):
    access = resolve(catalog, Person("local:alice"))
    assert access.teams == ("everyone", "cv-course")
    assert keys(access) == ["cpu-small", "cpu-large", "course-cv"]  # catalog order, deterministic


def test_everyone_applies_to_all(catalog):
    assert keys(resolve(catalog, Person("local:carol"))) == ["cpu-small"]
    assert keys(resolve(catalog, Person("github:stranger"))) == ["cpu-small"]


def variant(old: str, new: str):
    from teamhub.values.source import load_text, merge, read_file

    text = (CONFIG / "values.yaml").read_text()
    assert old in text
    return loader.check(merge([load_text(text.replace(old, new), "v.yaml"), read_file(DEMO_OVERLAY)]), demo=True).catalog


def test_github_teams_map_case_insensitively_and_only_for_github():
    catalog = variant("      quota: {maxServers: 30, maxGpus: 8}",
                      '      quota: {maxServers: 30, maxGpus: 8}\n      githubTeams: ["example-university:cv-2026"]')
    assert teams_of(catalog, Person("github:octo", frozenset({"Example-University:CV-2026"}))) == ("everyone", "cv-course")
    # the same group arriving through another login method means nothing
    assert teams_of(catalog, Person("oidc:octo", frozenset({"example-university:cv-2026"}))) == ("everyone",)


def test_oidc_groups_and_explicit_users():
    catalog = variant("      quota: {maxServers: 30, maxGpus: 4}",
                      '      quota: {maxServers: 30, maxGpus: 4}\n      oidcGroups: ["/courses/nlp"]\n      users: ["github:octo"]')
    assert teams_of(catalog, Person("oidc:jdoe", frozenset({"/courses/nlp"}))) == ("everyone", "nlp-course")
    assert teams_of(catalog, Person("github:octo")) == ("everyone", "nlp-course")
    assert teams_of(catalog, Person("local:octo")) == ("everyone",)  # same name, other method: nothing


def test_admins_see_everything(catalog):
    access = resolve(catalog, Person("local:ada"))
    assert keys(access) == list(catalog.resources)
    assert access.charged_team["research-gpu"] == "staff"
    assert resolve(catalog, Person("local:nobody", admin=True)).charged_team["research-gpu"] is None


def test_quota_is_charged_to_the_specific_team_before_everyone(catalog):
    assert resolve(catalog, Person("local:alice")).charged_team == {
        "course-cv": "cv-course", "cpu-large": "cv-course", "cpu-small": "everyone",
    }


def test_allowed_request_resolves_overrides(catalog):
    launch = check_request(catalog, Person("local:alice"), {"resource": "course-cv", "accelerator": "strix-halo", "sessionMinutes": 90})
    assert launch.image.ref == "ghcr.io/example-university/pytorch-rocm:2.5-rocm6.2-gfx1151"
    assert launch.gpu.resource == "amd.com/gpu" and launch.gpu_count == 1
    assert launch.node_selector == {"node-type": "strix-halo"}
    assert launch.env == {"HSA_OVERRIDE_GFX_VERSION": "11.5.1"}
    assert [v.key for v in launch.volumes] == ["course-materials", "imagenet"]
    assert launch.minutes == 90 and launch.team == "cv-course"
    other = check_request(catalog, Person("local:alice"), {"resource": "course-cv", "accelerator": "mi300x"})
    assert other.image.ref.endswith(":2.5-rocm6.2") and other.env == {}
    assert other.tolerations == ({"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
    assert other.minutes == 60  # sessions.defaultMinutes


def test_default_minutes_capped_by_resource_limit(catalog):
    launch = check_request(catalog, Person("local:bob"), {"resource": "course-nlp"})
    assert launch.minutes == 60
    assert check_request(catalog, Person("local:bob"), {"resource": "course-nlp", "sessionMinutes": "180"}).minutes == 180


@pytest.mark.parametrize(
    ("request_", "status", "fragment"),
    [
        ({}, 400, "Choose an environment"),
        ({"resource": "nope"}, 400, "no environment called 'nope'"),
        ({"resource": "research-gpu"}, 403, "do not include"),
        ({"resource": "course-nlp"}, 403, "do not include"),
        ({"resource": "course-cv"}, 400, "Choose an accelerator"),
        ({"resource": "course-cv", "accelerator": "nvidia-l40s"}, 400, "does not offer"),
        ({"resource": "cpu-small", "accelerator": "mi300x"}, 400, "does not take an accelerator"),
        ({"resource": "course-cv", "accelerator": "mi300x", "sessionMinutes": 241}, 400, "at most 240 minutes"),
        ({"resource": "cpu-small", "sessionMinutes": 481}, 400, "at most 480 minutes"),
        ({"resource": "cpu-small", "sessionMinutes": "ten"}, 400, "whole number"),
        ({"resource": "cpu-small", "sessionMinutes": 0}, 400, "at least 1"),
        ({"resource": "cpu-small", "sessionMinutes": True}, 400, "whole number"),
        ({"resource": ["cpu-small"]}, 400, "by its name"),
        ({"resource": "cpu-small", "gpu": 4}, 400, "Unknown option"),
        (["cpu-small"], 400, "set of options"),
    ],
)
def test_refused_requests(catalog, request_, status, fragment):
    with pytest.raises(RequestRefused) as info:
        check_request(catalog, Person("local:alice"), request_)
    assert info.value.status == status
    assert fragment in info.value.message


@pytest.mark.parametrize("minutes", ["\u0666\u0660", "\u00b2", "9" * 4301, 10 ** 4400, "123456", " 60", "60\n", "-5", 1.5, "6.0"],
                         ids=["arabic-indic", "superscript", "4301-digits", "huge-int", "6-digits", "space", "newline",
                              "negative", "float", "decimal"])
def test_session_length_takes_only_ascii_digits_or_integers(catalog, minutes):
    """Arabic-Indic 60 was accepted as 60; superscript two and 4,300+ digits raised a bare ValueError."""
    with pytest.raises(RequestRefused) as info:
        check_request(catalog, Person("local:alice"), {"resource": "cpu-small", "sessionMinutes": minutes})
    assert info.value.status == 400
    assert info.value.message.startswith("The session length must be a whole number of minutes, not ")
    assert len(info.value.message) < 120


@pytest.mark.parametrize(("minutes", "expected"), [("60", 60), (60, 60), ("00090", 90), ("1", 1)])
def test_session_length_in_ascii_digits_or_integers_is_taken(catalog, minutes, expected):
    launch = check_request(catalog, Person("local:alice"), {"resource": "cpu-small", "sessionMinutes": minutes})
    assert launch.minutes == expected


def test_team_description_is_shown_where_the_team_is_named(catalog):
    """catalog.teams.*.description reached nothing (issue 11 item 3): the launch page shows it beside the team
    in the quota table and on each card the team is charged for."""
    from teamhub.hub.launchpage import card_view, page_view, render

    access = resolve(catalog, Person("local:alice"))
    data = page_view(catalog, access, local_mode=False)
    cv = {"name": "Computer Vision 2026", "description": "Winter term; GPU servers for the weekly labs"}
    assert cv in [{"name": q["name"], "description": q["description"]} for q in data["quotas"]]
    cards = [card_view(catalog, res, access.charged_team.get(res.key)) for _, group in data["groups"] for res in group]
    assert next(c for c in cards if c["key"] == "course-cv")["team"] == cv
    page = render(catalog, Person("local:alice"))
    assert page.count("Winter term; GPU servers for the weekly labs") == 1 + sum(c["team"] == cv for c in cards)
