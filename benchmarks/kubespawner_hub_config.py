"""jupyterhub_config.py of the benchmark's comparison hubs: teamhub's hub (same login, database, proxy,
templates) whose launch page is KubeSpawner 7.1.0's own profile form instead of teamhub's.

BENCH_PROFILES=static: `profile_list` is a list (KubeSpawner renders it once per spawner and keeps the
string); BENCH_PROFILES=callable: a function of the spawner (rendered on every request), filtered by the
person's teams like an operator would write it. KubeSpawner's form needs no cluster: only its
constructor talks to Kubernetes (load_config, shared_client), and nothing in the benchmark spawns.
"""

import os
import sys
from pathlib import Path

import kubespawner.spawner as ks
from kubespawner import KubeSpawner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubvalues import BENCH_USER, kubespawner_profiles  # noqa: E402
from teamhub.catalog.access import Person, resolve  # noqa: E402
from teamhub.hub.config import load_from_environment  # noqa: E402

ks.load_config = lambda **kwargs: None
ks.shared_client = lambda *args, **kwargs: None

rt = load_from_environment(c)  # noqa: F821
for name in ("options_form", "options_from_form", "apply_user_options"):
    c.Spawner.pop(name, None)  # noqa: F821  (KubeSpawner's own defaults take over)
c.JupyterHub.spawner_class = KubeSpawner  # noqa: F821


def profiles_for(spawner):
    catalog = rt.catalog
    return kubespawner_profiles(catalog, resolve(catalog, Person(spawner.user.name)))


if os.environ.get("BENCH_PROFILES") == "callable":
    c.KubeSpawner.profile_list = profiles_for  # noqa: F821
else:
    c.KubeSpawner.profile_list = kubespawner_profiles(rt.catalog, resolve(rt.catalog, Person(f"local:{BENCH_USER}")))  # noqa: F821
