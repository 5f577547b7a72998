"""The user scheduler from the hub's side (issue 30): a resource with `userScheduler: true` has its servers name
the chart's user scheduler (TEAMHUB_USER_SCHEDULER), every other resource keeps the default scheduler, the name
never sticks to the spawner's next start, and the admission parameters say which is which (shape line 16)."""

from __future__ import annotations

import kubernetes_validate
import yaml
from hubhelpers import VALUES, configured, kube_spawner
from teamhub.catalog import admission
from teamhub.catalog.loader import load_or_raise
from test_pod_manifest import manifest

ADMIN = "local:ada"
SCHEDULER = "t-teamhub-user-scheduler"


def packed_values(tmp_path):
    values = yaml.safe_load(VALUES.read_text())
    values["catalog"]["resources"]["cpu-small"]["userScheduler"] = True
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_a_packed_resources_servers_name_the_user_scheduler_and_no_other(tmp_path):
    sp = kube_spawner(configured(packed_values(tmp_path), environ={"TEAMHUB_USER_SCHEDULER": SCHEDULER}), ADMIN, admin=True)
    pod = manifest(sp, {"resource": "cpu-small"})
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    assert pod["spec"]["schedulerName"] == SCHEDULER
    assert not manifest(sp, {"resource": "course-nlp"})["spec"].get("schedulerName")  # reset for the next start
    assert manifest(sp, {"resource": "cpu-small"})["spec"]["schedulerName"] == SCHEDULER


def test_without_the_charts_scheduler_name_the_default_scheduler_stays(tmp_path):
    sp = kube_spawner(configured(packed_values(tmp_path)), ADMIN, admin=True)
    assert not manifest(sp, {"resource": "cpu-small"})["spec"].get("schedulerName")


def test_the_admission_parameters_mark_exactly_the_packed_resources(tmp_path):
    catalog = load_or_raise([packed_values(tmp_path)]).catalog
    params = admission.params(catalog, None)
    lines = {key: shape.split("\n") for key, shape in params.items() if not key.startswith(("_", "volume.", "home"))}
    assert all(len(s) == admission.SHAPE_LINES == 16 for s in lines.values())
    assert {key for key, s in lines.items() if s[15] == "true"} == {"cpu-small"}
    assert {s[15] for s in lines.values()} == {"true", "false"}
