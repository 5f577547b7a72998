"""jupyterhub_config.py of the benchmark's comparison hubs: teamhub's hub (same login, database, proxy, spawner,
templates, server list and budgets) whose launch form is KubeSpawner 7.1.0's own profile form instead of teamhub's,
so the person (with the same running server) and everything around the form are the same.

BENCH_PROFILES=static: the form KubeSpawner serves for a static `profile_list` (rendered once, then the same
string on every request); BENCH_PROFILES=callable: KubeSpawner's per-request path for a callable `profile_list`
(the function, filtered by the person's teams like an operator would write it, then the form rendered). The form
comes from a KubeSpawner that never talks to Kubernetes (ksform.py); the servers are teamhub's local ones.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubvalues import BENCH_USER, kubespawner_profiles  # noqa: E402
from ksform import form_spawner  # noqa: E402
from teamhub.catalog.access import Person, resolve  # noqa: E402
from teamhub.hub.config import load_from_environment  # noqa: E402

rt = load_from_environment(c)  # noqa: F821


def profiles_for(spawner):
    catalog = rt.catalog
    return kubespawner_profiles(catalog, resolve(catalog, Person(spawner.user.name)))


if os.environ.get("BENCH_PROFILES") == "callable":
    dynamic = form_spawner(profiles_for)

    async def options_form(spawner):
        return await dynamic._render_options_form_dynamically(spawner)

    c.Spawner.options_form = options_form  # noqa: F821
else:
    c.Spawner.options_form = form_spawner(kubespawner_profiles(rt.catalog, resolve(rt.catalog, Person(f"local:{BENCH_USER}")))).options_form  # noqa: F821
