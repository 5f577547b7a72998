"""The launch link and stop-and-start handlers require JupyterHub's `servers` scope on the person's server, like
JupyterHub's own spawn handlers (issue 25): without it a 403 before anything is judged, started or stopped."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub.scopes import parse_scopes
from teamhub.hub.launchhandler import LaunchLinkHandler
from teamhub.hub.stopandstart import StopAndStartHandler
from tornado import web


class Reached(Exception):
    """The handler went past the scope check."""


class Person:
    """The current user: its name is read by the scope check; anything else means the handler went on."""

    name = "local:alice"

    def __getattr__(self, attr):
        raise Reached(attr)


def handler(cls, scopes: list[str], server: str = ""):
    h = object.__new__(cls)  # no application: only what the scope check and the handler's first lines read
    h._jupyterhub_user = Person()  # as BaseHandler.prepare leaves it
    h.parsed_scopes = parse_scopes(scopes)
    h.expanded_scopes = set(scopes)
    h.request = SimpleNamespace(path="/hub/launch", query="")
    h.application = SimpleNamespace(settings={"db": None})  # handler.db: only group filters read it
    h.server_name = lambda: server

    def reached(*args, **kwargs):
        raise Reached

    h._check_named_server_request = reached  # the GET of a named server checks the name next
    return h


def run(h, method: str):
    result = getattr(type(h), method)(h)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


@pytest.mark.parametrize(("cls", "method"), [(LaunchLinkHandler, "get"), (StopAndStartHandler, "post")])
@pytest.mark.parametrize("scopes", [[], ["read:users!user=local:alice", "access:servers!user=local:alice"], ["servers!user=local:bob"]])
def test_without_the_servers_scope_a_403_and_nothing_else(cls, method, scopes):
    with pytest.raises(web.HTTPError) as info:
        run(handler(cls, scopes), method)
    assert info.value.status_code in (403, 404)  # JupyterHub's answer: 404 when scoped to other servers only
    if not any(s.startswith("servers") for s in scopes):
        assert info.value.status_code == 403 and "requires any of [servers]" in info.value.log_message


@pytest.mark.parametrize(("cls", "method"), [(LaunchLinkHandler, "get"), (StopAndStartHandler, "post")])
@pytest.mark.parametrize("scopes", [["servers!user=local:alice"], ["servers"], ["servers!server=local:alice/lab"]])
def test_with_the_servers_scope_the_handler_goes_on(cls, method, scopes):
    server = "lab" if "!server=" in scopes[0] else ""
    with pytest.raises(Reached):
        run(handler(cls, scopes, server), method)
