"""Air-gapped bundle throughput (issue 29): a script that prints figures, not a test.
`.venv/bin/python benchmarks/bundle_bench.py [--mb 48] [--runs 2]`

Three real registries on loopback (Debian's docker-registry, as in tests/bundle): a "public" one seeded with an
image for every image config/values.yaml runs (the catalog's on one shared base layer, as course images share a
CUDA or ROCm base; one multi-platform index), and two empty "site" ones. Each run, on the same images between the
same registries:
- create: `teamhub bundle create` (public -> folder) vs `skopeo copy --all --preserve-digests` of each image into
  one OCI layout (public -> folder; skopeo also keeps a blob it already has only once);
- push: `teamhub bundle push` (folder -> site A) vs `skopeo copy` of each image from that layout (folder -> site B);
- a one-hop reference: `skopeo copy` registry to registry (public -> an empty site C).
Throughput is the bytes stored in the bundle (each blob once) over wall time. Also: the bundle's size against the
sum of its images' compressed sizes (what saving each image alone would take). Compare the columns of one run;
the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
for sub in ("hub-image", "tests", "tests/bundle"):
    sys.path.insert(0, str(ROOT / sub))

from bundlereg import Registry, image_values, refs_of, seed_image  # noqa: E402
from support import CONFIG, tree_env  # noqa: E402

SKOPEO = shutil.which("skopeo") or "skopeo (not installed: run `make setup`)"


def timed(argv, env=None, cwd=ROOT, out: list | None = None) -> float:
    start = time.monotonic()
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{proc.stdout}\n{proc.stderr}")
    if out is not None:
        out.append(proc.stdout)
    return time.monotonic() - start


def transfer_seconds(create_output: str) -> float:
    """The download phase alone, as create reports it ("downloaded X in N s"): without the fixed cost of
    rendering the chart, validating the values and packaging the chart."""
    return float(re.search(r"downloaded .* in ([0-9.]+) s", create_output).group(1))


def uploads(registry: Registry, since: int) -> tuple[int, int]:
    """(blob uploads started, cross-repository mounts) a registry answered since a mark of its access log."""
    posts = [(path, status) for method, path, status in registry.requests(since)
             if method == "POST" and "/blobs/uploads/" in path]
    mounted = sum(1 for path, status in posts if "mount=" in path and status == "201")
    return len(posts) - mounted, mounted


def seed(public: Registry, work: Path, refs, mb: int) -> None:
    """Every image OCI (skopeo's OCI layout stores only OCI manifests; so both sides keep every digest)."""
    base = f"{public.host}/lab/base:1"
    seed_image(work, base, size=2 * mb * 1_000_000, oci=True)
    for i, ref in enumerate(refs):
        shared = "/lab/" in ref
        seed_image(work, ref, base=base if shared else None, size=(mb * 1_000_000) // (1 if shared else 4) + i, oci=True)


def skopeo(*args) -> list:
    return [SKOPEO, "copy", "--all", "--preserve-digests", "--quiet", *args]


def one_run(work: Path, mb: int) -> dict:
    public = Registry(work, "public").start()
    site_a, site_b = Registry(work, "site-a").start(), Registry(work, "site-b").start()
    site_c = Registry(work, "site-c").start()  # empty for the one-hop copy: nothing to mount from earlier copies
    try:
        values = image_values(public.host)
        values_file = work / "values.yaml"
        values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
        refs = refs_of(values)
        seed(public, work, refs, mb)
        env = tree_env(DOCKER_CONFIG=str(work / "docker-config"))
        bundle = work / "bundle"
        said: list = []
        t_create = timed([sys.executable, "-m", "teamhub", "bundle", "create", "--values", CONFIG / "values.yaml",
                          "--values", values_file, "-o", bundle, "--plain-http", public.host], env, out=said)
        layout = work / "skopeo-layout"
        start = time.monotonic()
        for ref in refs:
            timed(skopeo("--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:{ref.split('/', 1)[1]}"))
        s_create = time.monotonic() - start
        mark_a = site_a.mark()
        t_push = timed([sys.executable, "-m", "teamhub", "bundle", "push", bundle, "--registry", site_a.host,
                        "--plain-http", "--overlay", work / "site-values.yaml"], env)
        sent = uploads(site_a, mark_a)
        start = time.monotonic()
        for ref in refs:
            path = ref.split("/", 1)[1]
            timed(skopeo("--dest-tls-verify=false", f"oci:{layout}:{path}", f"docker://{site_b.host}/{path}"))
        s_push = time.monotonic() - start
        start = time.monotonic()
        for ref in refs:
            path = ref.split("/", 1)[1]
            timed(skopeo("--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{ref}",
                         f"docker://{site_c.host}/{path}"))
        s_direct = time.monotonic() - start
        doc = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        stored = sum(doc["blobs"].values())
        on_disk = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        return {"images": len(refs), "stored": stored, "transfer": transfer_seconds(said[0]),
                "uploads": sent, "blobs": len(doc["blobs"]), "separately": sum(i["size"] for i in doc["images"]),
                "on_disk": on_disk, "create": t_create, "skopeo_create": s_create, "push": t_push,
                "skopeo_push": s_push, "skopeo_direct": s_direct}
    finally:
        for reg in (public, site_a, site_b, site_c):
            reg.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=int, default=48, help="layer size of each catalog image in MB (default 48)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    mbs = lambda n, t: f"{n / 1e6 / t:7.1f} MB/s"  # noqa: E731
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="teamhub-bundle-bench-") as tmp:
            r = one_run(Path(tmp), args.mb)
        n = r["stored"]
        print(f"run {run}: {r['images']} images, {n / 1e6:.1f} MB stored in the bundle")
        print(f"  create  teamhub {r['create']:6.2f} s {mbs(n, r['create'])}   skopeo copy {r['skopeo_create']:6.2f} s "
              f"{mbs(n, r['skopeo_create'])}   ratio {r['create'] / r['skopeo_create']:.2f}x")
        print(f"          teamhub's download phase alone {r['transfer']:6.2f} s {mbs(n, r['transfer'])} "
              f"(the rest: rendering the chart, validating, packaging)")
        print(f"  push    teamhub {r['push']:6.2f} s {mbs(n, r['push'])}   skopeo copy {r['skopeo_push']:6.2f} s "
              f"{mbs(n, r['skopeo_push'])}   ratio {r['push'] / r['skopeo_push']:.2f}x")
        print(f"          teamhub: {r['uploads'][0]} blob uploads, {r['uploads'][1]} cross-repository mounts "
              f"({r['blobs']} blobs and manifests in the bundle)")
        print(f"  one hop skopeo copy registry to registry {r['skopeo_direct']:6.2f} s {mbs(n, r['skopeo_direct'])}")
        print(f"  size    bundle {r['on_disk'] / 1e6:.1f} MB on disk (blobs {n / 1e6:.1f} MB) vs "
              f"{r['separately'] / 1e6:.1f} MB for the images separately ({n / r['separately']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
