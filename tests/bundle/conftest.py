"""Fixtures of the bundle tier: two real registries on loopback, a "public" one seeded with a small image for
every image the test values name, and a "site" one; the values naming them."""

from __future__ import annotations

import pytest
import yaml
from bundlereg import Registry, crane, seed_image
from support import CONFIG, ROOT

MULTI_PLATFORM = "/configurable-http-proxy:"  # seeded as an index: a bundle keeps every platform, digest unchanged
APP_VERSION = yaml.safe_load((ROOT / "chart" / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"]


def image_values(host: str) -> dict:
    """config/values.yaml's images (and the chart's own, an extra image to pre-pull, a test image of its own)
    renamed into `host`: the same keys and tags, so the catalog and the chart render as they ship."""
    values = yaml.safe_load((CONFIG / "values.yaml").read_text(encoding="utf-8"))
    catalog = {key: {"name": f"{host}/lab/{key}", "tag": img["tag"]} for key, img in values["catalog"]["images"].items()}
    return {
        "hub": {"image": {"name": f"{host}/teamhub/hub"}},  # tag: the chart's appVersion
        "proxy": {"image": {"name": f"{host}/jupyterhub/configurable-http-proxy", "tag": "5.3.0"}},
        "prePuller": {"pause": {"name": f"{host}/k8s/pause", "tag": "3.10"},
                      "extraImages": {"r": {"name": f"{host}/rocker/r-ver", "tag": "4.4.2"}}},
        "test": {"image": {"name": f"{host}/library/curl", "tag": "8.11"}},
        "catalog": {"images": catalog},
    }


def refs_of(values: dict) -> list[str]:
    out = [f"{values['hub']['image']['name']}:{APP_VERSION}"]
    for img in (values["proxy"]["image"], values["prePuller"]["pause"], values["prePuller"]["extraImages"]["r"],
                values["test"]["image"], *values["catalog"]["images"].values()):
        out.append(f"{img['name']}:{img['tag']}")
    return out


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    root = tmp_path_factory.mktemp("registries")
    public, site = Registry(root, "public").start(), Registry(root, "site").start()
    yield public, site
    public.stop()
    site.stop()


def seed(public: Registry, workdir, refs, held_back=(), size: int = 50_000) -> dict:
    """Push a small image for each ref: every catalog image on one shared base (its layers stored once in
    the bundle), the rest on an empty OCI or Docker base. Returns ref -> digest."""
    base = f"{public.host}/lab/base:1"
    digests = {base: seed_image(workdir, base, size=6 * size, oci=True)}
    for i, ref in enumerate(refs):
        if ref in held_back:
            continue
        if MULTI_PLATFORM in ref:  # an index of two images, as multi-platform images are published
            parts = [seed_image(workdir, f"{ref}-{arch}", size=size + arch_i, oci=True)
                     for arch_i, arch in enumerate(("amd64", "arm64"))]
            name = ref.rsplit(":", 1)[0]
            crane("index", "append", "--insecure", *(a for d in parts for a in ("-m", f"{name}@{d}")), "-t", ref)
            digests[ref] = crane("digest", "--insecure", ref)
            continue
        shared = "/lab/" in ref
        digests[ref] = seed_image(workdir, ref, base=base if shared else None, size=size + 1000 * i, oci=i % 2 == 0)
    return digests
