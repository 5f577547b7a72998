"""Random documents thrown at the loader: a result or validation problems, never another exception."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import CONFIG
from teamhub.catalog import loader
from teamhub.catalog.access import Person, RequestRefused, check_request, resolve
from teamhub.values.source import load_text

KEYS = ["auth", "catalog", "sessions", "images", "resources", "teams", "accelerators", "volumes", "cpu", "memory",
        "request", "limit", "gpu", "count", "resource", "image", "name", "tag", "users", "teams", "local", "enabled",
        "passwordHash", "maxMinutes", "defaultMinutes", "everyone", "cpu-small", "strix-halo", "accelerators",
        "acceleratorOverrides", "nodeSelector", "tolerations", "env", "quota", "maxGpus", "displayName", "x"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["4Gi", "4GB", "500m", "latest", "amd.com/gpu", "local:ada", "$2b$12$x"]))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.sampled_from(KEYS), children, max_size=5)),
    max_leaves=30,
)

BASE = yaml.safe_load((CONFIG / "values.yaml").read_text())


def _check_text(text: str):
    result = loader.check(load_text(text, "fuzz.yaml"))
    for problem in result.problems:  # every problem points into the document, in words
        assert problem.level in ("error", "warning") and problem.message.strip()
        assert problem.location is not None and problem.location.file == "fuzz.yaml", problem
        assert str(problem).startswith("fuzz.yaml:") and problem.message in str(problem)
    assert (result.catalog is not None) == result.ok and (result.values is not None) == result.ok
    if result.ok:
        access = resolve(result.catalog, Person("local:ada", admin=True))
        for resource in access.resources:
            try:
                check_request(result.catalog, Person("local:ada", admin=True), {"resource": resource.key})
            except RequestRefused:
                pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(doc):
    _check_text(yaml.safe_dump({"catalog": doc} if not isinstance(doc, dict) else doc))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["auth", "catalog", "sessions"]), documents)
def test_mutated_real_values(section, doc):
    mutated = dict(BASE)
    mutated[section] = doc
    _check_text(yaml.safe_dump(mutated))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    _check_text(text)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


PATHS = [p for p in _paths(BASE) if p]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), documents)
def test_one_value_replaced_deep_inside_real_values(path, doc):
    import copy

    mutated = copy.deepcopy(BASE)
    node = mutated
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = doc
    _check_text(yaml.safe_dump(mutated))
