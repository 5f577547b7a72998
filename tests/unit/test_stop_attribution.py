"""Who asked for a stop (hub/stopper.py): JupyterHub's stop_single_user starts the stop as a task and returns,
so the spawner's stop() reads the requester after the request is over. Here the wrapped method is a stand-in
that does exactly that; the real one is exercised by tests/integration/test_usage_admin.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from jupyterhub.handlers.base import BaseHandler
from teamhub.hub import stopper

OWNER = SimpleNamespace(name="local:alice")


def asked_by(monkeypatch, asker, check=stopper.by_admin) -> bool:
    """What the spawner's stop sees (`check`) when `asker` (None: nobody signed in) stops alice's server."""
    spawner = SimpleNamespace(user=OWNER)
    tasks = []

    async def like_jupyterhub(self, user, server_name=""):
        async def stop():
            await asyncio.sleep(0.01)  # the stop ends after the request has returned
            return check(spawner)
        tasks.append(asyncio.ensure_future(stop()))

    monkeypatch.setattr(BaseHandler, "stop_single_user", like_jupyterhub)
    stopper.install()

    async def request():
        await BaseHandler.stop_single_user(SimpleNamespace(_jupyterhub_user=asker), OWNER)
        assert not check(spawner)  # outside the stop, nobody asked
        return await tasks[0]

    return asyncio.run(request())


def test_another_person_is_an_admin(monkeypatch):
    assert asked_by(monkeypatch, SimpleNamespace(kind="user", name="local:ada"))


def test_the_owner_and_services_are_not(monkeypatch):
    assert not asked_by(monkeypatch, SimpleNamespace(kind="user", name="local:alice"))
    assert not asked_by(monkeypatch, SimpleNamespace(kind="service", name="idle-culler"))
    assert not asked_by(monkeypatch, None)


def test_the_idle_culler_is_known_by_its_service_not_by_last_activity(monkeypatch):
    """Issue 24: the end reason `idle-cull` comes from who asked (the culler's service token); a person's own
    stop of a server idle for hours is `stopped`, whatever its last_activity says."""
    assert asked_by(monkeypatch, SimpleNamespace(kind="service", name=stopper.CULLER), stopper.by_culler)
    assert not asked_by(monkeypatch, SimpleNamespace(kind="service", name="metrics-scraper"), stopper.by_culler)
    assert not asked_by(monkeypatch, SimpleNamespace(kind="user", name=stopper.CULLER), stopper.by_culler)
    assert not asked_by(monkeypatch, SimpleNamespace(kind="user", name="local:alice"), stopper.by_culler)
    assert not asked_by(monkeypatch, None, stopper.by_culler)


def test_the_culler_service_is_the_one_configured():
    from teamhub.hub import config
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.services, c.JupyterHub.load_roles = [], []
    config.configure_culler(c, 60)
    assert [s["name"] for s in c.JupyterHub.services] == [stopper.CULLER]
    assert c.JupyterHub.load_roles[0]["services"] == [stopper.CULLER]


def test_installing_twice_wraps_once(monkeypatch):
    monkeypatch.setattr(BaseHandler, "stop_single_user", BaseHandler.stop_single_user)  # restored afterwards
    stopper.install()
    wrapped = BaseHandler.stop_single_user
    stopper.install()
    assert BaseHandler.stop_single_user is wrapped and wrapped.teamhub_wrapped
