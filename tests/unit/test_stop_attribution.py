"""Who asked for a stop (hub/stopper.py): JupyterHub's stop_single_user starts the stop as a task and returns,
so the spawner's stop() reads the requester after the request is over. Here the wrapped method is a stand-in
that does exactly that; the real one is exercised by tests/integration/test_usage_admin.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from jupyterhub.handlers.base import BaseHandler
from teamhub.hub import stopper

OWNER = SimpleNamespace(name="local:alice")


def asked_by(monkeypatch, asker) -> bool:
    """What the spawner's stop sees when `asker` (None: nobody signed in) stops alice's server."""
    spawner = SimpleNamespace(user=OWNER)
    tasks = []

    async def like_jupyterhub(self, user, server_name=""):
        async def stop():
            await asyncio.sleep(0.01)  # the stop ends after the request has returned
            return stopper.by_admin(spawner)
        tasks.append(asyncio.ensure_future(stop()))

    monkeypatch.setattr(BaseHandler, "stop_single_user", like_jupyterhub)
    stopper.install()

    async def request():
        await BaseHandler.stop_single_user(SimpleNamespace(_jupyterhub_user=asker), OWNER)
        assert not stopper.by_admin(spawner)  # outside the stop, nobody asked
        return await tasks[0]

    return asyncio.run(request())


def test_another_person_is_an_admin(monkeypatch):
    assert asked_by(monkeypatch, SimpleNamespace(kind="user", name="local:ada"))


def test_the_owner_and_services_are_not(monkeypatch):
    assert not asked_by(monkeypatch, SimpleNamespace(kind="user", name="local:alice"))
    assert not asked_by(monkeypatch, SimpleNamespace(kind="service", name="idle-culler"))
    assert not asked_by(monkeypatch, None)


def test_installing_twice_wraps_once(monkeypatch):
    monkeypatch.setattr(BaseHandler, "stop_single_user", BaseHandler.stop_single_user)  # restored afterwards
    stopper.install()
    wrapped = BaseHandler.stop_single_user
    stopper.install()
    assert BaseHandler.stop_single_user is wrapped and wrapped.teamhub_wrapped
