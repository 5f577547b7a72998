"""Refusals and failed starts are JupyterHub's SpawnException (issue 25): status, reason, the person's sentence."""

from __future__ import annotations

import logging

from jupyterhub.spawner import SpawnException
from jupyterhub.utils import format_exception
from teamhub.catalog.access import RequestRefused
from teamhub.hub import refusals
from teamhub.hub.spawnerrors import REASONS, refused, spawn_failed

SENTENCE = "The team 'CV' has used 3 of its 2 GPU-hours (150%) in the last 30 days."


def test_a_refusal_keeps_its_status_and_carries_a_reason():
    exc = refused(RequestRefused(403, SENTENCE), "refused-budget")
    assert isinstance(exc, SpawnException)
    assert (exc.status_code, exc.reason, exc.message) == (403, "refused-budget", SENTENCE)
    assert refused(RequestRefused(503, "cannot read"), "refused-budget").status_code == 503


def test_the_progress_event_and_the_page_show_the_sentence_alone():
    """JupyterHub's progress stream reads these through format_exception: "Spawn failed: <sentence>", and the
    page the sentence alone (escaped), never "403 SpawnException(reason=...)" or "%%"."""
    message, html_message = format_exception(spawn_failed(SENTENCE, reason="failed"))
    assert message == SENTENCE
    assert html_message == SENTENCE.replace("'", "&#x27;")
    assert spawn_failed(SENTENCE, reason="failed").status_code == 500  # REST clients read 500 for a failed start


def test_only_known_reasons():
    assert len(set(REASONS)) == len(REASONS) and all(r.startswith(("refused-", "failed")) for r in REASONS)
    try:
        spawn_failed(SENTENCE, reason="oops")
    except AssertionError:
        return
    raise AssertionError("an unknown reason must be refused")


def _logged(exc: BaseException, caplog) -> logging.LogRecord:
    logger = logging.getLogger("JupyterHub")
    refusals.install()
    with caplog.at_level(logging.INFO, logger="JupyterHub"):
        try:
            raise exc
        except BaseException:
            logger.exception("Exception applying user_options for %s", "local:alice")  # as JupyterHub 6.1.1 does
    return caplog.records[-1]


def test_jupyterhubs_traceback_of_a_spawn_exception_is_dropped_and_the_line_kept(caplog):
    record = _logged(refused(RequestRefused(403, SENTENCE), "refused-quota"), caplog)
    assert record.getMessage() == "Exception applying user_options for local:alice"
    assert record.exc_info is None and "Traceback" not in caplog.text


def test_any_other_exception_keeps_its_traceback(caplog):
    record = _logged(ValueError("a real fault"), caplog)
    assert record.exc_info is not None and "Traceback" in caplog.text and "ValueError: a real fault" in caplog.text
