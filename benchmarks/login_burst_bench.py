"""Login throttle under concurrency (issue 23, finding 5), against the real hub through its proxy: a script,
not a test (`make bench`).

1. 50 simultaneous wrong passwords for one account from one address: how many were checked (answered 403
   after a bcrypt check) and how many were answered 429 at once, and how long the 429s took.
   Before (main a9ac9df): 50 of 50 checked. Target: about 5 checked (the allowance), 45 x 429.
2. Another person's correct sign-in, from another address, sent just after a burst of 100 guesses (100
   accounts from one address): how long it took, and the burst's own split.
   Before: 15.6 s. Target: about 1 s.

The hub trusts loopback as a proxy in front of its own (auth.local.trustedProxies), so each client names its
address in X-Forwarded-For, as an ingress would. Everything binds to 127.0.0.1 and is stopped afterwards.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hubprocess import HubProcess, demo_passwords, demo_values  # noqa: E402


def login_form(hub: HubProcess, address: str) -> tuple:
    """(client, the local form's action, xsrf): a login page fetched ahead, so the burst is the POSTs alone."""
    import re

    client = httpx.Client(base_url=hub.url, timeout=120, follow_redirects=False, headers={"X-Forwarded-For": address})
    page = client.get("/hub/login").text
    action = re.search(r'<form[^>]*class="[^"]*teamhub-local[^"]*"[^>]*action="([^"?]+)', page).group(1)
    return client, action, client.cookies.get("_xsrf")


def post(form: tuple, name: str, password: str, start: threading.Barrier | None = None) -> tuple:
    client, action, xsrf = form
    if start is not None:
        start.wait()
    t0 = time.perf_counter()
    r = client.post(action, data={"username": name, "password": password, "_xsrf": xsrf})
    return r.status_code, time.perf_counter() - t0


def burst(hub: HubProcess, names: list, address: str, during=None) -> tuple:
    forms = [login_form(hub, address) for _ in names]
    start = threading.Barrier(len(names) + 1)
    with ThreadPoolExecutor(len(names) + 1) as pool:
        futures = [pool.submit(post, f, n, "wrong-guess", start) for f, n in zip(forms, names, strict=True)]
        start.wait()
        extra = during() if during else None
        results = [f.result() for f in futures]
    return results, extra


def summary(results: list) -> str:
    checked = [t for code, t in results if code == 403]
    refused = [t for code, t in results if code == 429]
    other = len(results) - len(checked) - len(refused)
    line = f"{len(checked)} checked (403), {len(refused)} answered 429"
    if refused:
        line += f" within {max(refused):.2f} s"
    return line + (f", {other} other" if other else "")


def main() -> int:
    passwords = demo_passwords()
    with tempfile.TemporaryDirectory(prefix="login-burst-") as tmp:
        values = demo_values()
        values["auth"]["local"]["trustedProxies"] = ["127.0.0.1/32"]
        path = Path(tmp) / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        hub = HubProcess(path, Path(tmp) / "hub")
        hub.start(timeout=120)
        try:
            post(login_form(hub, "192.0.2.1"), "alice", passwords["alice"])  # warm-up: templates, the check pool

            results, _ = burst(hub, ["bob"] * 50, "203.0.113.5")
            print(f"1. 50 simultaneous wrong passwords for one account, one address: {summary(results)}"
                  "   (before: 50 of 50 checked; target ~5 checked, 45 x 429)")

            carol = login_form(hub, "198.51.100.20")

            def carol_signs_in():
                time.sleep(0.2)  # the burst is in flight
                return post(carol, "carol", passwords["carol"])

            results, (code, waited) = burst(hub, [f"student{i}" for i in range(100)], "203.0.113.6", carol_signs_in)
            print(f"2. another person's correct sign-in behind a 100-guess burst: HTTP {code} after {waited:.2f} s"
                  "   (before: 15.6 s; target ~1 s)")
            print(f"   the burst (100 accounts, one address): {summary(results)}")
        finally:
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
