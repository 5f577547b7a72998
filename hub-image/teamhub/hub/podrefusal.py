"""What a person reads when the API server refuses their server's pod (HTTP 403 or 422).

Two kinds of refusal reach the spawner. The namespace's own rules (Pod Security, quotas, webhooks): a
configuration problem for the admin, told in the API server's words. The chart's admission policy (issue
16, chart/templates/admission/policy.yaml): the hub asked for a pod the catalog does not describe, which a
sound hub never does; the person is told it is not their choice that is wrong, and which rule it broke.
"""

from __future__ import annotations

import json
import re

# "ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied request: teamhub rule <rule>: <detail>"
_POLICY = re.compile(r"ValidatingAdmissionPolicy '[^']*' with binding '[^']*' denied request: "
                     r"teamhub rule (?P<rule>[A-Za-z]+): (?P<detail>.*)", re.S)


def reason(exc) -> str:
    """The API server's own reason for refusing a pod (an ApiException), without the pod's name in front."""
    try:
        message = json.loads(exc.body).get("message") or ""
    except (TypeError, ValueError, AttributeError):
        message = ""
    message = message or exc.reason or f"HTTP {exc.status}"
    for marker in (" is forbidden: ", " is invalid: "):
        message = message.partition(marker)[2] or message
    return message[:500]


def policy_rule(reason_text: str) -> tuple[str, str] | None:
    """(rule, detail) when the chart's admission policy refused the pod, else None."""
    match = _POLICY.search(reason_text)
    return (match["rule"], match["detail"].strip()) if match else None


def sentence(server: str, reason_text: str) -> str:
    """The sentence for the person whose server `server` (its display name) was refused."""
    broken = policy_rule(reason_text)
    if broken:
        rule, detail = broken
        return (f"The cluster refused to start '{server}': the hub asked for a server the catalog does not "
                f"allow (rule '{rule}': {detail}). Your choice was fine and nothing was created; please tell your "
                "admin, the hub needs looking at.")
    return (f"The cluster refused to start '{server}': {reason_text}. Nothing was created; please tell your admin, "
            "who needs to change the catalog or the namespace's policy.")
