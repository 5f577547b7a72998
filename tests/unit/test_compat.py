"""Every private JupyterHub, KubeSpawner and multiauthenticator attribute teamhub reaches through teamhub/compat.py
still exists at the pinned versions with the shape teamhub relies on (issue 25): an upgrade that renames or
reshapes one fails here, by name."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
from jupyterhub import dbutil, orm
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.user import User
from kubespawner import KubeSpawner
from multiauthenticator import MultiAuthenticator
from teamhub import compat

PACKAGE = Path(compat.__file__).parent


def params(func) -> list[str]:
    return list(inspect.signature(inspect.unwrap(func)).parameters)


def test_jupyterhubs_page_routes_are_a_list_of_route_handler_pairs_holding_spawnhandler():
    import jupyterhub.app  # noqa: F401 - fills default_handlers, as the hub does at start

    routes = compat.default_handlers()
    assert routes is jupyterhub.handlers.default_handlers and isinstance(routes, list)
    assert all(isinstance(r, tuple) and isinstance(r[0], str) for r in routes)
    # SpawnHandler, or teamhub's page in its place once a test before this one configured a hub (getsafe.install
    # changes this process-wide list)
    from teamhub.hub.getsafe import SpawnPageHandler

    assert any(r[1] in (SpawnHandler, SpawnPageHandler) for r in routes)


def test_user_orm_spawners_is_a_property_of_the_orm_user():
    assert "self.orm_user = orm_user" in inspect.getsource(User.__init__)
    assert isinstance(inspect.getattr_static(orm.User, "orm_spawners"), property)


@pytest.mark.parametrize(("owner", "name", "expected"), [
    (SpawnHandler, "_get", ["self", "user_name", "server_name", "display_name"]),
    (SpawnHandler, "_render_form", ["self", "for_user", "spawner_options_form", "message", "html_message"]),
    (SpawnHandler, "_wrap_spawn_single_user", ["self", "user", "server_name", "display_name", "spawner", "pending_url", "options"]),
    (BaseHandler, "_check_named_server_request", ["self", "user", "server_name", "display_name", "check_limit"]),
    (KubeSpawner, "_start_watching_pods", ["self", "replace"]),
    (KubeSpawner, "_get_pod_url", ["self", "pod"]),
])
def test_private_methods_take_what_teamhub_passes(owner, name, expected):
    func = inspect.getattr_static(owner, name)
    assert inspect.isfunction(func), f"{owner.__name__}.{name} is not a method any more"
    assert params(func) == expected
    async_expected = name not in ("_get_pod_url",)
    assert inspect.iscoroutinefunction(inspect.unwrap(func)) == async_expected, name


def test_handler_attributes_teamhub_sets():
    source = inspect.getsource(BaseHandler)
    assert "self._jupyterhub_user" in source  # the cached current user compat.forget_current_user clears
    assert "_token_authenticated" in source  # read after a failed refresh (compat.mark_cookie_authenticated)


def test_pod_reflector_is_a_property():
    assert isinstance(inspect.getattr_static(KubeSpawner, "pod_reflector"), property)


def test_alembic_ini_is_a_context_manager_of_the_database_url():
    assert params(dbutil._temp_alembic_ini) == ["db_url"]
    with compat.temp_alembic_ini("sqlite:///x.sqlite") as ini:
        assert Path(ini).read_text().count("sqlite:///x.sqlite") == 1


def test_multiauthenticator_keeps_its_authenticators_in_a_list():
    auth = MultiAuthenticator(authenticators=[])
    assert compat.sub_authenticators(auth) == [] and isinstance(compat.sub_authenticators(auth), list)


@pytest.mark.parametrize("qualified", sorted(compat.OVERRIDDEN))
def test_overridden_private_methods_keep_their_parameters(qualified):
    module, cls, name = qualified.rsplit(".", 2)
    func = inspect.getattr_static(getattr(importlib.import_module(module), cls), name)
    assert inspect.isfunction(func)
    assert params(func)[:len(compat.OVERRIDDEN[qualified])] == list(compat.OVERRIDDEN[qualified])


OVERRIDE_CALL = re.compile(r"super\(\)\.(" + "|".join(re.escape(q.rsplit(".", 1)[1]) for q in compat.OVERRIDDEN) + r")\(")


def private_reaches(text: str) -> list[str]:
    """`x._name` in code (not in comments or backquoted names) that is not teamhub's own private attribute."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        code = re.sub(r"`[^`]*`", "", line.split("#")[0])
        for m in re.finditer(r"(\w+|\))\.(_[a-z]\w*)", code):
            owner, attr = m.groups()
            if (owner == "self" and attr.startswith("_teamhub")) or (owner == "os" and attr == "_exit"):
                continue
            if OVERRIDE_CALL.search(code[max(0, m.start() - 8):]):
                continue  # an overridden hook calling JupyterHub's (OVERRIDDEN)
            if owner == "self" and not _jupyterhub_attr(attr):
                continue  # teamhub's own private attribute
            found.append(f"{n}: {m.group(0)}")
    return found


def test_no_other_module_reaches_a_private_attribute_of_a_dependency():
    """teamhub's own modules call compat.py; they may override the hooks in OVERRIDDEN (and their super())."""
    offenders = [f"{path.relative_to(PACKAGE)}:{hit}" for path in PACKAGE.rglob("*.py")
                 if path.name != "compat.py" and "pullguard" not in path.parts  # the pull guard runs without teamhub
                 for hit in private_reaches(path.read_text())]
    assert not offenders, offenders


def test_the_check_finds_a_private_reach():
    assert private_reaches("form = await self._render_form(user, form)\nurl = spawner._get_pod_url(pod)\n") == [
        "1: self._render_form", "2: spawner._get_pod_url"]
    assert private_reaches("await super()._start()\nself._teamhub_pod = None  # self._render_form\n") == []


def _jupyterhub_attr(attr: str) -> bool:
    """Whether a `self._x` names something JupyterHub's handlers/spawners or KubeSpawner define."""
    return any(attr in vars(cls) for base in (BaseHandler, SpawnHandler, KubeSpawner, MultiAuthenticator)
               for cls in inspect.getmro(base))
