"""The idle culler's traitlets config file (`python -m jupyterhub_idle_culler --config=<this file>`).

The hub starts the culler as one of its services (hub/config.py configure_culler) and hands it its settings,
already computed from checked values, as JSON in TEAMHUB_CULLER_SETTINGS (culler/settings.py).
"""

import json
import os

from teamhub.culler.arbiter import Arbiter
from teamhub.culler.settings import ENV

c = get_config()  # noqa: F821 (traitlets puts get_config in a config file's namespace)
settings = json.loads(os.environ[ENV])
# With sessions.idleCullMinutes 0 the culler runs only for GPU rules; its timeout then never decides alone.
c.IdleCuller.timeout = settings["idleSeconds"] or 86400
c.IdleCuller.cull_every = settings["cullEvery"]
if settings.get("hubApi"):
    c.IdleCuller.url = settings["hubApi"]
c.IdleCuller.cull_arbiter_hook = Arbiter(settings)
