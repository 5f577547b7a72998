"""`teamhub demo`'s hub environment."""

from __future__ import annotations

import stat

from teamhub.cli.demo import hub_environment


def test_demo_has_a_stable_crypt_key_so_github_and_oidc_can_start(tmp_path):
    # Regression: a demo with GitHub or OIDC enabled stopped at start ("auth_state is enabled, but
    # encryption is not available") because nothing set JUPYTERHUB_CRYPT_KEY.
    first = hub_environment(tmp_path / "values.yaml", 8000, tmp_path, None, base={"PATH": "/usr/bin"})
    key = first["JUPYTERHUB_CRYPT_KEY"]
    assert len(bytes.fromhex(key)) == 32
    assert stat.S_IMODE((tmp_path / "jupyterhub_crypt_key").stat().st_mode) == 0o600
    again = hub_environment(tmp_path / "values.yaml", 8000, tmp_path, None, base={"PATH": "/usr/bin"})
    assert again["JUPYTERHUB_CRYPT_KEY"] == key  # a restarted demo still decrypts what it stored


def test_an_operators_crypt_key_wins(tmp_path):
    env = hub_environment(tmp_path / "values.yaml", 8000, tmp_path, None, base={"PATH": "/usr/bin", "JUPYTERHUB_CRYPT_KEY": "ab" * 32})
    assert env["JUPYTERHUB_CRYPT_KEY"] == "ab" * 32
    assert not (tmp_path / "jupyterhub_crypt_key").exists()
