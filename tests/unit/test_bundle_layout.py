"""The bundle's pieces that need no registry (issue 29): reference parsing, the OCI layout's blob store,
verification sentences, the site overlay, and plain HTTP never assumed."""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading

import pytest
from teamhub.bundle import archive, create, push, refs, tools, verify
from teamhub.bundle import layout as bl

DIGEST = "sha256:" + "0f" * 32


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("quay.example.org/jupyter/scipy:2026-11-02", "quay.example.org", "jupyter/scipy", "2026-11-02", None),
    ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", None, None),
    (f"localhost/x:1@{DIGEST}", "localhost", "x", "1", DIGEST),
    ("rocker/r-ver:4.4.2", "docker.io", "rocker/r-ver", "4.4.2", None),
    ("python", "docker.io", "library/python", None, None),
])
def test_parse(text, registry, repository, tag, digest):
    ref = refs.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize("text", ["host:5000/Upper/x:1", "x@sha256:short", "reg.example.org/"])
def test_parse_refuses(text):
    with pytest.raises(ValueError, match="digest|not an image reference"):
        refs.parse(text)


def small_bundle(tmp_path):
    """A bundle.json over a layout holding one image (config + one layer), written the way create does."""
    lay = bl.Layout(tmp_path / "images")
    lay.init()
    config, layer = lay.put(b'{"architecture":"amd64"}'), lay.put(b"layer bytes")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 24},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 11}]}).encode()
    top = lay.put(manifest)
    lay.write_index([{"mediaType": bl.media_type(manifest), "digest": top, "size": len(manifest)}])
    lay.finish()
    doc = {"bundle": 1, "values": ["values/01-values.yaml"], "lists": {},
           "images": [{"ref": "reg.example.org/lab/scipy:1", "registry": "reg.example.org", "repository": "lab/scipy",
                       "tag": "1", "digest": top, "mediaType": bl.media_type(manifest), "size": 0,
                       "paths": ["catalog.images.scipy"]}],
           "blobs": {config: 24, layer: 11, top: len(manifest)},
           "files": {f: bl.sha256_file(tmp_path / f) for f in ("images/index.json", "images/oci-layout")}}
    (tmp_path / bl.MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    return doc, lay, layer


def test_verify_intact_then_names_a_tampered_and_a_missing_blob(tmp_path):
    doc, lay, layer = small_bundle(tmp_path)
    assert verify.problems(tmp_path) == []
    lay.path(layer).write_bytes(b"layer bytez")
    [problem] = verify.problems(tmp_path)
    assert f"blob {lay.path(layer)} was tampered with or damaged" in problem
    assert "used by reg.example.org/lab/scipy:1" in problem
    lay.path(layer).unlink()
    assert verify.problems(tmp_path) == [f"blob {lay.path(layer)} is missing (used by reg.example.org/lab/scipy:1)."]
    (tmp_path / "images" / "index.json").write_text("{}", encoding="utf-8")
    assert any("images/index.json was changed" in p for p in verify.problems(tmp_path))


def test_verify_without_manifest(tmp_path):
    assert verify.problems(tmp_path) == [f"{tmp_path / 'bundle.json'} does not exist: {tmp_path} is not a bundle made "
                                         "by `teamhub bundle create` (or it is unfinished)"]


def test_receive_keeps_only_complete_checked_blobs(tmp_path):
    lay = bl.Layout(tmp_path)
    lay.init()
    good = lay.put(b"abc")
    lay.path(good).unlink()
    with pytest.raises(bl.LayoutError, match="received 3 bytes"):
        lay.receive(good, 3, io.BytesIO(b"abd"))
    assert not lay.has(good) and not list(lay.partial.iterdir())
    seen = []
    lay.receive(good, 3, io.BytesIO(b"abc"), seen.append)
    assert lay.has(good, 3) and sum(seen) == 3


def test_overlay_points_every_path_at_the_site_by_digest():
    doc = {"images": [
        {"repository": "teamhub/hub", "tag": "0.1.0", "digest": DIGEST, "paths": ["hub.image"]},
        {"repository": "lab/scipy", "tag": None, "digest": DIGEST, "paths": ["catalog.images.a", "catalog.images.b"]},
        {"repository": "lab/side", "tag": "2", "digest": DIGEST, "paths": ["hub.extraContainers[1].image"]},
    ], "lists": {"hub.extraContainers": [{"name": "a", "image": "x"}, {"name": "side", "image": "lab/side:2"}]}}
    out = push.overlay(doc, "site.example.org:5000", "mirror/")
    assert out["hub"]["image"] == {"name": "site.example.org:5000/mirror/teamhub/hub", "tag": "0.1.0", "digest": DIGEST}
    assert out["catalog"]["images"]["b"] == {"name": "site.example.org:5000/mirror/lab/scipy", "tag": "", "digest": DIGEST}
    assert out["hub"]["extraContainers"] == [{"name": "a", "image": "x"},
                                             {"name": "side", "image": f"site.example.org:5000/mirror/lab/side@{DIGEST}"}]
    assert doc["lists"]["hub.extraContainers"][1]["image"] == "lab/side:2"  # the bundle's record is not changed


def test_plain_http_registry_refused_unless_named():
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(tools.ToolError, match=f"registry {host} does not speak TLS .*pass --plain-http {host}"):
            tools.Registries().flags(host)
        assert tools.Registries(plain_http={host}).flags(host) == ["--insecure"]
    finally:
        server.shutdown()


def test_credentials_go_to_a_private_config_never_to_argv(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"other.example.org": {"auth": "eDp5"}}}), encoding="utf-8")
    regs = tools.Registries(logins={"site.example.org": ("ops", "s3cret")})
    with regs.environment() as env:
        private = env["DOCKER_CONFIG"]
        cfg = tools.Path(private) / "config.json"
        assert oct(cfg.stat().st_mode & 0o777) == "0o600"
        auths = json.loads(cfg.read_text())["auths"]
        assert set(auths) == {"other.example.org", "site.example.org"}
    assert not tools.Path(private).exists()
    assert "s3cret" not in " ".join(regs.flags("site.example.org"))


def test_a_tar_bundle_is_verified_where_it_lies_and_names_its_members(tmp_path):
    folder = tmp_path / "b"
    doc, lay, layer = small_bundle(folder)
    tar = tmp_path / "b.tar"
    archive.write_tar(folder, doc, tar)
    assert verify.problems(tar) == [] and verify.load_manifest(tar) == doc
    again = tmp_path / "again.tar"
    archive.write_tar(folder, doc, again)
    assert again.read_bytes() == tar.read_bytes()  # the same bundle, the same tar
    member = f"images/blobs/sha256/{layer[7:]}"
    data = bytearray(tar.read_bytes())
    at = data.find(b"layer bytes")
    data[at] ^= 0xFF
    tar.write_bytes(bytes(data))
    [problem] = verify.problems(tar)
    assert problem.startswith(f"blob {member} in {tar} was tampered with or damaged: its content's digest is sha256:")
    assert problem.endswith("(used by reg.example.org/lab/scipy:1).")
    lay.path(layer).unlink()
    doc_without = {**doc, "blobs": {d: s for d, s in doc["blobs"].items() if d != layer}}
    with tarfile.open(tar, "w") as t:  # the layer left out of the tar
        for rel in archive.members(doc_without):
            t.add(folder / rel, arcname=rel)
    assert verify.problems(tar) == [f"blob {member} in {tar} is missing (used by reg.example.org/lab/scipy:1)."]
    tar.write_bytes(b"not a tar at all" * 100)
    assert verify.problems(tar)[0].startswith(f"{tar} is not a readable tar file")


def test_unpack_takes_only_the_listed_files(tmp_path):
    folder = tmp_path / "b"
    doc, _, _ = small_bundle(folder)
    tar = tmp_path / "b.tar"
    archive.write_tar(folder, doc, tar)
    with tarfile.open(tar, "a") as t:  # something bundle.json does not list: never unpacked
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    archive.unpack(tar, doc, tmp_path / "u")
    assert sorted(str(p.relative_to(tmp_path / "u")) for p in (tmp_path / "u").rglob("*") if p.is_file()) == \
        sorted(archive.members(doc))
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(("wanted", "kept"), [
    (("linux/amd64",), ["linux/amd64"]),
    (("linux/arm64",), ["linux/arm64/v8"]),
    (("linux/arm64/v8", "linux/amd64"), ["linux/amd64", "linux/arm64/v8"]),
    (("windows/amd64",), []),
])
def test_platforms_kept_of_an_index(wanted, kept):
    entries = [{"digest": DIGEST, "platform": {"os": "linux", "architecture": "amd64"}},
               {"digest": DIGEST, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
               {"digest": DIGEST, "platform": {"os": "unknown", "architecture": "unknown"}}]
    assert [create.platform_of(e) for e in entries if create._wanted(e, wanted)] == kept


def test_bundle_push_builds_on_the_same_library_version_as_crane():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    crane_version = re.search(r"^CRANE_VERSION=(\S+)$", (root / "scripts" / "setup.sh").read_text(), re.M).group(1)
    go_mod = (root / "tools" / "bundle-push" / "go.mod").read_text()
    assert re.search(rf"github.com/google/go-containerregistry {re.escape(crane_version)}\b", go_mod), go_mod
