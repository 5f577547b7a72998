"""OpenID Connect discovery that never keeps the hub down.

Reading `<issuer>/.well-known/openid-configuration` at hub start used to be fatal: an identity-provider
outage during a restart kept the hub down for every login method (and crash-looped it on Kubernetes).
Now the hub tries once at start (a short timeout); if the provider cannot be read it starts anyway, logs
one WARNING line, and `Discovery.run` retries in the background with backoff (2 s doubling to 5 min)
until it succeeds. Until then the login page shows the single sign-on button as unavailable with a
sentence, `/hub/oidc/oauth_login` answers 503 with the same sentence, and local accounts work as usual.
Problems that retrying cannot fix (the document lacks an endpoint, names another issuer) are errors
in values and still stop the hub with a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.error import URLError
from urllib.request import Request, urlopen

log = logging.getLogger("JupyterHub")

ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")


class DiscoveryError(ValueError):
    """The provider answered with a document this hub cannot use: a mistake in values, not an outage."""


class ProviderUnreachable(OSError):
    pass


def discover(issuer: str, timeout: float = 10.0) -> dict:
    """The provider's OpenID configuration (`<issuer>/.well-known/openid-configuration`)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urlopen(Request(url, headers={"Accept": "application/json"}), timeout=timeout) as resp:  # noqa: S310
            doc = json.load(resp)
    except (URLError, OSError, ValueError) as exc:
        raise ProviderUnreachable(f"auth.oidc.issuerUrl: cannot read {url}: {getattr(exc, 'reason', exc)}") from None
    missing = [k for k in ENDPOINTS if not doc.get(k)]
    if missing:
        raise DiscoveryError(f"auth.oidc.issuerUrl: {url} lacks {', '.join(missing)}")
    if doc.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryError(f"auth.oidc.issuerUrl: {url} names the issuer {doc.get('issuer')!r}, not {issuer!r}")
    return doc


class Discovery:
    """The provider's endpoints once known; shared by the authenticator and the login page."""

    UNAVAILABLE = ("{name} is unavailable right now: the hub cannot reach the identity provider. "
                   "It keeps trying by itself; other sign-in methods work meanwhile.")

    def __init__(self, issuer: str, display_name: str = "Single sign-on", first_delay: float = 2.0,
                 max_delay: float = 300.0, fetch=discover):
        self.issuer, self.display_name = issuer, display_name
        self.first_delay, self.max_delay, self.fetch = first_delay, max_delay, fetch
        self.doc: dict | None = None
        self.problem = ""
        self._listeners: list = []
        self._task: asyncio.Task | None = None

    def __deepcopy__(self, memo):  # traitlets config deep-copies values; this one is shared on purpose
        return self

    @property
    def available(self) -> bool:
        return self.doc is not None

    @property
    def sentence(self) -> str:
        return "" if self.available else self.UNAVAILABLE.format(name=self.display_name)

    def first_try(self, timeout: float = 3.0) -> None:
        """At hub start. DiscoveryError (bad values) propagates; an unreachable provider does not."""
        try:
            self._found(self.fetch(self.issuer, timeout=timeout))
        except ProviderUnreachable as exc:
            self.problem = str(exc)
            log.warning("%s; starting without single sign-on and retrying in the background", exc)

    def when_found(self, listener) -> None:
        """Call `listener(doc)` now if known, else once discovery succeeds."""
        if self.doc is not None:
            listener(self.doc)
        else:
            self._listeners.append(listener)

    def start_retrying(self) -> None:
        if self.doc is None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        delay = self.first_delay
        while self.doc is None:
            await asyncio.sleep(delay)
            try:
                doc = await asyncio.to_thread(self.fetch, self.issuer)
            except (ProviderUnreachable, DiscoveryError) as exc:
                if str(exc) != self.problem:  # one line per new problem, not one per attempt
                    log.warning("%s; retrying in the background", exc)
                self.problem = str(exc)
                delay = min(delay * 2, self.max_delay)
                continue
            self._found(doc)
            log.info("auth.oidc.issuerUrl: %s answered; single sign-on is available", self.issuer)

    def _found(self, doc: dict) -> None:
        self.doc, self.problem = doc, ""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener(doc)
