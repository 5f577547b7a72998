"""The hub's sentence when the chart's admission policy refuses a server's pod (issue 16)."""

from __future__ import annotations

import logging

from teamhub.hub import podrefusal
from test_pod_security import PSA_MESSAGE, start_refused

# As kube-apiserver 1.37 answers (HTTP 403), copied from tests/cluster/test_admission.py's refusals.
POLICY_MESSAGE = ("pods \"teamhub-local-3aalice\" is forbidden: ValidatingAdmissionPolicy 'lab-teamhub-user-pods' "
                  "with binding 'lab-teamhub-user-pods' denied request: teamhub rule image: "
                  "docker.io/library/busybox:1.37 (IfNotPresent) is not the catalog image of cpu-small: "
                  "quay.io/jupyter/scipy-notebook:2026-11-02 (IfNotPresent)")


def test_policy_refusal_is_a_sentence_naming_the_rule(caplog):
    sp, stopped = start_refused(403, pvc_known=False, caplog=caplog, message=POLICY_MESSAGE)
    assert sp.api.calls == [("pod", "All")]  # the dry run was refused: no home volume, no pod
    message = stopped.jupyterhub_message
    assert message.startswith("The cluster refused to start 'Python (2 CPUs)': the hub asked for a server the "
                              "catalog does not allow (rule 'image': docker.io/library/busybox:1.37")
    assert "Your choice was fine and nothing was created" in message and "tell your admin" in message
    assert "ValidatingAdmissionPolicy" not in message and "teamhub-local-3aalice" not in message
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "refused the pod" in r.getMessage()]
    assert len(warnings) == 1 and "lab-teamhub-user-pods" in warnings[0]  # the admin's log names the policy


def test_other_refusals_keep_the_api_servers_words():
    reason = PSA_MESSAGE.partition(" is forbidden: ")[2]
    assert podrefusal.policy_rule(reason) is None
    assert podrefusal.sentence("X", reason).startswith("The cluster refused to start 'X': violates PodSecurity")
