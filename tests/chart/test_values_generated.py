"""chart/values.yaml is generated from the schema (issue 25): every key shown with its description, the data
exactly the schema's defaults, `helm show values` of the packaged chart shows this file, and a renamed or
removed key is refused with a sentence naming its replacement by `teamhub validate` and by helm itself."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from support import CONFIG, ROOT
from teamhub.values import chartvalues, generate, renames
from teamhub.values import schema as schema_mod
from teamhub.values.schema import inlined_schema, with_defaults
from teamhub.values.validation import load
from test_chart import CHART, helm

VALUES_FILE = ROOT / "chart" / "values.yaml"
KEY = re.compile(r"^(?P<ws> *)(?:# )?(?P<rel> *)(?P<key>[A-Za-z<][\w<>-]*):(?: .*)?$")


def schema_keys(node: dict, path: tuple = ()) -> list[tuple[tuple, dict]]:
    """(path, node) of every key the file must show: the properties chains from the root, and the keys of a map's
    entries (`<key>`), down to a key whose value is shown whole (it has a default, except a section of described keys)."""
    out = []
    for key, sub in node.get("properties", {}).items():
        if renames.retired(sub):
            continue
        out.append((path + (key,), sub))
        props = sub.get("properties") or {}
        if props and ("default" not in sub or all(s.get("description") for s in props.values())):
            out += schema_keys(sub, path + (key,))
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("properties") and not props:
            out += schema_keys(extra, path + (key, "<key>"))
    return out


def shown_keys(text: str) -> dict[tuple, str]:
    """Key path -> the comment right above it, read from the file's indentation (a commented-out block keeps
    its `#` in one column and nests after it)."""
    lines = text.splitlines()
    out, stack = {}, []  # stack: (depth, key)
    for i, line in enumerate(lines):
        m = KEY.match(line)
        if not m or line.lstrip().startswith("# #"):
            continue
        depth = len(m["ws"]) + len(m["rel"])
        stack = [(d, k) for d, k in stack if d < depth] + [(depth, m["key"])]
        comment, j = [], i - 1
        prefix = " " * len(m["ws"]) + ("# " if line.lstrip().startswith("#") else "") + m["rel"] + "# "
        # up to a nested line (a previous sibling's entries or keys' descriptions); a previous commented-out
        # sibling key may be collected too, so the test asks for the description at the end
        while j >= 0 and lines[j].startswith(prefix) and lines[j][len(prefix):][:1] not in (" ", "#"):
            comment.insert(0, lines[j][len(prefix):])
            j -= 1
        out[tuple(k for _, k in stack)] = " ".join(comment)
    return out


def words(text: str) -> str:
    return " ".join(str(text).split())


def test_every_schema_key_is_shown_with_its_description():
    shown = shown_keys(VALUES_FILE.read_text(encoding="utf-8"))
    expected = schema_keys(inlined_schema())
    assert len(expected) > 250, len(expected)
    missing = [".".join(p) for p, _ in expected if p not in shown]
    assert missing == []
    undescribed = [".".join(p) for p, node in expected if not node.get("description")]
    assert undescribed == [], "give these schema keys a description"
    wrong = [f"{'.'.join(p)}: shows {shown[p]!r}" for p, node in expected if not shown[p].endswith(words(node["description"]))]
    assert wrong == []


def test_the_file_is_exactly_the_schema_defaults_and_current():
    text = VALUES_FILE.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == with_defaults({})
    assert text == chartvalues.render_chart_values() == chartvalues.render_chart_values()  # current and deterministic
    assert VALUES_FILE not in generate.stale_outputs()


def test_helm_show_values_of_the_packaged_chart_is_the_file(tmp_path):
    helm("helm3", "package", CHART, "--destination", tmp_path)
    [package] = tmp_path.glob("teamhub-*.tgz")
    shown = helm("helm3", "show", "values", package).stdout
    assert shown == VALUES_FILE.read_text(encoding="utf-8") + "\n"  # helm adds a newline of its own


def test_the_hub_image_is_the_one_the_project_builds():
    built = yaml.safe_load((ROOT / "dockerfiles" / "images.yaml").read_text())["images"]["hub"]
    assert yaml.safe_load(VALUES_FILE.read_text())["hub"]["image"]["name"] == built["name"] == with_defaults({})["hub"]["image"]["name"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert f"image: {built['name']}:{chart['appVersion']}" in chart["annotations"]["artifacthub.io/images"]


# --- a renamed and a removed key (synthetic: the schema's history has none yet) ---------------------------

@pytest.fixture
def retired_schema(tmp_path, monkeypatch):
    """The real schema plus hub.oldImage (renamed to hub.image) and sessions.cullIdle (removed), loaded as the
    code loads the schema; the caches are emptied before and after so no other test sees it."""
    source = yaml.safe_load(schema_mod.SCHEMA_FILE.read_text(encoding="utf-8"))
    source["properties"]["hub"]["properties"]["oldImage"] = {"x-renamed-to": "hub.image"}
    source["properties"]["sessions"]["properties"]["cullIdle"] = {"x-removed": "set sessions.idleCullMinutes (0 turns the culler off)"}
    path = tmp_path / "values.schema.yaml"
    path.write_text(yaml.safe_dump(source, sort_keys=False))
    caches = (schema_mod.schema, schema_mod.inlined_schema, schema_mod.validator)
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(schema_mod, "SCHEMA_FILE", path)
    yield
    monkeypatch.undo()
    for cache in caches:
        cache.cache_clear()


RENAMED = "renamed to hub.image: write hub.image instead"
REMOVED = "removed: set sessions.idleCullMinutes (0 turns the culler off)"


def test_validate_names_the_replacement_of_a_retired_key(retired_schema, tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("hub:\n  oldImage: {name: example.org/hub, tag: '1'}\nsessions:\n  cullIdle: true\n")
    checked = load([CONFIG / "values.yaml", old])
    assert sorted(str(p) for p in checked.errors) == sorted([f"{old}:2: hub.oldImage: {RENAMED}", f"{old}:4: sessions.cullIdle: {REMOVED}"])
    # Shown nowhere as a setting; listed with its sentence in the reference.
    assert "oldImage" not in chartvalues.render_chart_values() and "cullIdle" not in chartvalues.render_chart_values()
    reference = generate.render_values_reference()
    assert f"| `hub.oldImage` | {RENAMED} |" in reference and f"| `sessions.cullIdle` | {REMOVED} |" in reference


@pytest.mark.parametrize("which", ["helm3", "helm4"])
def test_helm_names_the_replacement_of_a_retired_key(which, retired_schema, tmp_path):
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "values.schema.json").write_text(generate.render_chart_schema())
    old = tmp_path / "old.yaml"
    old.write_text("hub:\n  oldImage: {name: example.org/hub, tag: '1'}\n")
    r = helm(which, "template", "t", chart, "-f", CONFIG / "values.yaml", "-f", old, check=False)
    assert r.returncode != 0 and "oldImage" in r.stderr and RENAMED in r.stderr, r.stderr
    assert "additional properties" not in r.stderr.lower()


# --- templates read values directly --------------------------------------------------------------------

RESTATED = re.compile(r"Values\.([A-Za-z][\w.]*)\s*\|\s*default\s+(\"[^\"]*\"|[\w.]+)")


def _literal(text: str):
    """A template's default as data ("x" a string, dict/list empty ones); None for an expression (.Chart.Name)."""
    if text.startswith('"'):
        return text[1:-1]
    return {"dict": {}, "list": []}.get(text, int(text) if text.isdigit() else None)


def test_templates_do_not_restate_the_schema_defaults():
    """chart/values.yaml gives every default, so `.Values.x | default <the same value>` only hides a value the
    operator emptied on purpose; a default that means something else (nameOverride "" -> the chart's name) stays."""
    restated = []
    for template in sorted((CHART / "templates").rglob("*")):
        if template.suffix not in (".yaml", ".tpl", ".txt"):
            continue
        for n, line in enumerate(template.read_text(encoding="utf-8").splitlines(), 1):
            for path, fallback in RESTATED.findall(line):
                node = inlined_schema()
                for key in path.split("."):
                    node = node.get("properties", {}).get(key, {})
                if "default" in node and (node["default"] or _literal(fallback) == node["default"]):
                    restated.append(f"{template.relative_to(CHART)}:{n}: .Values.{path} | default {fallback}")
    assert restated == []
