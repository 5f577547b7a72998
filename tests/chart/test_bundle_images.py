"""The bundle's image list (issue 29) is computed from the rendered chart and the catalog, never written by
hand: for config/values.yaml and every example, it equals every `image:` anywhere in the rendered objects
(hooks and the `helm test` pod included) plus the image of every placement in the admission policy's
parameters (the images the hub may start, pre-pulled or not). The walk here is generic (any key named
`image` in any object), the module's is by pod template: a container the module misses fails here."""

from __future__ import annotations

import pytest
import yaml
from support import CONFIG, ROOT
from teamhub.bundle import imagelist
from teamhub.catalog.model import image_ref
from test_admission_params import VAP, files_for
from test_chart import HELMS, VALUES_FILES, render

CHART = ROOT / "chart"
PARAM_META = ("volume.", "home", "_launch-env", "devices.")  # parameter keys that are not placements


def every_image_field(node, out: set) -> set:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "image" and isinstance(v, str):
                out.add(v)
            else:
                every_image_field(v, out)
    elif isinstance(node, list):
        for item in node:
            every_image_field(item, out)
    return out


def expected_refs(*values_files) -> set:
    docs = render("helm3", *values_files, extra=["--api-versions", VAP])
    refs = every_image_field(docs, set())
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-admission"):
            refs |= {v.split("\n", 1)[0] for k, v in doc["data"].items() if not k.startswith(PARAM_META)}
    return refs


def computed(*values_files) -> list:
    return imagelist.images(CHART, values_files, helm=str(HELMS["helm3"]))


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_image_list_equals_every_rendered_image(values):
    files = files_for(values)
    images = computed(*files)
    assert {i.ref for i in images} == expected_refs(*files)
    assert len(images) == len({i.ref for i in images})
    assert all(i.paths for i in images)


def test_each_path_names_its_image_and_the_chart_images_are_there():
    images = {i.ref: i.paths for i in computed(CONFIG / "values.yaml")}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    hub = image_ref(defaults["hub"]["image"]["name"], chart["appVersion"])
    assert images[hub] == ["hub.image"]  # the hub, its check Job, the prepull awaiter and the test pod
    proxy, pause = defaults["proxy"]["image"], defaults["prePuller"]["pause"]
    assert images[image_ref(proxy["name"], proxy["tag"])] == ["proxy.image"]
    assert images[image_ref(pause["name"], pause["tag"])] == ["prePuller.pause"]
    values = yaml.safe_load((CONFIG / "values.yaml").read_text(encoding="utf-8"))
    for key in ("pytorch-rocm", "pytorch-rocm-gfx1151", "scipy"):  # an accelerator override's image too
        img = values["catalog"]["images"][key]
        assert f"catalog.images.{key}" in images[image_ref(img["name"], img["tag"])]


def test_every_kind_of_image_path(tmp_path):
    """prePull: false (only the admission parameters name it), extraImages, a test image of its own, an extra
    hub container (a plain string in a list), a pinned digest: each is listed with the path that names it."""
    digest = "sha256:" + "ab" * 32
    extra = {
        "catalog": {"images": {"scipy": {"name": "registry.example.org/lab/scipy", "tag": "1", "prePull": False,
                                         "digest": digest},
                               "unused": {"name": "registry.example.org/lab/unused", "tag": "1"}}},
        "prePuller": {"extraImages": {"r": {"name": "registry.example.org/lab/r", "tag": "4.4"}}},
        "test": {"image": {"name": "registry.example.org/lab/curl", "tag": "8"}},
        "hub": {"extraContainers": [{"name": "sidecar", "image": "registry.example.org/lab/side:2"}]},
    }
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(extra), encoding="utf-8")
    files = (CONFIG / "values.yaml", path)
    images = {i.ref: i.paths for i in computed(*files)}
    assert set(images) == expected_refs(*files)
    assert images[f"registry.example.org/lab/scipy:1@{digest}"] == ["catalog.images.scipy"]
    assert images["registry.example.org/lab/r:4.4"] == ["prePuller.extraImages.r"]
    assert images["registry.example.org/lab/curl:8"] == ["test.image"]
    assert images["registry.example.org/lab/side:2"] == ["hub.extraContainers[0].image"]
    assert not any("unused" in ref for ref in images)  # no resource launches it: nothing could run it
