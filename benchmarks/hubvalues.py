"""Values files for the hub benchmark, and the same resources as KubeSpawner `profile_list` entries.

Every local account uses the demo hash of ada (password PASSWORD), so no hashing happens here.
"""

from __future__ import annotations

HASH = "$2b$12$Xgnp62i4m6AkY2tuTo9bmuzSyf8FTrxbeRUIiQn9Lmoh/UsjXVrQe"
PASSWORD = "ada-demo-pass"
BENCH_USER = "bench"


def _images(n: int = 20) -> dict:
    return {f"img-{i}": {"name": f"registry.example/img-{i}", "tag": "1.0"} for i in range(n)}


def _accelerators() -> dict:
    return {f"acc-{i}": {"displayName": f"Accelerator {i}", "gpu": {"resource": "amd.com/gpu", "count": 1},
                         "nodeSelector": {"node-type": f"acc-{i}"}} for i in range(4)}


def _resources(n: int) -> dict:
    out = {}
    for i in range(n):
        r = {"displayName": f"Environment {i}", "description": f"Environment number {i} for benchmarks",
             "category": f"Category {i % 8}", "image": f"img-{i % 20}",
             "cpu": {"request": 1 + i % 4, "limit": 2 + i % 4}, "memory": {"request": "4Gi", "limit": "8Gi"}}
        if i % 5 == 1:
            r["gpu"] = {"resource": "nvidia.com/gpu", "count": 1}
        elif i % 5 == 2:
            r["accelerators"] = ["acc-0", "acc-1"]
        out[f"res-{i}"] = r
    return out


def _values(resources: dict, teams: dict, users: dict) -> dict:
    return {"auth": {"local": {"enabled": True, "users": users}},
            "sessions": {"idleCullMinutes": 0},  # no culler process next to the hub
            "catalog": {"images": _images(), "accelerators": _accelerators(), "resources": resources, "teams": teams}}


# Every team's budgets on the launch page's person (what a course gets: GPU- and CPU-hours over 30 days).
BUDGETS = {"gpuHours": {"amount": 400, "window": "30d"}, "cpuHours": {"amount": 4000, "window": "30d"}}
RUNNING_SERVER = "running"  # the bench person's named server, started before the launch page is measured


def page_values(n_resources: int, member_of: int = 20, n_teams: int = 40) -> dict:
    """BENCH_USER is in `member_of` teams that together allow every resource; other teams exist too. Every team
    has a server and GPU quota and GPU- and CPU-hour budgets; named servers are on, so the person can look at the
    launch page while a server runs (with a running default server JupyterHub sends /hub/spawn to it)."""
    resources = _resources(n_resources)
    keys = list(resources)
    per_team = max(n_resources // member_of, 1)
    teams = {f"team-{t}": {"resources": keys[(t % member_of) * per_team:((t % member_of) + 1) * per_team] or keys[:1],
                           "quota": {"maxServers": 50, "maxGpus": 10, **BUDGETS}} for t in range(n_teams)}
    users = {BENCH_USER: {"passwordHash": HASH, "teams": [f"team-{t}" for t in range(member_of)]}}
    values = _values(resources, teams, users)
    values["sessions"]["namedServers"] = {"enabled": True, "maxPerPerson": 2}
    return values


def running_choice(n_resources: int) -> dict:
    """The launch page's fields for the person's running server: a 1-GPU environment of their first team."""
    return {"resource": "res-1" if n_resources > 1 else "res-0", "sessionMinutes": "240"}


def catalog_values(n_resources: int, n_teams: int, n_users: int, member_of: int = 20) -> dict:
    """A site-sized catalog: every team allows 10 resources and names a GitHub team and an OIDC group;
    account u<i> is in `member_of` teams."""
    resources = _resources(n_resources)
    keys = list(resources)
    teams = {f"team-{t}": {"displayName": f"Team {t}", "resources": [keys[(t * 7 + j) % n_resources] for j in range(min(10, n_resources))],
                           "githubTeams": [f"org:team-{t}"], "oidcGroups": [f"group-{t}"], "quota": {"maxServers": 50, "maxGpus": 10}}
             for t in range(n_teams)}
    users = {f"u{i:03d}": {"passwordHash": HASH, "teams": sorted({f"team-{(i * 3 + k) % n_teams}" for k in range(member_of)})}
             for i in range(n_users)}
    return _values(resources, teams, users)


def kubespawner_profiles(catalog, access) -> list:
    """The person's allowed resources as KubeSpawner profiles, the way an operator would write profile_list."""
    out = []
    for res in access.resources:
        override = {"image": catalog.images[res.image].ref, "cpu_guarantee": float(str(res.cpu_request)),
                    "mem_guarantee": str(res.memory_request).replace("i", "")}
        profile = {"display_name": res.display_name, "description": res.description, "slug": res.key,
                   "kubespawner_override": override}
        if res.accelerators:
            profile["profile_options"] = {"accelerator": {"display_name": "Accelerator", "choices": {
                a: {"display_name": catalog.accelerators[a].display_name,
                    "kubespawner_override": {"node_selector": dict(catalog.accelerators[a].node_selector)}}
                for a in res.accelerators}}}
        out.append(profile)
    return out
