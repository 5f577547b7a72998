"""Every validation rule: the message a person reads and the exact place (file, line, YAML path)."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from support import CONFIG
from teamhub.catalog import loader
from teamhub.values.source import format_path, load_text, merge

HASH = "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa"  # bcrypt of "test-pass" (not a demo account's published hash, which validation refuses)

BASE = f"""\
auth:
  admins: ["local:ada"]
  local:
    enabled: true
    users:
      ada:
        passwordHash: "{HASH}"
        teams: [cv]
catalog:
  requireDigests: false
  images:
    scipy:
      name: quay.io/jupyter/scipy-notebook
      tag: "2026-11-02"
  accelerators:
    strix-halo:
      displayName: "AMD Radeon 8060S"
      gpu: {{resource: amd.com/gpu, count: 1}}
      nodeSelector: {{node-type: strix-halo}}
  volumes:
    imagenet:
      pvc: imagenet-data
      mountPath: /data/imagenet
  resources:
    cpu-small:
      displayName: Small
      image: scipy
      cpu: {{request: 2, limit: 4}}
      memory: {{request: 4Gi, limit: 6Gi}}
    gpu-large:
      displayName: Large
      image: scipy
      cpu: {{request: 4}}
      memory: {{request: 16Gi}}
      accelerators: [strix-halo]
  teams:
    everyone:
      resources: [cpu-small]
    cv:
      resources: [gpu-large]
sessions:
  defaultMinutes: 60
  maxMinutes: 480
  idleCullMinutes: 60
"""


def check(text: str, *, fname: str = "values.yaml"):
    return loader.check(load_text(textwrap.dedent(text), fname))


def edit(replacements: dict[str, str]) -> str:
    text = BASE
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def line_of(text: str, needle: str, nth: int = 1) -> int:
    count = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            count += 1
            if count == nth:
                return i
    raise AssertionError(needle)


def only_error(result):
    assert len(result.errors) == 1, [str(p) for p in result.errors]
    return result.errors[0]


def test_base_document_is_valid():
    result = check(BASE)
    assert result.ok, [str(p) for p in result.problems]
    assert result.warnings == []
    assert list(result.catalog.resources) == ["cpu-small", "gpu-large"]


@pytest.mark.parametrize("path", sorted(p for p in CONFIG.rglob("*.yaml") if "demo" not in p.relative_to(CONFIG).parts),
                         ids=lambda p: p.relative_to(CONFIG).as_posix())
def test_shipped_values_files_are_valid(path):
    """Every file an operator may install is valid on its own (the demo overlay is not one: test_demo_hashes.py)."""
    result = loader.load([path])
    assert result.ok, "\n".join(str(p) for p in result.errors)


def test_unknown_resource_names_file_line_path_and_suggestion():
    text = edit({"      resources: [gpu-large]": "      resources: [cpu-small, gpu-larg]"})
    problem = only_error(check(text))
    assert format_path(problem.path) == "catalog.teams.cv.resources[1]"
    assert problem.location.line == line_of(text, "gpu-larg]")
    assert str(problem) == (
        f"values.yaml:{line_of(text, 'gpu-larg]')}: catalog.teams.cv.resources[1]: "
        "unknown resource 'gpu-larg' (did you mean 'gpu-large'?); define it under catalog.resources"
    )


def test_all_problems_reported_in_one_run():
    text = edit({
        "      image: scipy\n      cpu: {request: 2": "      image: scipi\n      cpu: {request: 2",
        "      resources: [gpu-large]": "      resources: [gpu-large, nope]",
        "  maxMinutes: 480": "  maxMinutes: 30",
    })
    messages = {format_path(p.path): p.message for p in check(text).errors}
    assert "unknown image 'scipi'" in messages["catalog.resources.cpu-small.image"]
    assert "unknown resource 'nope'" in messages["catalog.teams.cv.resources[1]"]
    assert "longer than sessions.maxMinutes (30)" in messages["sessions.defaultMinutes"]


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ("        teams: [cv]", "        teams: [cv, vision]", "auth.local.users.ada.teams[1]", "unknown team 'vision'"),
        ("      accelerators: [strix-halo]", "      accelerators: [strix-hal]", "catalog.resources.gpu-large.accelerators[0]",
         "unknown accelerator 'strix-hal' (did you mean 'strix-halo'?)"),
        ("      resources: [gpu-large]", "      resources: [gpu-large]\n      volumes: [imagenett]", "catalog.teams.cv.volumes[0]",
         "unknown volume 'imagenett' (did you mean 'imagenet'?)"),
        ("      accelerators: [strix-halo]",
         "      accelerators: [strix-halo]\n      acceleratorOverrides:\n        strix-halo: {image: pytorch}",
         "catalog.resources.gpu-large.acceleratorOverrides.strix-halo.image", "unknown image 'pytorch'"),
        ("      accelerators: [strix-halo]",
         "      accelerators: [strix-halo]\n      acceleratorOverrides:\n        mi300x: {env: {}}",
         "catalog.resources.gpu-large.acceleratorOverrides.mi300x", "does not offer"),
        ("      memory: {request: 16Gi}", "      memory: {request: 16Gi}\n      volumes: [data]", "catalog.resources.gpu-large.volumes[0]",
         "unknown volume 'data'"),
    ],
)
def test_references_must_resolve(old, new, path, fragment):
    problem = only_error(check(edit({old: new})))
    assert format_path(problem.path) == path
    assert fragment in problem.message


def test_request_above_limit():
    text = edit({"cpu: {request: 2, limit: 4}": "cpu: {request: 6, limit: 4}", "memory: {request: 4Gi, limit: 6Gi}": "memory: {request: 8Gi, limit: 6000Mi}"})
    errors = {format_path(p.path): p.message for p in check(text).errors}
    assert errors == {
        "catalog.resources.cpu-small.cpu.request": "request 6 is more than the limit 4",
        "catalog.resources.cpu-small.memory.request": "request 8Gi is more than the limit 6000Mi",
    }


def test_millicores_compare_with_cores():
    assert check(edit({"cpu: {request: 2, limit: 4}": 'cpu: {request: "500m", limit: 1}'})).ok
    problem = only_error(check(edit({"cpu: {request: 2, limit: 4}": 'cpu: {request: "1500m", limit: 1}'})))
    assert "more than the limit" in problem.message


@pytest.mark.parametrize("request_", [".nan", ".inf", '"nan"'])
def test_a_cpu_request_that_is_not_a_number_is_an_error_not_a_crash(request_):
    problems = check(edit({"cpu: {request: 2, limit: 4}": f"cpu: {{request: {request_}, limit: 4}}"})).errors
    assert [format_path(p.path) for p in problems] == ["catalog.resources.cpu-small.cpu.request"], problems


def test_gpu_and_accelerators_are_exclusive():
    text = edit({"      accelerators: [strix-halo]": "      accelerators: [strix-halo]\n      gpu: {resource: amd.com/gpu, count: 1}"})
    problem = only_error(check(text))
    assert format_path(problem.path) == "catalog.resources.gpu-large.accelerators"
    assert "not both" in problem.message


@pytest.mark.parametrize("count", ["0", "-1", "1.5", '"2"'])
def test_gpu_count_must_be_a_positive_integer(count):
    text = edit({"gpu: {resource: amd.com/gpu, count: 1}": f"gpu: {{resource: amd.com/gpu, count: {count}}}"})
    problem = only_error(check(text))
    assert format_path(problem.path) == "catalog.accelerators.strix-halo.gpu.count"
    assert problem.location.line == line_of(text, "gpu: {resource")


@pytest.mark.parametrize("name", ["gpu", "AMD.COM/gpu", "amd/gpu", "amd.com/"])
def test_extended_resource_names_are_checked(name):
    problem = only_error(check(edit({"gpu: {resource: amd.com/gpu": f"gpu: {{resource: {name}"})))
    assert format_path(problem.path) == "catalog.accelerators.strix-halo.gpu.resource"
    assert "not a valid extended resource name" in problem.message


def test_session_limits():
    text = edit({"      accelerators: [strix-halo]": "      accelerators: [strix-halo]\n      maxSessionMinutes: 600"})
    problem = only_error(check(text))
    assert format_path(problem.path) == "catalog.resources.gpu-large.maxSessionMinutes"
    assert problem.message == "600 is longer than sessions.maxMinutes (480)"
    problem = only_error(check(edit({"  defaultMinutes: 60": "  defaultMinutes: 500"})))
    assert format_path(problem.path) == "sessions.defaultMinutes"


@pytest.mark.parametrize("tag_line", ['      tag: "latest"', None])
def test_latest_or_missing_tag_refused_unless_pull_always(tag_line):
    replacement = tag_line if tag_line else ""
    text = edit({'      tag: "2026-11-02"': replacement})
    problem = only_error(check(text))
    assert "immutable tag" in problem.message and "pullPolicy: Always" in problem.message
    always = edit({'      tag: "2026-11-02"': (replacement + "\n" if replacement else "") + "      pullPolicy: Always"})
    assert check(always).ok


def test_memory_like_4GB_is_refused_with_hint():
    text = edit({"memory: {request: 4Gi, limit: 6Gi}": "memory: {request: 4GB, limit: 6Gi}"})
    problem = only_error(check(text))
    assert format_path(problem.path) == "catalog.resources.cpu-small.memory.request"
    assert problem.message == "'4GB' is not a valid memory quantity; write 4G or 4Gi"


def test_plaintext_password_refused_with_hint():
    problem = only_error(check(edit({f'passwordHash: "{HASH}"': 'passwordHash: "hunter2"'})))
    assert format_path(problem.path) == "auth.local.users.ada.passwordHash"
    assert "teamhub hash-password" in problem.message
    text = edit({f'passwordHash: "{HASH}"': f'passwordHash: "{HASH}"\n        password: hunter2'})
    problem = only_error(check(text))
    assert format_path(problem.path) == "auth.local.users.ada.password"
    assert "teamhub hash-password" in problem.message


def test_capitals_in_usernames_refused_with_the_lowercase_name():
    """JupyterHub lowercases login names: `oidc:JDoe` in values never matched the person `oidc:jdoe`."""
    text = edit({"      resources: [gpu-large]": "      resources: [gpu-large]\n      users: [\"oidc:JDoe\"]"})
    problem = only_error(check(text))
    assert format_path(problem.path) == "catalog.teams.cv.users[0]"
    assert problem.location.line == line_of(text, "oidc:JDoe")
    assert problem.message.endswith("(did you mean 'oidc:jdoe'?)")
    problem = only_error(check(edit({'admins: ["local:ada"]': 'admins: ["local:Ada"]'})))
    assert format_path(problem.path) == "auth.admins[0]" and "did you mean 'local:ada'?" in problem.message


def test_unknown_keys_refused_everywhere_with_suggestion():
    for old, new, path in [
        ("  maxMinutes: 480", "  maxMinuts: 480", "sessions.maxMinuts"),
        ("      displayName: Small", "      displayname: Small", "catalog.resources.cpu-small.displayname"),
        ("    enabled: true", "    enabeld: true", "auth.local.enabeld"),
        ("  volumes:\n    imagenet:", "  volume:\n    imagenet:", "catalog.volume"),
    ]:
        text = edit({old: new})
        result = check(text)
        unknown = [p for p in result.errors if format_path(p.path) == path]
        assert unknown, (path, [str(p) for p in result.errors])
        assert "unknown key" in unknown[0].message
        assert unknown[0].location.line == line_of(text, new.strip().split("\n")[0])
    problem = [p for p in check(edit({"  maxMinutes: 480": "  maxMinuts: 480"})).errors if "unknown key" in p.message][0]
    assert problem.message == "unknown key 'maxMinuts' (did you mean 'maxMinutes'?)"


def test_dns_label_keys():
    text = edit({"    cpu-small:\n      displayName": "    CPU_Small:\n      displayName"})
    errors = {format_path(p.path): p for p in check(text).errors}
    problem = errors["catalog.resources.CPU_Small"]
    assert problem.message.startswith("'CPU_Small' is not a valid DNS label: Lowercase letters")
    assert problem.location.line == line_of(text, "CPU_Small:")
    assert "unknown resource 'cpu-small'" in errors["catalog.teams.everyone.resources[0]"].message


def test_at_least_one_login_method():
    problem = only_error(check(edit({"    enabled: true": "    enabled: false"})))
    assert format_path(problem.path) == "auth"
    assert "no login method is enabled" in problem.message


def test_enabled_oauth_needs_client_and_callback():
    text = edit({"auth:\n": "auth:\n  github:\n    enabled: true\n    clientId: abc\n"})
    messages = sorted(p.message for p in check(text).errors)
    assert messages == [
        "github login is enabled but callbackUrl is missing",
        "github login is enabled but has neither clientSecret nor existingSecret",
    ]
    text = edit({"auth:\n": "auth:\n  oidc:\n    enabled: true\n    clientId: abc\n    existingSecret: {name: sso, key: secret}\n"
                            "    callbackUrl: https://hub.example.org/hub/oidc/oauth_callback\n"})
    assert [p.message for p in check(text).errors] == ["oidc login is enabled but issuerUrl is missing"]


def test_duplicate_keys_name_both_lines():
    text = edit({"  maxMinutes: 480": "  maxMinutes: 480\n  maxMinutes: 240"})
    problem = only_error(check(text))
    first, second = line_of(text, "maxMinutes: 480"), line_of(text, "maxMinutes: 240")
    assert problem.message.startswith(f"duplicate key 'maxMinutes' on lines {first} and {second}")
    assert problem.location.line == second


def test_yaml_syntax_error_is_a_problem_with_line():
    result = check("auth:\n  admins: [unclosed\n")
    problem = only_error(result)
    assert problem.message.startswith("not valid YAML")
    assert problem.location.line >= 2


def test_type_errors_say_what_was_expected():
    problem = only_error(check(edit({"nodeSelector: {node-type: strix-halo}": "nodeSelector: {node-type: 1}"})))
    assert format_path(problem.path) == "catalog.accelerators.strix-halo.nodeSelector.node-type"
    assert problem.message == "must be text, not a whole number (put it in quotes)"


def test_warnings_do_not_fail():
    text = edit({
        "  teams:\n    everyone:\n      resources: [cpu-small]": "  teams:\n    everyone:\n      resources: []\n    lonely:\n      resources: [cpu-small]",
        "auth:\n": "auth:\n  dummy: {enabled: true}\n",
    })
    result = check(text)
    assert result.ok
    warnings = {format_path(p.path): p.message for p in result.warnings}
    assert "nobody can belong" in warnings["catalog.teams.lonely"]
    assert "development only" in warnings["auth.dummy.enabled"]
    text = edit({"      resources: [gpu-large]": "      resources: [cpu-small]"})
    warnings = {format_path(p.path): p.message for p in check(text).warnings}
    assert warnings == {"catalog.resources.gpu-large": "no team lists this resource, so only admins can launch it"}


def test_merge_like_helm_reports_the_overriding_file():
    base = load_text(BASE, "values.yaml")
    override = load_text("sessions:\n  defaultMinutes: 900\n", "prod.yaml")
    result = loader.check(merge([base, override]))
    problem = only_error(result)
    assert (problem.location.file, problem.location.line) == ("prod.yaml", 2)
    # null removes a key, as with helm
    removed = loader.check(merge([base, load_text("catalog:\n  accelerators: null\n", "x.yaml")]))
    assert "unknown accelerator 'strix-halo'" in only_error(removed).message


def test_defaults_come_from_the_schema():
    text = BASE.split("sessions:")[0]
    result = check(text)
    assert result.ok
    assert result.values["sessions"] == {"defaultMinutes": 60, "maxMinutes": 480, "idleCullMinutes": 60, "budgetCheckSeconds": 5,
                                         "concurrentStarts": 100,
                                         "namedServers": {"enabled": False, "maxPerPerson": 2}}
    assert result.catalog.images["scipy"].pull_policy == "IfNotPresent"
    assert result.catalog.volumes["imagenet"].read_only is True


DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_images_without_digest_warn_unless_required_or_silenced():
    """Tags move, digests do not: unset requireDigests warns per unpinned image, true refuses, false is quiet."""
    chart_images = f"hub:\n  image: {{name: ghcr.io/example-university/teamhub-hub, tag: '1.0'}}\nproxy:\n  image: {{name: quay.io/x/chp, digest: {DIGEST}}}\n"
    unset = check(edit({"  requireDigests: false\n": ""}) + chart_images)
    assert unset.ok
    warned = {format_path(p.path): p.message for p in unset.warnings}
    assert set(warned) == {"catalog.images.scipy", "hub.image"}  # the proxy has its digest
    assert warned["hub.image"].startswith("no digest") and "requireDigests" in warned["hub.image"]
    required = check(edit({"  requireDigests: false\n": "  requireDigests: true\n"}) + chart_images)
    assert {format_path(p.path) for p in required.errors} == {"catalog.images.scipy", "hub.image"}
    assert check(BASE + chart_images).warnings == []


def test_digest_pins_an_image_by_exactly_its_content():
    pinned = check(edit({'      tag: "2026-11-02"\n': f"      tag: \"2026-11-02\"\n      digest: {DIGEST}\n"}))
    assert pinned.ok and pinned.catalog.images["scipy"].ref == f"quay.io/jupyter/scipy-notebook:2026-11-02@{DIGEST}"
    untagged = check(edit({'      tag: "2026-11-02"\n': f"      digest: {DIGEST}\n"}))
    assert untagged.ok, "a digest pins an image without a tag"
    assert untagged.catalog.images["scipy"].ref == f"quay.io/jupyter/scipy-notebook@{DIGEST}"
    short = check(edit({'      tag: "2026-11-02"\n': '      tag: "2026-11-02"\n      digest: sha256:abc\n'}))
    assert format_path(only_error(short).path) == "catalog.images.scipy.digest"


def test_chart_values_show_exactly_the_schema_defaults():
    """Every default lives in the schema (the loader fills it in); chart/values.yaml only shows them to the
    operator, so every key it shows must have a schema default and equal it."""
    from support import ROOT
    from teamhub.values.schema import inlined_schema

    shown = yaml.safe_load((ROOT / "chart" / "values.yaml").read_text(encoding="utf-8"))
    problems: list = []

    def walk(value, node, path):
        if "default" in node:
            if value != node["default"]:
                problems.append(f"{path}: chart/values.yaml shows {value!r}, the schema's default is {node['default']!r}")
            return
        if not isinstance(value, dict):
            problems.append(f"{path}: chart/values.yaml shows {value!r} but the schema has no default")
            return
        extra = node.get("additionalProperties")
        for key, sub in value.items():
            walk(sub, node.get("properties", {}).get(key) or (extra if isinstance(extra, dict) else {}), f"{path}.{key}".lstrip("."))

    walk(shown, inlined_schema(), "")
    assert not problems, "\n".join(problems)
