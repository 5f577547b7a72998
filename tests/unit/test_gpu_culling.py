"""Issue 28: GPU-aware culling's judgement, settings and the culler's config file, without a cluster.

The real Prometheus, exporter, hub and culler are in tests/cluster/test_gpu_culling.py; here the pieces each
have one job: the verdict on a pod's points, the PromQL asked, the rule a launch gets, the culler's hook as
the installed jupyterhub-idle-culler calls it, and the values checks (file:line)."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
from datetime import timedelta

import pytest
import yaml
from hubhelpers import VALUES, configured
from teamhub.culler import gpu
from teamhub.culler import settings as culler_settings
from teamhub.culler.arbiter import Arbiter
from teamhub.values import gpumetrics
from teamhub.values.source import load_files
from teamhub.values.validation import check, with_defaults

RULE = {"exporter": "dcgm", "belowPercent": 5.0, "seconds": 1800.0, "warnSeconds": 300.0}
NOW = 1_000_000.0


def points(values, step=30.0, end=NOW):
    """Points every `step` seconds ending at `end`, oldest first."""
    return [(end - step * (len(values) - 1 - i), float(v)) for i, v in enumerate(values)]


def test_an_idle_gpu_is_culled_after_its_window_and_warned_before():
    verdict = gpu.judge(points([0] * 61), NOW, RULE, 30.0)  # the whole window (and a step) at 0 %
    assert verdict.known and verdict.cull and not verdict.warning
    warned = gpu.judge(points([90] + [0] * 51), NOW, RULE, 30.0)  # busy 25.5 min ago, idle since
    assert warned.known and warned.warning and not warned.cull
    assert gpu.warning_text(warned) == "Your GPU has been idle for 25 min; this server stops in 5 min unless it computes"


def test_a_busy_gpu_is_kept_and_one_burst_restarts_the_window():
    assert not gpu.judge(points([90] * 61), NOW, RULE, 30.0).cull
    burst = gpu.judge(points([0] * 50 + [60] + [0] * 10), NOW, RULE, 30.0)
    assert burst.known and burst.idle_seconds == 300 and not burst.cull and not burst.warning


def test_a_new_server_is_idle_only_as_long_as_it_ran():
    verdict = gpu.judge(points([0] * 4), NOW, RULE, 30.0)  # 4 points: 2 minutes of series
    assert verdict.known and verdict.idle_seconds == 120 and not verdict.cull


def test_no_series_or_a_stale_one_is_unknown_never_culled():
    assert gpu.judge([], NOW, RULE, 30.0) == gpu.UNKNOWN
    stale = points([0] * 30, end=NOW - 600)  # the exporter stopped reporting this pod ten minutes ago
    assert not gpu.judge(stale, NOW, RULE, 30.0).known


def test_the_query_selects_the_pod_and_the_exporters_own_matchers():
    exps = gpumetrics.exporters({})
    q = gpu.query(exps["dcgm"], "users", 30, pod='teamhub-a"b')
    assert q == 'max by (pod) (max_over_time(DCGM_FI_DEV_GPU_UTIL{namespace="users",pod="teamhub-a\\"b"}[30s]))'
    amd = gpu.query(exps["amd"], "users", 1)
    assert amd == ('max by (pod) (max_over_time(gpu_gfx_activity{namespace="users",pod!="",'
                   'gpu_compute_partition_type=~"(?i)spx|"}[1s]))')
    ratio = gpumetrics.exporters({"exporters": {"dcgm": {"metric": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "toPercent": 100}}})
    assert ratio["dcgm"]["podLabel"] == "pod" and "amd" in ratio  # an override keeps the presets' other fields
    assert gpu.query(ratio["dcgm"], None, 30).endswith("[30s])) * 100")


def values_with(**gpu_metrics):
    data = yaml.safe_load(VALUES.read_text())
    data["gpuMetrics"] = gpu_metrics
    acc = next(iter(data["catalog"]["accelerators"]))
    data["catalog"]["accelerators"][acc]["idle"] = {"exporter": "amd", "minutes": 30, "warnMinutes": 5}
    return data, acc


def gpu_resource(data, acc):
    return next(k for k, r in data["catalog"]["resources"].items() if acc in (r.get("accelerators") or ()))


def test_settings_give_a_launch_its_rule_and_nothing_without_prometheus():
    data, acc = values_with(prometheusUrl="http://prometheus.monitoring.svc:9090")
    res = gpu_resource(data, acc)
    s = culler_settings.build(with_defaults(data), 60, "users")
    assert s["prometheus"] == {"url": "http://prometheus.monitoring.svc:9090", "timeout": 5.0}
    assert culler_settings.rule_for(s, res, acc) == {"exporter": "amd", "belowPercent": 5.0, "seconds": 1800.0, "warnSeconds": 300.0}
    assert culler_settings.rule_for(s, res, None) is None  # a CPU choice: today's rule
    assert set(s["exporters"]) == {"amd"}  # only what a rule names
    off = culler_settings.build(with_defaults(values_with()[0]), 60, "users")
    assert off["prometheus"] is None and culler_settings.rule_for(off, res, acc) is None


def test_a_resources_rule_is_over_its_accelerators():
    data, acc = values_with(prometheusUrl="http://10.0.0.5:9090")
    res = gpu_resource(data, acc)
    data["catalog"]["resources"][res]["idle"] = {"exporter": "dcgm", "minutes": 10, "warnMinutes": 2, "belowPercent": 20}
    s = culler_settings.build(with_defaults(data), 60, "users")
    assert culler_settings.rule_for(s, res, acc)["seconds"] == 600 and culler_settings.rule_for(s, res, acc)["belowPercent"] == 20


def written(tmp_path, data, name="values.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_gpu_rules_give_the_culler_server_state_and_nothing_else(tmp_path):
    """The hook needs the pod name and launch: admin:server_state, only then."""
    data, _ = values_with(prometheusUrl="http://prometheus.monitoring.svc:9090")
    c = configured(written(tmp_path, data))
    (service,) = c.JupyterHub.services.get_value([])
    (role,) = c.JupyterHub.load_roles.get_value([])
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers", "delete:servers", "admin:server_state"}
    s = json.loads(service["environment"][culler_settings.ENV])
    assert s["prometheus"]["url"] == "http://prometheus.monitoring.svc:9090"
    data["sessions"]["idleCullMinutes"] = 0  # the activity rule off: the culler still runs, for GPU rules only
    assert len(configured(written(tmp_path, data, "off.yaml")).JupyterHub.services.get_value([])) == 1


def test_the_config_file_installs_the_hook_the_installed_culler_calls(monkeypatch):
    """jupyterhub-idle-culler 2.0.0's IdleCuller reads cull_arbiter_hook from the config file and calls it with
    keywords inactive, inactive_limit, server (and awaits what it returns)."""
    import inspect

    import jupyterhub_idle_culler as jic
    from teamhub.hub.config import CULLER_CONFIG

    assert "cull_arbiter_hook" in jic.IdleCuller.class_trait_names()
    params = inspect.signature(jic.default_cull_arbiter).parameters  # the culler's own hook, which ours replaces
    assert [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY] == ["inactive", "inactive_limit", "server"]
    data, acc = values_with(prometheusUrl="http://127.0.0.1:9")  # nothing listens on port 9: an outage
    s = culler_settings.build(with_defaults(data), 60, "users", 7, "http://127.0.0.1:8081/hub/api")
    monkeypatch.setenv(culler_settings.ENV, culler_settings.dumps(s))
    app = jic.IdleCuller()
    app.load_config_file(str(CULLER_CONFIG))
    assert app.cull_every == 7 and app.timeout == 3600 and app.url == "http://127.0.0.1:8081/hub/api"
    hook = app.cull_arbiter_hook
    assert isinstance(hook, Arbiter)
    res = gpu_resource(data, acc)
    server = {"state": {"pod_name": "teamhub-x", "namespace": "users", "teamhub": {"resource": res, "accelerator": acc}}}
    # Prometheus down: today's rule decides (not idle long enough: kept; idle past the timeout: culled)
    assert asyncio.run(hook(inactive=timedelta(minutes=5), inactive_limit=3600, server=server)) is False
    assert asyncio.run(hook(inactive=timedelta(minutes=61), inactive_limit=3600, server=server)) is True


def test_an_outage_is_one_warning_and_its_end_one_info(caplog):
    data, acc = values_with(prometheusUrl="http://127.0.0.1:9")
    s = culler_settings.build(with_defaults(data), 60, "users")
    arbiter = Arbiter(s, logging.getLogger("test-culler"), environ={})
    server = {"state": {"pod_name": "p", "teamhub": {"resource": gpu_resource(data, acc), "accelerator": acc}}}
    with caplog.at_level(logging.INFO, logger="test-culler"):
        for _ in range(3):
            assert asyncio.run(arbiter(inactive=timedelta(0), inactive_limit=3600, server=server)) is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "does not answer" in warnings[0].getMessage()
    assert arbiter.outage is not None


def test_the_activity_rule_is_the_cullers_own_and_ignores_the_tests_clock(tmp_path):
    """A test moving the hub's clock an hour must not make every server idle (test_usage's hour on a GPU)."""
    clock = tmp_path / "clock"
    clock.write_text("3600")
    arbiter = Arbiter({"idleSeconds": 3600, "prometheus": None}, environ={"TEAMHUB_TEST_CLOCK_FILE": str(clock)})
    assert asyncio.run(arbiter(inactive=timedelta(seconds=1), inactive_limit=3600, server={})) is False
    assert asyncio.run(arbiter(inactive=timedelta(seconds=3600), inactive_limit=3600, server={})) is True
    off = Arbiter({"idleSeconds": 0, "prometheus": None}, environ={})
    assert asyncio.run(off(inactive=timedelta(days=3), inactive_limit=86400, server={})) is False


def problems_of(tmp_path, data):
    return check(load_files([str(written(tmp_path, data))])).problems


def test_values_name_file_and_line_of_what_cannot_work(tmp_path):
    data, acc = values_with(prometheusUrl="http://prometheus.example.org:9090")
    data["catalog"]["accelerators"][acc]["idle"] = {"exporter": "nvidia", "minutes": 10, "warnMinutes": 10}
    found = {(p.level, ".".join(map(str, p.path))): (str(p), p.location.line) for p in problems_of(tmp_path, data)}
    url = found[("error", "gpuMetrics.prometheusUrl")]
    assert "neither an IP address nor a cluster Service name" in url[0] and url[1] > 0
    assert "unknown exporter 'nvidia'" in found[("error", f"catalog.accelerators.{acc}.idle.exporter")][0]
    assert "not less than minutes" in found[("error", f"catalog.accelerators.{acc}.idle.warnMinutes")][0]
    assert "values.yaml:" in url[0]


def test_rules_without_prometheus_are_a_warning_and_the_schema_refuses_nonsense(tmp_path):
    data, acc = values_with()
    problems = problems_of(tmp_path, data)
    assert [p for p in problems if p.level == "warning" and "prometheusUrl is empty" in p.message]
    assert not [p for p in problems if p.level == "error"]
    bad = copy.deepcopy(data)
    bad["catalog"]["accelerators"][acc]["idle"]["belowPercent"] = 120
    bad["gpuMetrics"] = {"prometheusUrl": "prometheus:9090"}
    errors = {".".join(map(str, p.path)) for p in problems_of(tmp_path, bad) if p.level == "error"}
    assert {f"catalog.accelerators.{acc}.idle.belowPercent", "gpuMetrics.prometheusUrl"} <= errors


@pytest.mark.parametrize("url, ip, namespace, port", [
    ("http://prometheus-operated.monitoring.svc:9090", None, "monitoring", 9090),
    ("https://prom.obs.svc.cluster.local/prometheus", None, "obs", 443),
    ("http://10.0.0.5", "10.0.0.5", None, 80),
])
def test_the_policy_target_of_a_url(url, ip, namespace, port):
    t = gpumetrics.target({"prometheusUrl": url})
    assert (t.ip, t.namespace, t.port) == (ip, namespace, port)
    assert gpumetrics.target({"prometheusUrl": url, "port": 9091}).port == 9091
    assert gpumetrics.target({"prometheusUrl": ""}) is None


def test_env_is_untouched():
    assert culler_settings.ENV not in os.environ  # monkeypatched only inside its test


def test_the_pages_warn_then_say_why_and_the_end_reason_is_gpu_idle(monkeypatch):
    """hub/gpuwatch.py from the hub's last verdicts: the warning row, `gpu-idle` for a culler stop of a server
    judged by its GPU (`idle-cull` when its GPU use is unknown), and the sentence after the stop."""
    from types import SimpleNamespace

    from teamhub.catalog.loader import load_or_raise
    from teamhub.hub import gpuwatch, serverlist

    data, acc = values_with(prometheusUrl="http://prometheus.monitoring.svc:9090")
    res = gpu_resource(data, acc)
    s = culler_settings.build(with_defaults(data), 60, "users")
    watch = gpuwatch.GpuWatch(s)
    monkeypatch.setattr(gpuwatch, "_watch", watch)
    user = SimpleNamespace(name="local:alice", server_url=lambda n: "/user/local:alice/", spawners={})
    sp = SimpleNamespace(name="", teamhub_key="local:alice/", teamhub_info={"resource": res, "accelerator": acc},
                         pending=None, ready=True, active=True, user=user)
    monkeypatch.setattr(gpuwatch, "_ENDS", {})
    catalog = load_or_raise([VALUES]).catalog
    assert serverlist.row(catalog, sp)["notice"] == ""  # nothing known yet
    watch.verdicts[sp.teamhub_key] = gpu.Verdict(True, 1500, 1800, 300)
    assert serverlist.row(catalog, sp)["notice"] == ("Your GPU has been idle for 25 min; this server stops in 5 min "
                                                     "unless it computes")
    assert gpuwatch.stop_reason(sp) == "idle-cull"  # 5 min from its window: not the GPU rule's stop
    watch.verdicts[sp.teamhub_key] = gpu.Verdict(True, 1750, 1800, 300)  # within two culler rounds of it
    assert gpuwatch.stop_reason(sp) == "gpu-idle"
    watch.verdicts.clear()  # Prometheus down or no series: the culler used today's rule
    assert gpuwatch.stop_reason(sp) == "idle-cull"
    watch.verdicts[sp.teamhub_key] = gpu.Verdict(True, 1800, 1800, 300)
    gpuwatch.remember_end(sp, gpuwatch.stop_reason(sp))
    # JupyterHub drops a stopped server's Spawner object: the owner's next page has none, or a fresh one
    (text,) = serverlist.stopped(user)
    assert text.startswith("Your server was stopped at ") and text.endswith(": its GPU computed nothing for 30 min.")
    user.spawners[""] = SimpleNamespace(active=True)  # started again: the sentence goes
    assert serverlist.stopped(user) == []
    cpu = SimpleNamespace(teamhub_key="local:alice/cpu", teamhub_info={"resource": res, "accelerator": None})
    assert gpuwatch.stop_reason(cpu) == "idle-cull"  # no GPU rule


def test_gpu_idle_reaches_the_records_the_metric_and_totals_by_reason(tmp_path):
    """The end reason as `teamhub usage --by reason`, the admins' page (both totals.query) and the metric read it;
    the metric's count comes back from the database after a hub restart (the ledger's restore)."""
    from teamhub.usage import metrics, store, totals

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    store.migrate(url)
    s = store.Store(url)
    fields = {"server": "local:ann/", "person": "local:ann", "team": "gpu-lab", "resource": "gpu-lab", "accelerator": "strix-halo",
              "gpus": 1, "cpu": 1.0}
    s.close(s.open(NOW, **fields), NOW + 60, "gpu-idle")
    s.close(s.open(NOW, **{**fields, "person": "local:eve", "server": "local:eve/"}), NOW + 90, "idle-cull")
    s.open(NOW, **{**fields, "person": "local:dan", "server": "local:dan/"})
    rows = s.totals(totals.Period(NOW - 10, NOW + 100, NOW + 100), ("reason",))
    assert {r["reason"]: r["sessions"] for r in rows} == {"gpu-idle": 1, "idle-cull": 1, "running": 1}
    assert "gpu-idle" in totals.render(rows, ("reason",), "table")
    collector = metrics.RecordsCollector()
    for ledger_store in (s, store.Store(url)):  # this hub's ledger, and a restarted hub's
        collector.store = ledger_store
        (ends,) = [m for m in collector.collect() if m.name == "teamhub_server_ends"]
        counts = {x.labels["reason"]: x.value for x in ends.samples if x.name.endswith("_total")}
        assert counts == {"gpu-idle": 1, "idle-cull": 1}
    s.dispose()


def test_a_refresh_keeps_the_verdict_of_a_server_being_stopped(monkeypatch):
    """The culler's stop takes a while (the pod is deleted); a refresh meanwhile must not forget why."""
    from types import SimpleNamespace

    from teamhub.hub import gpuwatch

    data, acc = values_with(prometheusUrl="http://127.0.0.1:9")  # nothing answers: the refresh is an outage
    s = culler_settings.build(with_defaults(data), 60, "users")
    watch = gpuwatch.GpuWatch(s)
    info = {"resource": gpu_resource(data, acc), "accelerator": acc}
    stopping = SimpleNamespace(teamhub_key="a/", teamhub_info=info, active=True, pending="stop", pod_name="pa")
    running = SimpleNamespace(teamhub_key="b/", teamhub_info=info, active=True, pending=None, pod_name="pb")
    watch.verdicts = {"a/": gpu.Verdict(True, 1800, 1800, 300), "b/": gpu.Verdict(True, 10, 1800, 300)}
    asyncio.run(watch.refresh([stopping, running]))
    assert watch.down and set(watch.verdicts) == {"a/"}  # b's use is unknown now; a keeps its verdict
    monkeypatch.setattr(gpuwatch, "_watch", watch)
    assert gpuwatch.stop_reason(stopping) == "gpu-idle" and gpuwatch.stop_reason(running) == "idle-cull"


def test_a_culler_stop_the_hub_knew_nothing_about_looks_once_more(monkeypatch):
    """Prometheus answers again and the culler's round comes before the hub's: the hub's last look was the
    outage's. The stop's own look for that pod gives the end reason the culler acted on; one that finds
    nothing leaves `idle-cull`, and a server the hub has a verdict on is not looked at again."""
    from types import SimpleNamespace

    from teamhub.hub import gpuwatch

    data, acc = values_with(prometheusUrl="http://127.0.0.1:9")
    s = culler_settings.build(with_defaults(data), 60, "users")
    watch = gpuwatch.GpuWatch(s)
    monkeypatch.setattr(gpuwatch, "_watch", watch)
    info = {"resource": gpu_resource(data, acc), "accelerator": acc}
    sp = SimpleNamespace(teamhub_key="a/", teamhub_info=info, active=True, pending="stop", pod_name="pa")
    asked = []

    def fetch(prometheus, exporter, namespace, window, now, pod=None):
        asked.append(pod)
        return {"pa": points([0] * 61, step=30.0, end=now)}, 30.0

    monkeypatch.setattr(gpu, "fetch", fetch)
    asyncio.run(gpuwatch.look_before_stop(sp))
    assert asked == ["pa"] and gpuwatch.stop_reason(sp) == "gpu-idle"
    asyncio.run(gpuwatch.look_before_stop(sp))
    assert asked == ["pa"]  # known: no second look
    watch.verdicts.clear()
    monkeypatch.setattr(gpu, "fetch", lambda *a, **k: (_ for _ in ()).throw(gpu.PrometheusUnavailable("refused")))
    asyncio.run(gpuwatch.look_before_stop(sp))
    assert gpuwatch.stop_reason(sp) == "idle-cull"
