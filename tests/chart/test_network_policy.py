"""The chart's NetworkPolicies, judged by np-guard's network-config-analyzer (NCA, requirements-nca.txt), not by
code of ours: the analyzer computes what an enforcing CNI would allow between the rendered workloads, two
user pods exactly as KubeSpawner builds them, the cluster DNS (a kube-dns pod in kube-system) and addresses
outside the cluster. The test only looks NCA's verdicts up (`--connectivity -o txt_no_fw_rules`, one line per
allowed pair). Chart tier: it needs helm and NCA, no control plane.

Rendered for config/values.yaml (user servers may reach the internet), for the example that keeps them off
it (config/examples/chart-postgres-loadbalancer.yaml) and for user servers in their own namespace
(singleuser.namespace, as the GPU queue needs: issue 26), where every peer across the two namespaces must say so."""

from __future__ import annotations

import ipaddress
import re
import subprocess

import pytest
import yaml
from support import CONFIG, ROOT, TOOLS
from test_chart import CHART
from unit.hubhelpers import pod_manifests

RELEASE = "teamhub"

NCA = ROOT / ".venv-nca" / "bin" / "nca"
NS = "hub"
HUB, PROXY, AWAITER = f"{NS}/{RELEASE}-hub", f"{NS}/{RELEASE}-proxy", f"{NS}/{RELEASE}-prepull-awaiter"
DNS = "kube-system/coredns"  # the cluster DNS, labelled as kube-dns and CoreDNS run
FAKE_DNS = f"{NS}/lookalike-dns"  # the same labels in another namespace: not the cluster DNS
INTERNET_DNS = "8.8.8.8"  # a resolver on the internet: port 53 to it would tunnel out of a closed network
PERSON = "203.0.113.7"  # a browser somewhere on the internet
METADATA = "169.254.169.254"  # the cloud's instance metadata (credentials of the node)
PRIVATE = ("10.1.2.3", "172.16.5.4", "192.168.1.10")  # the campus / cloud VPC networks
API_SERVICE, API_ENDPOINT = "10.96.0.1", "10.0.0.10"  # kubernetes.default:443, the API server's own :6443
USERS_NS = "hub-users"
VALUE_SETS = {"default": (CONFIG / "values.yaml",),
              "no-internet": (CONFIG / "examples" / "chart-postgres-loadbalancer.yaml",),
              "users-apart": (CONFIG / "values.yaml", {"singleuser": {"namespace": USERS_NS}}),
              # the user scheduler and user placeholders (issue 30); servers may reach the internet there too
              "packing": (CONFIG / "examples" / "packing-headroom.yaml",)}
INTERNET = ("default", "users-apart", "packing")  # the value sets whose servers may reach the internet
USER_SCHEDULER, PLACEHOLDER = f"{NS}/{RELEASE}-user-scheduler", f"{NS}/{RELEASE}-placeholder-cpu"


def _rendered(values, workdir) -> list[dict]:
    args = []
    for i, v in enumerate(values):
        if isinstance(v, dict):  # an overlay
            (workdir / f"overlay-{i}.yaml").write_text(yaml.safe_dump(v))
            v = workdir / f"overlay-{i}.yaml"
        args += ["-f", str(v)]
    out = subprocess.run([str(TOOLS / "helm"), "template", RELEASE, str(CHART), "-n", NS, *args],
                         capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for d in docs:  # helm template leaves metadata.namespace to the install (objects beside user servers say theirs)
        d["metadata"].setdefault("namespace", NS)
    return docs


def _user_pod(docs: list[dict], username: str, namespace: str = NS) -> dict:
    """A user pod as the hub builds it, with the labels the rendered hub Deployment passes to the hub."""
    (hub,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{RELEASE}-hub"]
    env = {e["name"]: e.get("value") for e in hub["spec"]["template"]["spec"]["containers"][0]["env"]}
    pod, _ = pod_manifests(namespace, f"local:{username}", {"resource": "cpu-small"},
                       environ={"TEAMHUB_USER_POD_LABELS": env["TEAMHUB_USER_POD_LABELS"]})
    pod["metadata"].update(name=username, namespace=namespace)
    return pod


def _dns_pod(namespace: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"k8s-app": "kube-dns"}},
            "spec": {"containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.1",
                                     "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53, "protocol": "TCP"}]}]}}


class Connectivity:
    """NCA's connectivity map: which protocols/ports each source may open to each destination."""

    def __init__(self, report: str):
        self.report = report
        self.allowed: dict[tuple[str, str], list[str]] = {}
        for line in report.splitlines():
            m = re.fullmatch(r"(\S+) => (\S+) : (.+)", line.strip())
            if m:
                src, dst = (re.sub(r"\[\w+\]$", "", e) for e in m.group(1, 2))  # "hub/alice[Pod]" -> "hub/alice"
                self.allowed.setdefault((src, dst), []).append(m.group(3))

    def endpoints(self) -> set[str]:
        return {e for pair in self.allowed for e in pair}

    def conns(self, src: str, dst: str) -> list[str]:
        """NCA's connection sets from src to dst; an address matches the range NCA reports it in."""
        return [c for (s, d), cs in self.allowed.items() for c in cs if _is(src, s) and _is(dst, d)]

    def permits(self, src: str, dst: str, port: int, protocol: str = "TCP") -> bool:
        return any(_covers(c, protocol, port) for c in self.conns(src, dst))


def _is(endpoint: str, reported: str) -> bool:
    if "/" in endpoint:
        return endpoint == reported
    ip = ipaddress.ip_address(endpoint)
    for part in reported.split(","):
        if "-" in part and "/" not in part:
            lo, hi = part.split("-")
            try:
                if ipaddress.ip_address(lo) <= ip <= ipaddress.ip_address(hi):
                    return True
            except ValueError:
                continue
    return False


def _covers(conn: str, protocol: str, port: int) -> bool:
    """Does one of NCA's connection strings ("All connections", "{protocols:TCP, UDP,dst_ports:53,8000-8001}")
    include protocol/port?"""
    if conn.strip() == "All connections":
        return True
    for group in re.findall(r"\{([^}]*)\}", conn):
        m = re.fullmatch(r"protocols:([A-Z, ]+)(?:,dst_ports:([\d,\-]+))?", group.strip())
        assert m, f"an NCA connection this test cannot read: {conn!r}"
        if protocol not in [p.strip() for p in m.group(1).split(",")]:
            continue
        if m.group(2) is None:
            return True
        for item in m.group(2).split(","):
            lo, _, hi = item.partition("-")
            if int(lo) <= port <= int(hi or lo):
                return True
    return False


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def net(request, tmp_path_factory):
    assert NCA.exists(), f"{NCA} is missing: `make .venv-nca/stamp` (make test and make test-chart build it)"
    workdir = tmp_path_factory.mktemp(f"nca-{request.param}")
    docs = _rendered(VALUE_SETS[request.param], workdir)
    users = USERS_NS if request.param == "users-apart" else NS
    resources = workdir / "resources.yaml"
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
                  for n in sorted({NS, users, "kube-system"})]
    resources.write_text(yaml.safe_dump_all([*namespaces, *docs, _user_pod(docs, "alice", users), _user_pod(docs, "bob", users),
                                             _dns_pod("kube-system", "coredns"), _dns_pod(NS, "lookalike-dns")]))
    proc = subprocess.run([str(NCA), "--connectivity", "-r", str(resources), "-o", "txt_no_fw_rules"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "=>" in proc.stdout, f"nca failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    conn = Connectivity(proc.stdout)
    conn.alice, conn.bob = f"{users}/alice", f"{users}/bob"
    assert {HUB, PROXY, conn.alice, conn.bob, AWAITER, DNS} <= conn.endpoints(), proc.stdout  # NCA saw the workloads
    conn.values = request.param
    conn.workloads = {f"{NS}/{d['metadata']['name']}" for d in docs if d["kind"] in ("Deployment", "DaemonSet", "Job")}
    return conn


def test_person_reaches_the_proxy_and_through_it_the_hub_and_their_server(net):
    assert net.permits(PERSON, PROXY, 8000)
    assert not net.permits(PERSON, PROXY, 8001)  # the proxy's API is the hub's only
    assert not net.permits(PERSON, HUB, 8081) and not net.permits(PERSON, net.alice, 8888)
    assert net.permits(PROXY, HUB, 8081) and net.permits(PROXY, net.alice, 8888)
    assert net.permits(HUB, PROXY, 8001)


def test_user_server_reaches_the_hub_api_and_no_other_server(net):
    assert net.permits(net.alice, HUB, 8081)
    assert net.permits(HUB, net.alice, 8888)  # the hub checks a starting server
    assert not net.permits(net.alice, net.bob, 8888) and not net.permits(net.bob, net.alice, 8888)
    assert not net.permits(net.alice, PROXY, 8001)


def test_culler_needs_loopback_the_hub_service_is_closed_to_the_hub(net):
    """Issue 15 item 5. The idle culler runs in the hub pod; through the hub Service it would be a hub -> hub
    connection, which the policies refuse at both ends. So it calls 127.0.0.1:8081 (teamhub/hub/config.py,
    tests/unit/test_quota_and_spawner.py::test_idle_culler_calls_the_hub_on_loopback_in_its_pod): traffic
    inside one pod's network namespace is never subject to NetworkPolicy."""
    assert not net.permits(HUB, HUB, 8081)


def test_hub_reaches_the_kubernetes_api(net):
    assert net.permits(HUB, API_SERVICE, 443) and net.permits(HUB, API_ENDPOINT, 6443)
    assert net.permits(HUB, DNS, 53, "UDP")  # DNS, to find the proxy's API and the peers


def test_user_server_never_reaches_metadata_nor_private_ranges(net):
    for port in (80, 443, 8888):
        assert not net.permits(net.alice, METADATA, port), net.conns(net.alice, METADATA)
        for address in PRIVATE:
            assert not net.permits(net.alice, address, port), (address, net.conns(net.alice, address))
    assert net.permits(net.alice, DNS, 53, "UDP") and net.permits(net.alice, DNS, 53, "TCP")  # DNS still resolves
    # The internet (pip install, git clone) is reachable only where the values allow it.
    assert net.permits(net.alice, "151.101.0.223", 443) == (net.values in INTERNET)


def test_dns_goes_only_to_the_cluster_dns(net):
    """Issue 23 finding 7: port 53 was open to every address, a tunnel out even with internetEgress off."""
    for pod in (net.alice, HUB, PROXY, AWAITER):
        assert net.permits(pod, DNS, 53, "UDP") and net.permits(pod, DNS, 53, "TCP"), pod
        for address in (INTERNET_DNS, PERSON, *PRIVATE):
            # a user server with internet egress reaches every public port anyway (that is the setting)
            internet = pod == net.alice and net.values in INTERNET and address in (INTERNET_DNS, PERSON)
            for protocol in ("UDP", "TCP"):
                assert net.permits(pod, address, 53, protocol) == internet, (pod, address, protocol, net.conns(pod, address))
        assert not net.permits(pod, FAKE_DNS, 53, "UDP"), pod  # the labels alone are not enough
    assert not net.permits(net.alice, DNS, 80)  # only port 53 of the DNS pods


def test_pullers_talk_to_nothing(net):
    pullers = [e for e in net.endpoints() if "puller" in e]
    assert not pullers, [(pair, c) for pair, c in net.allowed.items() if set(pair) & set(pullers)]


def test_prepull_awaiter_reaches_only_dns_and_the_api(net):
    assert not [pair for pair in net.allowed if pair[1] == AWAITER]  # nothing connects to it
    outbound = {c for (s, _), cs in net.allowed.items() if s == AWAITER for c in cs}
    for address in (API_SERVICE, API_ENDPOINT, PERSON, METADATA):
        for port, protocol in ((53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (80, "TCP"), (8081, "TCP"), (5432, "TCP")):
            expected = (port, protocol) in ((443, "TCP"), (6443, "TCP"))
            assert net.permits(AWAITER, address, port, protocol) == expected, (address, port, protocol, outbound)
    assert not net.permits(AWAITER, HUB, 8081) and not net.permits(AWAITER, net.alice, 8888)


def test_user_scheduler_reaches_only_the_api_and_placeholders_nothing(net):
    if net.values != "packing":
        assert not {USER_SCHEDULER, PLACEHOLDER} & net.workloads  # not rendered
        return
    assert {USER_SCHEDULER, PLACEHOLDER} <= net.workloads and USER_SCHEDULER in net.endpoints()
    assert not [pair for pair in net.allowed if pair[1] == USER_SCHEDULER]  # nothing connects to it
    assert PLACEHOLDER not in net.endpoints()  # pause: no connection in or out at all
    assert net.permits(USER_SCHEDULER, API_SERVICE, 443) and net.permits(USER_SCHEDULER, API_ENDPOINT, 6443)
    for address, port, protocol in ((API_SERVICE, 80, "TCP"), (PERSON, 8080, "TCP"), (METADATA, 80, "TCP"),
                                    (DNS, 53, "UDP"), (HUB, 8081, "TCP"), (net.alice, 8888, "TCP")):
        assert not net.permits(USER_SCHEDULER, address, port, protocol), (address, port, protocol)


def test_reader_of_nca_output_fails_closed():
    """The lookup cannot make a denial out of a report it misreads: an unknown form is an error."""
    assert _covers("{protocols:TCP,dst_ports:8000-8001}", "TCP", 8001)
    assert not _covers("{protocols:UDP,dst_ports:53}", "TCP", 53)
    with pytest.raises(AssertionError):
        _covers("{ports:any}", "TCP", 1)
    report = Connectivity("hub/a[Pod] => 0.0.0.0-9.255.255.255,11.0.0.0-255.255.255.255 : All connections")
    assert report.permits("hub/a", "8.8.8.8", 443) and not report.permits("hub/a", "10.0.0.1", 443)
