"""The auth.oidc keys of issue 18 reach the authenticator; the groups scope follows what the provider
offers; the groups warning names what is missing, once; a recorded `sub` guards the name."""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace

import pytest
from teamhub.auth import setup
from teamhub.auth.discovery import Discovery
from teamhub.auth.identity import GroupsNotice, refuse_other_subject
from teamhub.auth.methods import TeamhubOIDCAuthenticator
from teamhub.catalog.loader import check, load
from teamhub.values.schema import with_defaults
from teamhub.values.source import Source
from tornado import web

BASE = load(["config/values.yaml"]).source.data
DOC = {"issuer": "https://idp.example.org", "authorization_endpoint": "a", "token_endpoint": "t", "userinfo_endpoint": "u"}


def values_with(**oidc):
    data = copy.deepcopy(BASE)
    data["auth"]["oidc"] = {"enabled": True, "issuerUrl": "https://idp.example.org", "clientId": "hub",
                            "clientSecret": "s", "callbackUrl": "https://hub.example.org/hub/oidc/oauth_callback", **oidc}
    return data


def oidc_config(monkeypatch, values, offered=None) -> dict:
    """The OIDC entry of the multi-authenticator, its provider answering discovery with `offered` scopes."""
    doc = {**DOC, **({"scopes_supported": offered} if offered is not None else {})}
    monkeypatch.setattr(setup, "Discovery", lambda issuer, name: Discovery(issuer, name, fetch=lambda i, timeout=10.0: doc))
    # values as the loader hands them over: the schema's defaults filled in
    entries = setup.authenticators(with_defaults(values), load(["config/values.yaml"]).catalog, notice=GroupsNotice())
    return next(e["config"] for e in entries if e["authenticator_class"] is TeamhubOIDCAuthenticator)


def test_token_endpoint_auth_and_extra_authorize_params_reach_the_authenticator(monkeypatch):
    conf = oidc_config(monkeypatch, values_with())
    assert conf["basic_auth"] is True  # client_secret_basic, the OpenID Connect default
    conf = oidc_config(monkeypatch, values_with(tokenEndpointAuthMethod="client_secret_post", extraAuthorizeParams={"prompt": "consent"}))
    assert conf["basic_auth"] is False and conf["extra_authorize_params"] == {"prompt": "consent"}


@pytest.mark.parametrize("offered, scope", [
    (None, ["openid", "profile", "email", "groups"]),  # the provider lists no scopes: ask
    (["openid", "profile", "email", "groups"], ["openid", "profile", "email", "groups"]),
    (["openid", "profile", "email"], ["openid", "profile", "email"]),  # Google, Entra ID: asking would fail
])
def test_the_groups_scope_is_requested_where_the_provider_offers_it(monkeypatch, offered, scope):
    auth = TeamhubOIDCAuthenticator(**oidc_config(monkeypatch, values_with(), offered))
    assert auth.scope == scope


def problems(values):
    return [(".".join(map(str, p.path)), p.message) for p in check(Source(data=values)).problems if p.level == "error"]


def test_schema_refuses_what_the_hub_sets_itself_and_unknown_auth_methods():
    assert problems(values_with(extraAuthorizeParams={"prompt": "consent", "acr_values": "mfa"})) == []
    [(path, msg)] = problems(values_with(extraAuthorizeParams={"redirect_uri": "https://evil.example.org"}))
    assert path.startswith("auth.oidc.extraAuthorizeParams") and "set by the hub itself" in msg
    assert problems(values_with(tokenEndpointAuthMethod="private_key_jwt"))


def test_groups_warning_names_the_missing_scope_once():
    notice = GroupsNotice()
    for _ in range(3):
        notice.missing("oidc:jdoe", "groups", "groups", ["openid", "groups"], ["openid", "groups"], ["cv-course"])
    notice.missing("oidc:x", "groups", "groups", ["openid"], ["openid"], ["cv-course"])
    assert len(notice.messages) == 2
    assert "requested the 'groups' scope" in notice.messages[0] and "(cv-course)" in notice.messages[0]
    assert "does not offer the 'groups' scope" in notice.messages[1] and "mapper" in notice.messages[1]


class FakeUser:
    def __init__(self, state):
        self.state = state

    async def get_auth_state(self):
        return self.state


def test_a_different_sub_for_a_known_name_is_refused():
    handler = SimpleNamespace(find_user=lambda name: FakeUser({"sub": "abc"}) if name == "oidc:jdoe" else None)
    asyncio.run(refuse_other_subject(handler, "oidc:jdoe", "abc"))
    asyncio.run(refuse_other_subject(handler, "oidc:new", "xyz"))  # first login records it
    with pytest.raises(web.HTTPError) as err:
        asyncio.run(refuse_other_subject(handler, "oidc:jdoe", "xyz"))
    assert err.value.status_code == 403 and "different account at the identity provider" in err.value.log_message
    # a person from before sub was recorded is let in (and gets it recorded)
    legacy = SimpleNamespace(find_user=lambda name: FakeUser({}))
    asyncio.run(refuse_other_subject(legacy, "oidc:jdoe", "xyz"))
