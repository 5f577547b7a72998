"""Local sign-in (timing, throttling), the accounts file, the GitHub scope fix, the prefix guard."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import asdict
from types import SimpleNamespace

import pytest
from support import DEMO_VALUES, load_demo
from teamhub.auth.accounts import Account
from teamhub.auth.methods import Shared, TeamhubGitHubAuthenticator, TeamhubLocalAuthenticator
from teamhub.auth.multi import TeamhubMultiAuthenticator
from teamhub.auth.passwords import hash_password
from teamhub.auth.throttle import LoginThrottle, ThrottleSettings
from teamhub.catalog.loader import load
from teamhub.values.schema import with_defaults
from tornado import web
from tornado.httputil import HTTPHeaders

CATALOG = load_demo().catalog
DEFAULTS = ThrottleSettings.from_values(with_defaults({})["auth"]["local"]["throttle"])  # the schema's


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_account_lock_backs_off_and_doubles():
    clock = Clock()
    t = LoginThrottle(DEFAULTS, clock)
    for _ in range(4):
        t.failed("bob", "10.0.0.1")
    assert t.retry_after("bob", "10.0.0.1") == 0
    t.failed("bob", "10.0.0.1")
    assert t.retry_after("bob", "10.0.0.1") == 30
    assert t.retry_after("bob", "10.0.0.2") == 0  # another address is not locked out by this one
    clock.now += 31
    t.failed("bob", "10.0.0.1")
    assert t.retry_after("bob", "10.0.0.1") == 60
    clock.now += 61
    t.succeeded("bob", "10.0.0.1")
    assert t.retry_after("bob", "10.0.0.1") == 0


def test_a_classroom_behind_one_nat_gets_in_but_a_guessing_loop_does_not():
    clock = Clock()
    t = LoginThrottle(DEFAULTS, clock)
    nat = "192.0.2.10"
    # 60 students, each mistyping once or twice within ten minutes, all from one address
    for i in range(60):
        for _ in range(1 + i % 2):
            assert t.retry_after(f"student{i}", nat) == 0
            t.failed(f"student{i}", nat)
            clock.now += 5
        assert t.retry_after(f"student{i}", nat) == 0
        t.succeeded(f"student{i}", nat)
    # a loop guessing passwords for one account is stopped after 5 tries
    tries = 0
    while t.retry_after("victim", "198.51.100.7") == 0 and tries < 1000:
        t.failed("victim", "198.51.100.7")
        tries += 1
    assert tries == 5
    # a loop spraying many accounts from one address stops at the address limit
    sprayed = 0
    while t.retry_after(f"user{sprayed}", "198.51.100.8") == 0 and sprayed < 1000:
        t.failed(f"user{sprayed}", "198.51.100.8")
        sprayed += 1
    assert sprayed == 100
    assert 0 < t.retry_after("someone-else", "198.51.100.8") <= 900


def _local(rounds=10, **settings):
    accounts = {"alice": Account("alice", hash_password("alice-pass", rounds), ("cv-course",))}
    return TeamhubLocalAuthenticator(accounts=accounts, throttle_settings={**asdict(DEFAULTS), **settings}, teamhub_catalog=Shared(CATALOG))


def _handler(ip="127.0.0.1", **headers):
    """What Tornado hands the authenticator: the TCP peer in the connection context, the headers as sent."""
    context = SimpleNamespace(address=(ip, 50000))
    return SimpleNamespace(request=SimpleNamespace(connection=SimpleNamespace(context=context), headers=HTTPHeaders(headers)))


def test_unknown_user_takes_as_long_as_a_wrong_password():
    auth = _local(rounds=10, user_failures=1000, address_failures=1000)

    async def timed(name):
        start = time.perf_counter()
        assert await auth.authenticate(_handler(), {"username": name, "password": "wrong-password"}) is None
        return time.perf_counter() - start

    async def run():
        wrong, unknown = [], []
        for _ in range(6):
            wrong.append(await timed("alice"))
            unknown.append(await timed("nobody"))
        return statistics.median(wrong), statistics.median(unknown)

    wrong, unknown = asyncio.run(run())
    print(f"median wrong password {wrong * 1000:.1f} ms, unknown user {unknown * 1000:.1f} ms")
    assert 0.6 < unknown / wrong < 1.6


def test_local_sign_in_returns_teams_and_is_off_the_event_loop():
    auth = _local(rounds=10)

    async def run():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        result = await auth.authenticate(_handler(), {"username": "local:alice", "password": "alice-pass"})
        task.cancel()
        return result, ticks

    result, ticks = asyncio.run(run())
    assert result["name"] == "alice" and sorted(result["groups"]) == ["cv-course", "everyone"]
    assert ticks >= 3  # the loop kept running while bcrypt worked


def test_local_refresh_writes_nothing_while_the_teams_are_unchanged():
    """Before every start JupyterHub refreshes the person (refresh_pre_spawn); True means "up to date", so it
    saves no groups and no auth state. Changed teams (values edited), or a removed account, still apply."""
    auth = _local(rounds=4)

    def person(*groups):
        return SimpleNamespace(name="local:alice", groups=[SimpleNamespace(name=g) for g in groups])

    assert asyncio.run(auth.refresh_user(person("cv-course", "everyone"))) is True
    changed = asyncio.run(auth.refresh_user(person("everyone")))
    assert changed == {"name": "local:alice", "groups": changed["groups"]} and sorted(changed["groups"]) == ["cv-course", "everyone"]
    assert asyncio.run(auth.refresh_user(SimpleNamespace(name="local:bob", groups=[]))) is False


def test_throttled_sign_in_raises_429_with_retry_after():
    auth = _local(rounds=4, user_failures=2)

    async def run():
        for _ in range(2):
            assert await auth.authenticate(_handler(), {"username": "alice", "password": "nope"}) is None
        with pytest.raises(web.HTTPError) as err:
            await auth.authenticate(_handler(), {"username": "alice", "password": "alice-pass"})
        return err.value

    err = asyncio.run(run())
    assert err.status_code == 429 and err.headers["Retry-After"] == "30"


def test_accounts_file_is_checked_by_the_one_loader(tmp_path):
    """The Secret's accounts are values under auth.local.users: the same checks, problems naming the file,
    line and YAML path, and the catalog built with their teams."""
    overlay = tmp_path / "secret.yaml"
    overlay.write_text("auth:\n  local:\n    enabled: true\n    existingSecret: {name: lab-accounts, key: users.yaml}\n"
                       "    users:\n      dave: {passwordHash: '" + hash_password("old", 4) + "', teams: [nlp-course]}\n")
    files = [*DEMO_VALUES, overlay]
    good = tmp_path / "ok.yaml"
    good.write_text(f"dave:\n  passwordHash: '{hash_password('x', 4)}'\n  teams: [cv-course]\n")
    checked = load(files, accounts_file=good, demo=True)
    assert checked.ok, checked.problems
    assert checked.values["auth"]["local"]["users"]["dave"]["teams"] == ["cv-course"]  # the Secret wins whole
    assert checked.catalog.local_users["dave"] == ("cv-course",)
    assert load(files, demo=True).catalog.local_users["dave"] == ("nlp-course",)  # no accounts file: values only
    bad = tmp_path / "bad.yaml"
    bad.write_text("Dave:\n  passwordHash: hunter2\n")
    problems = [str(p) for p in load(files, accounts_file=bad, demo=True).errors]
    assert any(p.startswith(f"{bad}:1") and "auth.local.users" in p and "Dave" in p for p in problems), problems
    assert any(p.startswith(f"{bad}:2: auth.local.users.Dave.passwordHash") and "bcrypt" in p for p in problems), problems
    unknown_team = tmp_path / "team.yaml"
    unknown_team.write_text(f"dave:\n  passwordHash: '{hash_password('x', 4)}'\n  teams: [nope]\n")
    problems = [str(p) for p in load(files, accounts_file=unknown_team, demo=True).errors]
    assert any(p.startswith(f"{unknown_team}:3") and "unknown team 'nope'" in p for p in problems), problems


def test_github_comma_separated_scopes_are_split():
    gh = TeamhubGitHubAuthenticator(client_id="x", client_secret="y", teamhub_catalog=Shared(CATALOG))
    state = gh.build_auth_state_dict({"access_token": "t", "scope": "read:org,user:email"}, {"login": "octo"})
    assert state["scope"] == ["read:org", "user:email"]


def test_every_method_gets_a_distinct_non_empty_prefix():
    class Nameless(TeamhubLocalAuthenticator):
        teamhub_method = ""

    with pytest.raises(ValueError, match="non-empty username prefix"):
        TeamhubMultiAuthenticator(authenticators=[{"authenticator_class": Nameless, "url_prefix": "/x",
                                                   "config": {"throttle_settings": asdict(DEFAULTS)}}])
    multi = TeamhubMultiAuthenticator(authenticators=[
        {"authenticator_class": TeamhubLocalAuthenticator, "url_prefix": "/local", "config": {"throttle_settings": asdict(DEFAULTS)}}])
    local = multi.method_for("local:alice")
    assert local.username_prefix == "local:"
    assert multi.method_for("github:alice") is None and multi.method_for("alice") is None
    assert local.check_allowed("github:alice", {}) is False


@pytest.mark.parametrize(("cpu_max", "expected"), [("200000 100000\n", 2), ("50000 100000\n", 1), ("350000 100000\n", 3)])
def test_password_checks_leave_the_event_loop_a_core(tmp_path, cpu_max, expected):
    """bcrypt checks run on cores - 1 threads (at least one), counting the container's CPU limit, so a class
    signing in at once does not starve the hub's event loop."""
    from teamhub.auth import passwords

    limit = tmp_path / "cpu.max"
    limit.write_text(cpu_max)
    assert passwords.cores(limit) == expected
    limit.write_text("max 100000\n")
    assert passwords.cores(limit) == passwords.cores(tmp_path / "absent") == (os.cpu_count() or 1)
    assert passwords._checks()._max_workers == max(1, passwords.cores() - 1)


def test_concurrent_guesses_are_limited_like_sequential_ones():
    """Issue 23, finding 5: the attempt is reserved before the password check, so 50 simultaneous wrong
    passwords for one account from one address get 5 checks; the other 45 are answered 429 at once."""
    clock = Clock()
    t = LoginThrottle(DEFAULTS, clock)
    reserved = [t.reserve("victim", "198.51.100.7") for _ in range(50)]
    assert reserved.count(0) == 5 and all(w > 0 for w in reserved[5:])
    assert t.reserve("victim", "198.51.100.9") == 0  # another address still has its own allowance
    t.release("victim", "198.51.100.9")
    for _ in range(5):  # the five checks end as failures: the lock is the sequential one
        t.release("victim", "198.51.100.7")
        t.failed("victim", "198.51.100.7")
    assert t.retry_after("victim", "198.51.100.7") == 30


def _gated(monkeypatch):
    """Password checks that finish only when the test says so: (started checks, release one)."""
    import teamhub.auth.methods as methods

    started: list = []

    async def check(password, password_hash):
        done = asyncio.get_running_loop().create_future()
        started.append(done)
        return await done

    monkeypatch.setattr(methods, "verify_password_off_loop", check)
    return started


def test_fifty_simultaneous_wrong_passwords_check_five_and_answer_429_at_once(monkeypatch):
    started = _gated(monkeypatch)
    auth = _local(rounds=4)

    async def run():
        tries = [asyncio.ensure_future(auth.authenticate(_handler("203.0.113.5"), {"username": "alice", "password": f"guess{i}"}))
                 for i in range(50)]
        while len([t for t in tries if t.done()]) < 45:
            await asyncio.sleep(0)
        refused = [t for t in tries if t.done()]
        assert all(isinstance(t.exception(), web.HTTPError) and t.exception().status_code == 429 for t in refused)
        # The five reserved run in turn (one address): one check at a time in the pool.
        checked = 0
        while checked < 5:
            while len(started) <= checked:
                await asyncio.sleep(0)
            assert len(started) == checked + 1
            started[checked].set_result(False)
            checked += 1
        return await asyncio.gather(*[t for t in tries if t not in refused])

    assert asyncio.run(run()) == [None] * 5
    assert len(started) == 5


def test_a_full_line_from_one_address_is_answered_429_and_others_go_ahead(monkeypatch):
    started = _gated(monkeypatch)
    auth = _local(rounds=4)

    async def run():
        spray = [asyncio.ensure_future(auth.authenticate(_handler("203.0.113.6"), {"username": f"user{i}", "password": "x"}))
                 for i in range(30)]
        while len([t for t in spray if t.done()]) < 10:
            await asyncio.sleep(0)
        assert all(t.exception().status_code == 429 for t in spray if t.done())  # beyond the line's bound
        other = asyncio.ensure_future(auth.authenticate(_handler("198.51.100.20"), {"username": "alice", "password": "alice-pass"}))
        while len(started) < 2:
            await asyncio.sleep(0)
        assert len(started) == 2  # the spray's first check and alice's: alice did not queue behind the spray
        started[1].set_result(True)
        result = await other
        for t in spray:
            t.cancel()
        await asyncio.gather(*spray, return_exceptions=True)
        assert auth.checks.retry_after("203.0.113.6") == 0 and not auth.throttle._pending  # nothing left reserved
        return result

    assert asyncio.run(run())["name"] == "alice"
