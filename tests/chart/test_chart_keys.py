"""Every key of values reaches something: a key the schema accepts and nothing reads is a silent
misconfiguration (issue 11 item 3: proxy.image.pullSecrets reached no pod, a private mirror failed to pull).

From the schema alone, values are generated that set every leaf key to a marker valid for its type. Keys the
schema marks `x-read-by: hub` must arrive in the values Secret (the hub reads them there); every other key
must appear in a rendered object other than the values Secret. Switches (enums, booleans) have no marker:
each other value must change a rendered object. A few combinations expose keys another key hides (a
password next to an existing Secret, a size next to an existing claim); they are listed in COMBINATIONS.
Real helm renders everything.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from teamhub.values.validation import inlined_schema
from test_chart import CHART, KUBE_VERSIONS, helm

# Candidates for a string marker, tried in order until one matches the key's pattern; {i} makes it unique.
STRING_MARKERS = (
    "mark-{i}-x",
    "MARK_{i}_X",
    "https://mark-{i}.example.org",
    "/mark-{i}",
    "/mark-{i}/",
    "10.{i}.0.0/16",
    "{n}Mi",
    "{n}m",
    "sha256:{sha}",
    "postgresql://mark-{i}@db/x",
    "$2b$12${bcrypt}",
    "#{hexcolor}",
    "local:mark-{i}-x",
    "Mark{i}X",
)

# Combinations that expose keys another marker hides: the inline password is used only without
# existingSecret, the backup volume's size and class only without existingClaim.
COMBINATIONS = (
    {("hub", "db", "type"): "postgres", ("hub", "db", "existingSecret"): {},
     ("hub", "db", "backupVolume", "existingClaim"): ""},
)


class Generator:
    """Walks the schema and builds values with one marker per leaf."""

    def __init__(self):
        self.count = 0
        self.markers: dict = {}   # path -> marker text to find
        self.switches: dict = {}  # path -> the other allowed values
        self.hub_read: set = set()

    def unique(self) -> int:
        self.count += 1
        return self.count

    def value(self, node: dict, path: tuple, hub: bool):
        hub = hub or node.get("x-read-by") == "hub"
        if hub:
            self.hub_read.add(path)
        for key in ("anyOf", "oneOf"):
            if key in node:  # the first branch that can hold a marker
                return self.value({**node[key][0], **{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}},
                                  path, hub)
        if "enum" in node or node.get("type") == "boolean":
            choices = node.get("enum", [True, False])
            self.switches[path] = list(choices[1:])
            return choices[0]
        if "const" in node:
            return node["const"]
        kind = node.get("type")
        if kind in ("integer", "number"):
            i = self.unique()
            low, high = node.get("minimum", 0), node.get("maximum", 10**6)
            n = 40000 + i if low <= 40000 + i <= high else high - i
            if n < low:  # a narrow range (a log level): a value inside it, unique only as far as the range allows
                n = low + i % (high - low + 1)
            self.markers[path] = str(n)
            return n
        if kind == "string":
            text = self.string(node.get("pattern"), path)
            self.markers[path] = text
            return text
        if kind == "array":
            return [self.value(node.get("items", {}), (*path, 0), hub)]
        if kind == "object" or "properties" in node:
            if node.get("properties"):
                return {k: self.value(sub, (*path, k), hub) for k, sub in node["properties"].items()}
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                key = self.string((node.get("propertyNames") or {}).get("pattern"), path)
                return {key: self.value(extra, (*path, key), hub)}
            if path == ("global",):
                return {}  # helm's, passed to subcharts; teamhub has none
            # A free-form object (e.g. an egress rule's `to` entry): a marker inside it.
            text = f"mark-{self.unique()}-x"
            self.markers[path] = text
            return {"mark": text}
        raise AssertionError(f"{'.'.join(map(str, path))}: no marker for a schema node of type {kind!r}; teach Generator")

    def string(self, pattern, path) -> str:
        i = self.unique()
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        fill = {"i": i, "n": 1000 + i, "sha": digest, "bcrypt": (digest * 2)[:53], "hexcolor": digest[:6]}
        for candidate in STRING_MARKERS:
            text = candidate.format(**fill)
            if pattern is None or re.search(pattern, text):
                return text
        raise AssertionError(f"{'.'.join(map(str, path))}: no marker matches {pattern!r}; add one to STRING_MARKERS")


def set_path(data: dict, path: tuple, value) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def chart_sections() -> dict:
    """The schema's top-level sections, except those only the hub reads: those are covered by the hub's tests."""
    schema = inlined_schema()
    return {k: v for k, v in schema["properties"].items() if v.get("x-read-by") != "hub"}


def render(values: dict, tmp_path, name: str) -> tuple[str, str]:
    """(text of every rendered object except the values Secret, the values Secret's values.yaml)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    # as on a cluster serving ValidatingAdmissionPolicy, ServiceMonitors and the Gateway API, so
    # admissionPolicy.*, metrics.serviceMonitor.* and httpRoute.* reach their objects
    out = helm("helm3", "template", "t", CHART, "--namespace", "lab", "--kube-version", KUBE_VERSIONS[-1], "--api-versions",
               "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy", "--api-versions",
               "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions", "gateway.networking.k8s.io/v1/HTTPRoute",
               "-f", path).stdout
    objects, secret = [], ""
    for doc in yaml.safe_load_all(out):
        if not doc:
            continue
        if doc["kind"] == "Secret" and doc["metadata"]["name"].endswith("-values"):
            secret = doc["stringData"]["values.yaml"]
            continue
        if doc["kind"] == "Secret" and "values.yaml" in doc.get("stringData", {}):
            # the upgrade check's copy of every value (it checks them as the hub would): not where a key arrives
            doc["stringData"].pop("values.yaml")
        annotations = doc.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        annotations.pop("checksum/hub-values", None)  # a hash of what the hub reads: not where a key "arrives"
        for key, encoded in (doc.get("data") or {}).items() if doc["kind"] == "Secret" else ():
            doc["data"][key] = base64.b64decode(encoded).decode(errors="replace")
        objects.append(json.dumps(doc, sort_keys=True))
    return "\n".join(objects), secret


def found(marker: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(marker)}(?![A-Za-z0-9])", text) is not None


def dotted(path) -> str:
    return ".".join(map(str, path))


# Keys whose value must name something of the shipped catalog (a marker would be refused by the chart): the
# placeholders' resource and accelerator. Their "marker" is then that name.
CATALOG_NAMES = {("resource",): "course-cv", ("accelerator",): "strix-halo"}
PLACEHOLDER_KINDS = ("scheduling", "userPlaceholders", "nodeKinds")


def use_catalog_names(gen: Generator, values: dict) -> None:
    for kind, entry in values["scheduling"]["userPlaceholders"]["nodeKinds"].items():
        for (key,), name in CATALOG_NAMES.items():
            entry[key] = name
            gen.markers[(*PLACEHOLDER_KINDS, kind, key)] = name
    # the user scheduler runs only while a resource asks for it: one does, so its keys reach its objects
    values["catalog"]["resources"]["course-cv"]["userScheduler"] = True


@pytest.fixture(scope="module")
def generated():
    gen = Generator()
    values = {k: gen.value(v, (k,), False) for k, v in chart_sections().items()}
    # The sections only the hub reads come from the shipped configuration: the schema's cross-section
    # rules (e.g. at least one login method) must hold, and their keys are the hub's tests' business.
    shipped = yaml.safe_load((CHART.parent / "config" / "values.yaml").read_text())
    values.update({k: v for k, v in shipped.items() if k not in values and k in inlined_schema()["properties"]})
    use_catalog_names(gen, values)
    return gen, values


def test_every_chart_key_reaches_a_rendered_object(generated, tmp_path):
    gen, base = generated
    assert len(gen.markers) > 40 and len(gen.switches) > 10, "the generator walked too little of the schema"
    scenarios = {"base": base}
    for path, others in gen.switches.items():
        for other in others:
            values = copy.deepcopy(base)
            set_path(values, path, other)
            scenarios[f"{dotted(path)}={json.dumps(other)}"] = values
    for i, combination in enumerate(COMBINATIONS):
        values = copy.deepcopy(base)
        for path, value in combination.items():
            set_path(values, path, value)
        scenarios[f"combination-{i}"] = values
    with ThreadPoolExecutor(max_workers=2) as pool:
        rendered = dict(zip(scenarios, pool.map(lambda item: render(item[1], tmp_path, f"s{hash(item[0]) & 0xffffff}"),
                                                scenarios.items()), strict=True))
    objects = "\n".join(r[0] for r in rendered.values())
    secrets = "\n".join(r[1] for r in rendered.values())

    unreached = []
    for path, marker in gen.markers.items():
        where = secrets if path in gen.hub_read else objects
        if not found(marker, where):
            unreached.append(f"{dotted(path)} (marker {marker!r}, looked in {'the values Secret' if path in gen.hub_read else 'rendered objects'})")
    for path, others in gen.switches.items():
        if path in gen.hub_read:
            continue
        for other in others:
            if rendered[f"{dotted(path)}={json.dumps(other)}"][0] == rendered["base"][0]:
                unreached.append(f"{dotted(path)}: setting it to {json.dumps(other)} changes no rendered object")
    assert not unreached, "keys the chart accepts but nothing reads:\n" + "\n".join(unreached)

