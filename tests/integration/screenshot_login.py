"""Make docs/screenshots/login.png: a real hub on loopback with every login method, headless chromium.

Run: .venv/bin/python tests/integration/screenshot_login.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1] / "hub-image")]

from authhub import ROOT, AuthHub  # noqa: E402
from fakeproviders import FakeGitHub, FakeOIDC  # noqa: E402
from test_auth_hub import values_for  # noqa: E402


def main() -> int:
    gh, oidc = FakeGitHub().start(), FakeOIDC().start()
    with tempfile.TemporaryDirectory() as tmp:
        hub = AuthHub({}, Path(tmp) / "hub")
        hub.values = values_for(hub.url, gh, oidc, dummy=True)
        hub.values["auth"]["oidc"]["displayName"] = "University SSO"
        hub.values["branding"] = {
            "title": "Physics Lab Jupyter", "subtitle": "Course and research notebooks",
            "colors": {"primary": "#0b5394"},
            "announcement": "<b>Maintenance:</b> Friday 18:00-19:00, servers will be stopped.",
        }
        hub.start()
        try:
            out = ROOT / "docs" / "screenshots" / "login.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            "--hide-scrollbars", "--window-size=1000,1100", f"--screenshot={out}", hub.url + "/hub/login"],
                           check=True, timeout=120, capture_output=True, cwd=tmp)
            print(f"wrote {out}")
        finally:
            hub.stop()
            gh.stop()
            oidc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
