"""Every private JupyterHub, KubeSpawner and jupyterhub-multiauthenticator attribute teamhub touches, in one place.

None of these is a public API: an upgrade may rename or reshape one without notice. Whatever teamhub reads or calls
goes through a function here; what teamhub overrides by name (a subclass can only override under the same name)
is listed in OVERRIDDEN. tests/unit/test_compat.py checks each against the pinned versions (that it exists, is the
kind of attribute used here, and takes the parameters passed), so an upgrade that changes one fails there, with
its name, instead of in a person's start. Imports are deferred: the `teamhub` command must not load JupyterHub.
(The pull guard's `nbgitpuller._compat.get_base_handler` stays in pullguard/extension.py: it runs in the single-user
server, which has no teamhub package beside it.)
"""

from __future__ import annotations

# --- JupyterHub -----------------------------------------------------------------------------------------------


def default_handlers() -> list:
    """`jupyterhub.handlers.default_handlers`: JupyterHub's page routes, (route, handler[, kwargs]), registered
    before `extra_handlers`, so replacing one of its handlers means changing this list (hub/getsafe.py)."""
    import jupyterhub.handlers

    return jupyterhub.handlers.default_handlers


def orm_spawners(user) -> dict:
    """`User.orm_user.orm_spawners`: the person's servers in the database by name, including ones never started."""
    return user.orm_user.orm_spawners


async def spawn_page(handler, user_name: str, server_name: str, display_name: str):
    """`SpawnHandler._get`: JupyterHub's GET of the spawn page after its argument handling (scope-checked)."""
    from jupyterhub.handlers.pages import SpawnHandler

    return await SpawnHandler._get(handler, user_name=user_name, server_name=server_name, display_name=display_name)


async def check_named_server_request(handler, user, server_name: str, display_name: str) -> None:
    """`SpawnHandler._check_named_server_request`: named servers allowed, the name valid, the per-person limit."""
    await handler._check_named_server_request(user, server_name, display_name)


async def render_spawn_form(handler, user, form: str, message: str = "") -> str:
    """`SpawnHandler._render_form`: the spawn page around an options form."""
    return await handler._render_form(user, form, message=message)


async def wrap_spawn_single_user(handler, user, server_name: str, display_name: str, spawner, pending_url: str,
                                 options=None):
    """`SpawnHandler._wrap_spawn_single_user`: start, wait a moment, redirect to the pending page (errors to the page)."""
    return await handler._wrap_spawn_single_user(user, server_name, display_name, spawner, pending_url, options)


def forget_current_user(handler) -> None:
    """`BaseHandler._jupyterhub_user`: the handler's cached current user, cleared after a logout."""
    handler._jupyterhub_user = None


def mark_cookie_authenticated(handler) -> None:
    """`BaseHandler._token_authenticated`: JupyterHub 6.1.1 sets it only for token requests, then reads it after a
    failed refresh of a cookie session (AttributeError, a traceback per page load). Unset means cookie-authenticated."""
    if not hasattr(handler, "_token_authenticated"):
        handler._token_authenticated = False


def temp_alembic_ini(db_url: str):
    """`jupyterhub.dbutil._temp_alembic_ini`: a context manager giving an alembic.ini for JupyterHub's migrations."""
    from jupyterhub import dbutil

    return dbutil._temp_alembic_ini(db_url)


# --- KubeSpawner ------------------------------------------------------------------------------------------------


def pod_reflector(spawner):
    """`KubeSpawner.pod_reflector`: the shared watch of the namespace's user pods (`.pods`: "namespace/name" -> pod),
    None before the first start of this hub."""
    return spawner.pod_reflector


async def start_watching_pods(spawner) -> None:
    """`KubeSpawner._start_watching_pods`: start (or join) the pod reflector."""
    await spawner._start_watching_pods()


def pod_url(spawner, pod: dict) -> str:
    """`KubeSpawner._get_pod_url`: where a running pod's server answers."""
    return spawner._get_pod_url(pod)


# --- jupyterhub-multiauthenticator -------------------------------------------------------------------------------


def sub_authenticators(multi) -> list:
    """`MultiAuthenticator._authenticators`: one authenticator per login method, as configured."""
    return multi._authenticators


# Private methods teamhub overrides under their own name, and the parameters it relies on (checked by the test).
OVERRIDDEN = {
    "kubespawner.KubeSpawner._start": ("self",),
    "kubespawner.KubeSpawner._make_create_pvc_request": ("self", "pvc", "request_timeout"),
    "kubespawner.KubeSpawner._make_create_pod_request": ("self", "pod", "request_timeout"),
    "jupyterhub.handlers.login.LoginHandler._render": ("self", "login_error", "username"),
}
