"""OIDC discovery at hub start: an unreachable provider is retried in the background, a wrong document is an error."""

from __future__ import annotations

import asyncio

import pytest
from teamhub.auth.discovery import Discovery, DiscoveryError, ProviderUnreachable, discover
from teamhub.cli.demo import free_port

DOC = {"authorization_endpoint": "a", "token_endpoint": "t", "userinfo_endpoint": "u"}


def test_an_unreachable_provider_is_not_fatal_and_says_why():
    issuer = f"http://127.0.0.1:{free_port()}/realms/lab"
    with pytest.raises(ProviderUnreachable, match="cannot read"):
        discover(issuer, timeout=2)
    found = Discovery(issuer, "Lab SSO")
    found.first_try(timeout=2)
    assert not found.available
    assert found.sentence.startswith("Lab SSO is unavailable right now")


def test_background_retries_back_off_until_the_provider_answers(monkeypatch):
    answers = [ProviderUnreachable("down"), ProviderUnreachable("down"), DOC]
    attempts, delays = [], []

    def fetch(issuer, timeout=10.0):
        attempts.append(issuer)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    real_sleep = asyncio.sleep

    async def sleep(delay):
        delays.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    found = Discovery("https://idp.example.org", fetch=fetch, first_delay=2, max_delay=3)
    seen = []
    found.when_found(seen.append)
    asyncio.run(found.run())
    assert found.available and seen == [DOC] and found.sentence == ""
    assert delays == [2, 3, 3]  # doubling, capped at max_delay
    assert len(attempts) == 3


def test_a_document_for_another_issuer_is_a_values_error():
    def fetch(issuer, timeout=10.0):
        raise DiscoveryError("auth.oidc.issuerUrl: names the issuer 'x'")

    with pytest.raises(DiscoveryError):
        Discovery("https://idp.example.org", fetch=fetch).first_try()
