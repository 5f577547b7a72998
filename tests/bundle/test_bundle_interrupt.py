"""Ctrl-C in the middle of `teamhub bundle create`, then the same command again: the second run fetches no blob
the first one had completed (counted in the public registry's access log); at most the one blob in flight
when it was interrupted is fetched again, and the bundle is whole."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter

import yaml
from bundlereg import Registry, image_values, refs_of, seed
from support import CONFIG, ROOT, tree_env

IMAGE_BYTES = 6_000_000  # per image (random, so compressed as large): the first run is stopped well before its end


def blob_gets(requests) -> Counter:
    return Counter(path.rsplit("/", 1)[1] for method, path, status in requests
                   if method == "GET" and status == "200" and "/blobs/" in path)


def run_until_first_image(argv, env, registry: Registry) -> tuple[int, str]:
    """Start create, wait for its first finished image, then Ctrl-C (SIGINT to its process group, as a terminal
    does). The registry is frozen meanwhile, so however slowly this test reacts the rest cannot finish first."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                            start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True).start()
    seen = []
    while True:
        line = lines.get(timeout=120)
        if line is None:
            break
        seen.append(line)
        if line.startswith("[1/"):
            registry.pause()
            os.killpg(proc.pid, signal.SIGINT)
            break
    try:
        rc = proc.wait(timeout=60)
    finally:
        registry.resume()
    while (line := lines.get(timeout=30)) is not None:
        seen.append(line)
    return rc, "".join(seen)


def test_interrupted_create_resumes_without_fetching_a_complete_blob_again(tmp_path):
    public = Registry(tmp_path, "public").start()
    try:
        values = image_values(public.host)
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
        seed(public, tmp_path, refs_of(values), size=IMAGE_BYTES)
        out = tmp_path / "bundle"
        argv = [sys.executable, "-m", "teamhub", "bundle", "create", "--values", str(CONFIG / "values.yaml"),
                "--values", str(values_file), "-o", str(out), "--plain-http", public.host, "--jobs", "1"]
        env = tree_env(DOCKER_CONFIG=str(tmp_path / "docker-config"))
        mark = public.mark()
        rc, output = run_until_first_image(argv, env, public)
        assert rc == 130, output  # stopped by Ctrl-C, not finished
        assert "teamhub: interrupted; every complete blob is kept in" in output
        kept = {p.name for p in (out / "images" / "blobs" / "sha256").iterdir()}
        assert kept and not (out / "bundle.json").exists()
        first = blob_gets(public.requests(mark))
        mark2 = public.mark()
        second = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        again = blob_gets(public.requests(mark2))
        assert again, "the second run had nothing left to fetch"
        assert not {d[7:] for d in again} & kept  # no complete blob fetched again
        assert len(set(again) & set(first)) <= 1  # at most the blob in flight at Ctrl-C (--jobs 1)
        assert max(again.values()) == 1
    finally:
        public.stop()
    verified = subprocess.run([sys.executable, "-m", "teamhub", "bundle", "verify", str(out)], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=120)
    assert verified.returncode == 0, verified.stderr
