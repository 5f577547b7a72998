"""Who may read `/hub/metrics` from outside: the chart's ServiceMonitor (metrics.serviceMonitor).

JupyterHub serves its metrics only to holders of the `read:metrics` scope. With TEAMHUB_METRICS_TOKEN set
(the chart's generated Secret, key metrics-token) the hub defines a service `metrics` with that token and a
role granting it `read:metrics` and nothing else, so the scrape token cannot read users or start servers.
"""

from __future__ import annotations

import os

TOKEN_ENV = "TEAMHUB_METRICS_TOKEN"
SERVICE = "metrics-scraper"
SCOPES = ["read:metrics"]


def configure(c, environ=os.environ) -> bool:
    token = environ.get(TOKEN_ENV, "")
    if not token:
        return False
    c.JupyterHub.services.append({"name": SERVICE, "api_token": token, "display": False})
    c.JupyterHub.load_roles.append({"name": SERVICE, "description": "Prometheus: read /hub/metrics only (metrics.serviceMonitor)",
                                    "scopes": list(SCOPES), "services": [SERVICE]})
    return True
