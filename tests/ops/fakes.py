#!/usr/bin/env python3
"""Stand-in for helm, kubectl, docker, podman and buildah in the operator-script tests.

Installed on PATH under each tool's name (see conftest.py). Every call is appended to $FAKE_LOG as one JSON
line: [tool, arg, ...]. State (release history, manifests, values per revision) lives in $FAKE_STATE.
$FAKE_FAIL is a comma-separated list of steps to fail: upgrade, check (the chart's pre-upgrade check Job), rollback,
health, build, push, template, nohub (no hub Deployment carries the labels). $FAKE_HUB_NAME names the hub
Deployment (default teamhub-hub).
"""

import json
import os
import sys
from pathlib import Path

tool = os.environ.get("FAKE_TOOL") or Path(sys.argv[0]).name
args = sys.argv[1:]
state = Path(os.environ["FAKE_STATE"])
fail = set(filter(None, os.environ.get("FAKE_FAIL", "").split(",")))
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps([tool, *args]) + "\n")


def history() -> list:
    f = state / "history.json"
    return json.loads(f.read_text()) if f.exists() else []


def save_history(h) -> None:
    (state / "history.json").write_text(json.dumps(h))


def add_revision(description: str, values_from: str | None = None) -> int:
    h = history()
    for item in h:
        if item["status"] == "deployed":
            item["status"] = "superseded"
    n = (h[-1]["revision"] + 1) if h else 1
    h.append({"revision": n, "updated": "2026-11-20T10:00:00Z", "status": "deployed", "chart": "teamhub-0.1.0",
              "app_version": "0.1.0", "description": description})
    save_history(h)
    vals = state / "values"
    vals.mkdir(exist_ok=True)
    if values_from:
        (vals / f"{n}.yaml").write_text(Path(values_from).read_text())
    return n


def opt(name):
    return args[args.index(name) + 1] if name in args else None


if tool == "helm":
    cmd = args[0] if args else ""
    if cmd == "version":
        print(os.environ.get("FAKE_HELM_VERSION", "v3.21.3"))
    elif cmd == "status":
        sys.exit(0 if history() else 1)
    elif cmd == "history":
        if not history():
            print("Error: release: not found", file=sys.stderr)
            sys.exit(1)
        print(json.dumps(history()))
    elif cmd == "plugin":
        print("NAME\tVERSION\tDESCRIPTION")
    elif cmd == "template":
        if "template" in fail:
            print("Error: template failed", file=sys.stderr)
            sys.exit(1)
        print((state / "new.yaml").read_text() if (state / "new.yaml").exists() else "")
    elif cmd == "get" and args[1] == "manifest":
        print((state / "old.yaml").read_text() if (state / "old.yaml").exists() else "")
    elif cmd == "get" and args[1] == "values":
        f = state / "values" / f"{opt('--revision')}.yaml"
        print(f.read_text() if f.exists() else "null")
    elif cmd == "upgrade" and any(a.startswith("--dry-run") for a in args):
        # like helm: the release as JSON; its manifest leaves hooks out (they are listed under "hooks")
        if "template" in fail:
            print("Error: template failed", file=sys.stderr)
            sys.exit(1)
        new = (state / "new.yaml").read_text() if (state / "new.yaml").exists() else ""
        print(json.dumps({"name": args[1], "manifest": new, "hooks": []}))
    elif cmd == "upgrade":
        after = state / "exec-output-after-upgrade"
        if after.exists():  # what the hub reports once the new release's hub has started
            after.replace(state / "exec-output")
        if "check" in fail:  # helm 3's words when a pre-upgrade hook Job fails under --atomic
            (state / "check-failed").write_text("1")
            print("Error: UPGRADE FAILED: release teamhub failed, and has been rolled back due to atomic being set: "
                  "pre-upgrade hooks failed: 1 error occurred:\n\t* job teamhub-upgrade-check failed: DeadlineExceeded", file=sys.stderr)
            sys.exit(1)
        if "upgrade" in fail:
            print("Error: UPGRADE FAILED: release teamhub failed, and has been rolled back due to rollback-on-failure being set: "
                  "context deadline exceeded", file=sys.stderr)
            sys.exit(1)
        values = [args[i + 1] for i, a in enumerate(args) if a == "-f"]
        add_revision("Upgrade complete", values[0] if values else None)
    elif cmd == "rollback":
        if "rollback" in fail:
            print("Error: rollback failed", file=sys.stderr)
            sys.exit(1)
        target = args[2]
        src = state / "values" / f"{target}.yaml"
        add_revision(f"Rollback to {target}", str(src) if src.exists() else None)
    else:
        print(f"fake helm: unsupported {args}", file=sys.stderr)
        sys.exit(2)
elif tool == "kubectl":
    if args[:2] == ["config", "current-context"]:
        print("test-cluster")
    elif args[:1] == ["version"]:
        print(json.dumps({"clientVersion": {"gitVersion": "v1.31.0"}, "serverVersion": {"major": "1", "gitVersion": "v1.30.4"}}, indent=2))
    elif args[2:4] == ["get", "deployment"] and "-l" in args:
        if "nohub" not in fail and "app.kubernetes.io/component=hub" in opt("-l"):
            print(f"deployment.apps/{os.environ.get('FAKE_HUB_NAME', 'teamhub-hub')}")
    elif args[2:4] == ["get", "jobs"] and "-l" in args:
        if (state / "check-failed").exists() and "component=upgrade-check" in opt("-l"):
            print("job.batch/teamhub-upgrade-check")
    elif args[2:3] == ["logs"] and (state / "check-failed").exists():
        print("configuration: the hub would start (3 resources, 2 teams, 0 warning(s))")
    elif args[2:4] == ["get", "events"] and (state / "check-failed").exists():
        print("0/5 nodes are available: 5 node(s) didn't match Pod's node affinity/selector.")
    elif "rollout" in args or "exec" in args:
        if "health" in fail:
            print("error: timed out waiting for the condition", file=sys.stderr)
            sys.exit(1)
        exec_out = state / "exec-output"
        if "exec" in args and exec_out.exists():
            print(exec_out.read_text(), end="")
    # anything else: succeed silently
else:  # docker, podman, buildah
    if args and args[0] == "info" and "daemon" in fail:
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", file=sys.stderr)
        sys.exit(1)
    if args and args[0] in ("build", "bud") and "build" in fail:
        print("ERROR: failed to build", file=sys.stderr)
        sys.exit(1)
    if args and args[0] == "push" and "push" in fail:
        print("denied: requested access to the resource is denied", file=sys.stderr)
        sys.exit(1)
    if args and args[0] == "push":  # a registry's answer: the digest is derived from the reference here
        import hashlib

        digest = "sha256:" + hashlib.sha256(args[-1].encode()).hexdigest()
        if "--digestfile" in args:  # podman, buildah
            Path(opt("--digestfile")).write_text(digest)
        else:  # docker prints it
            print(f"{args[-1].rsplit(':', 1)[-1]}: digest: {digest} size: 1570")
