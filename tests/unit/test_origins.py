"""Per-user origins (hub.subdomainHost): what values are accepted, how the hub and launch links read them, and
the warnings about the Ingress that must serve them (teamhub/values/origins.py)."""

from __future__ import annotations

import textwrap

import pytest
from hubhelpers import VALUES, configured
from teamhub.catalog import loader
from teamhub.hub import launchlinks
from teamhub.values import origins
from teamhub.values.source import format_path, load_text, merge, read_file


def check(extra: str):
    """config/values.yaml with `extra` merged on top, checked like `teamhub validate`."""
    return loader.check(merge([read_file(VALUES), load_text(textwrap.dedent(extra), "extra.yaml")]))


@pytest.mark.parametrize(("value", "url", "host"), [
    ("https://hub.example.org", "https://hub.example.org", "hub.example.org"),
    ("hub.example.org", "https://hub.example.org", "hub.example.org"),  # JupyterHub assumes https, so do we
    ("http://hub.localhost:8000", "http://hub.localhost:8000", "hub.localhost"),
    ("hub.example.org:8443", "https://hub.example.org:8443", "hub.example.org"),
])
def test_accepted_forms_give_jupyterhubs_subdomain_host(value, url, host):
    assert check(f"hub: {{subdomainHost: '{value}'}}\n").ok
    origin = origins.parse(value)
    assert (origin.url, origin.host, origin.wildcard) == (url, host, f"*.{host}")


@pytest.mark.parametrize(("value", "fragment"), [
    ("https://hub.example.org/", "not a valid subdomain host"),  # a path (JupyterHub appends base_url itself)
    ("https://hub.example.org/jupyter", "not a valid subdomain host"),
    ("ftp://hub.example.org", "not a valid subdomain host"),
    ("*.hub.example.org", "not a valid subdomain host"),  # the hub's own name, not the wildcard
    ("Hub.Example.org", "not a valid subdomain host"),
    ("https://alice@hub.example.org", "not a valid subdomain host"),
    ("hub.example.org:0", "not a valid subdomain host"),
    ("hub.example.org:70000", "the port must be 1 to 65535"),
])
def test_refused_forms_name_the_file_line_and_path(value, fragment):
    result = check(f"\nhub:\n  subdomainHost: '{value}'\n")
    errors = [p for p in result.errors if format_path(p.path) == "hub.subdomainHost"]
    assert len(errors) == 1, [str(p) for p in result.problems]
    assert fragment in errors[0].message
    assert str(errors[0]).startswith("extra.yaml:3: hub.subdomainHost: ")


def test_the_hub_sets_subdomain_host_only_when_asked(tmp_path):
    assert not configured().JupyterHub.get("subdomain_host")
    values = tmp_path / "values.yaml"
    values.write_text(VALUES.read_text() + "\nhub:\n  subdomainHost: hub.example.org\n")
    assert configured(values).JupyterHub.subdomain_host == "https://hub.example.org"
    assert configured(values, mode="local").JupyterHub.subdomain_host == "https://hub.example.org"


def test_launch_links_go_to_the_hubs_host():
    values = {"launchLinks": {}, "hub": {"subdomainHost": "hub.example.org:8443"},
              "ingress": {"enabled": True, "hosts": ["other.example.org"]}}
    assert launchlinks.public_url(values) == "https://hub.example.org:8443"
    values["launchLinks"]["publicUrl"] = "https://links.example.org/"
    assert launchlinks.public_url(values) == "https://links.example.org"  # the operator's word wins
    assert launchlinks.public_url({"launchLinks": {}, "hub": {"subdomainHost": ""}}) is None


def warnings(result) -> dict:
    return {format_path(p.path): p.message for p in result.warnings}


def test_an_ingress_with_tls_but_no_wildcard_certificate_is_warned_about():
    ingress = textwrap.dedent("""
        ingress:
          enabled: true
          hosts: [hub.example.org]
          tls: [{hosts: [hub.example.org], secretName: hub-tls}]
    """)
    result = check("hub: {subdomainHost: hub.example.org}\n" + ingress)
    assert result.ok
    assert "no certificate for *.hub.example.org" in warnings(result)["ingress.subdomainTlsSecretName"]
    named = check("hub: {subdomainHost: hub.example.org}\n" + ingress + "  subdomainTlsSecretName: wild-tls\n")
    assert "ingress.subdomainTlsSecretName" not in warnings(named)
    listed = check("hub: {subdomainHost: hub.example.org}\n" + ingress.replace("[hub.example.org], secretName",
                                                                              "[hub.example.org, '*.hub.example.org'], secretName"))
    assert "ingress.subdomainTlsSecretName" not in warnings(listed)
    plain = check("hub: {subdomainHost: 'http://hub.example.org'}\n" + ingress)
    assert "ingress.subdomainTlsSecretName" not in warnings(plain)


def test_a_wildcard_certificate_without_subdomain_host_and_a_foreign_link_host_are_warned_about():
    result = check("ingress: {subdomainTlsSecretName: wild-tls}\n")
    assert "has no effect without hub.subdomainHost" in warnings(result)["ingress.subdomainTlsSecretName"]
    result = check("hub: {subdomainHost: hub.example.org}\nlaunchLinks: {publicUrl: 'https://www.example.org'}\n")
    assert "not hub.subdomainHost's (hub.example.org)" in warnings(result)["launchLinks.publicUrl"]
