"""How a start that cannot succeed ends: JupyterHub's own `SpawnException`, with an HTTP status and a `reason`.

JupyterHub logs it as one line without a traceback (`User.spawn`; hub/refusals.py drops the one traceback
JupyterHub 6.1.1 still prints for it), counts it in its spawn metric
(`jupyterhub_server_spawn_duration_seconds{status="failure", reason=...}`, with the reasons below) and hands it
to the page or the REST answer. The person reads the sentence alone: JupyterHub's progress event and error page
take `jupyterhub_message` / `jupyterhub_html_message` when an exception carries them (else the event would say
"Spawn failed: 403 SpawnException(reason=...): ...").
"""

from __future__ import annotations

import html

from jupyterhub.spawner import SpawnException

from ..catalog.access import RequestRefused

# The reasons teamhub gives in JupyterHub's spawn metric (JupyterHub adds its own: "timeout", "throttled", ...).
REASONS = ("refused-not-allowed", "refused-quota", "refused-budget", "failed-unschedulable", "failed-image",
           "failed-admission", "failed-exited", "failed-deadline", "failed")


def spawn_failed(message: str, *, reason: str, status_code: int = 500) -> SpawnException:
    """A start that failed (fail-fast verdict, the cluster refusing the pod, a server exiting): 500, the status
    REST clients read for a failed start (JupyterHub's convention), with the sentence as the message."""
    assert reason in REASONS, reason
    exc = SpawnException(message, reason=reason, status_code=status_code, message_html=html.escape(message))
    exc.jupyterhub_message = message
    exc.jupyterhub_html_message = html.escape(message)
    return exc


def refused(exc: RequestRefused, reason: str) -> SpawnException:
    """A refused request (not allowed, over quota or budget) with its own status: 400/403, 503 for a budget the
    hub cannot read; never 500."""
    return spawn_failed(exc.message, reason=reason, status_code=exc.status)
