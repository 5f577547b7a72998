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


def test_the_demo_runs_its_hub_in_demo_mode_on_every_values_file(tmp_path):
    """`teamhub demo` (and the tests' HubProcess) give the hub every values file and demo mode, which is what lets
    the demo accounts' published hashes in (tests/unit/test_demo_hashes.py); the CLI defaults to the demo's files."""
    from teamhub.cli.commands import build_parser
    from teamhub.paths import values_files

    files = [tmp_path / "values.yaml", tmp_path / "demo" / "values.yaml"]
    env = hub_environment(files, 8000, tmp_path, None, base={"PATH": "/usr/bin"})
    assert env["TEAMHUB_DEMO"] == "1" and env["TEAMHUB_MODE"] == "local"
    assert values_files(env) == files
    assert build_parser().parse_args(["demo"]).values == ["config/values.yaml", "config/demo/values.yaml"]
