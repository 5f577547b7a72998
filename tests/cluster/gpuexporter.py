"""GPU use for tests and benchmarks (issue 28): a small exporter serving the series NVIDIA's dcgm-exporter and
AMD's device-metrics-exporter serve, with the utilisation the test sets, and a real Prometheus scraping it.

Reusable outside the cluster tier (benchmarks/class_day.py puts tests/ on sys.path, as the other benchmarks do).

    exporter = GpuExporter().start()
    exporter.dcgm("users-ns", "jupyter-alice", 90)             # DCGM_FI_DEV_GPU_UTIL{namespace, pod, container, ...} 90
    exporter.amd("users-ns", "jupyter-bob", 0, partition="cpx")  # gpu_gfx_activity{..., gpu_compute_partition_type="cpx"} 0
    prom = Prometheus(workdir, [exporter.target]).start()      # scrapes every second; prom.url for gpuMetrics.prometheusUrl
    prom.wait_for_sample('DCGM_FI_DEV_GPU_UTIL{pod="jupyter-alice"}', 90)
    prom.stop(); prom.start()                                  # an outage, on the same port and storage
    exporter.forget("users-ns", "jupyter-alice")               # the pod's series end (Prometheus marks them stale)

Series shapes, as the exporters label them in Kubernetes (pod attribution on):
- dcgm-exporter: `DCGM_FI_DEV_GPU_UTIL` (0-100) and `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (0-1), labels `gpu`, `UUID`,
  `device`, `modelName`, `Hostname`, `DCGM_FI_DRIVER_VERSION`, `namespace`, `pod`, `container`.
- AMD device-metrics-exporter: `gpu_gfx_activity` (0-100), labels `gpu_id`, `serial_number`, `card_model`,
  `hostname`, `gpu_partition_id`, `gpu_compute_partition_type`, `gpu_memory_partition_type`, `namespace`,
  `pod`, `container`. For a partitioned GPU it reports activity for partition 0 only (`gpu_partition_id="0"`),
  which the test reproduces with `amd(..., partition=...)`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support import TOOLS, wait_for

SCRAPE_SECONDS = 1  # the tests' windows are tens of seconds: a point every second
DCGM_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
AMD_ACTIVITY = "gpu_gfx_activity"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class GpuExporter:
    """An HTTP /metrics endpoint on loopback. One series per (exporter kind, namespace, pod); the value is what
    the test last set. Thread-safe: the test sets values while Prometheus scrapes."""

    def __init__(self, host: str = "127.0.0.1", hostname: str = "gpu-node-1"):
        self.host, self.hostname = host, hostname
        self._series: dict[tuple, tuple[dict, dict]] = {}  # (kind, namespace, pod) -> (labels by metric, values by metric)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.scrapes = 0

    # --- what the test sets -------------------------------------------------------------------------
    def dcgm(self, namespace: str, pod: str, percent: float, gpu: int = 0, container: str = "notebook",
             model: str = "NVIDIA L40S") -> None:
        """dcgm-exporter's series for one GPU of the pod: utilisation in percent (and the same as a 0-1 ratio)."""
        labels = {"gpu": str(gpu), "UUID": f"GPU-{zlib.crc32(f'{namespace}/{pod}/{gpu}'.encode()):010d}", "device": f"nvidia{gpu}",
                  "modelName": model, "Hostname": self.hostname, "DCGM_FI_DRIVER_VERSION": "570.124.06",
                  "container": container, "namespace": namespace, "pod": pod}
        self._set(("dcgm", namespace, pod), {DCGM_UTIL: labels, DCGM_ACTIVE: labels},
                  {DCGM_UTIL: float(percent), DCGM_ACTIVE: float(percent) / 100})

    def amd(self, namespace: str, pod: str, percent: float, gpu: int = 0, partition: str = "spx", partition_id: int = 0,
            container: str = "notebook", model: str = "AMD Instinct MI300X") -> None:
        """device-metrics-exporter's series for one GPU (or, partitioned, partition `partition_id`) of the pod."""
        labels = {"gpu_id": str(gpu), "serial_number": f"692251001{gpu:03d}", "card_model": model, "card_series": model,
                  "hostname": self.hostname, "gpu_partition_id": str(partition_id),
                  "gpu_compute_partition_type": partition, "gpu_memory_partition_type": "nps1",
                  "container": container, "namespace": namespace, "pod": pod}
        self._set(("amd", namespace, pod), {AMD_ACTIVITY: labels}, {AMD_ACTIVITY: float(percent)})

    def forget(self, namespace: str, pod: str) -> None:
        """The pod is gone: its series are no longer served."""
        with self._lock:
            for kind in ("dcgm", "amd"):
                self._series.pop((kind, namespace, pod), None)

    def _set(self, key: tuple, labels: dict, values: dict) -> None:
        with self._lock:
            self._series[key] = (labels, values)

    # --- serving ------------------------------------------------------------------------------------
    def text(self) -> str:
        """The exposition text (Prometheus 0.0.4), families in a fixed order."""
        families = {DCGM_UTIL: ("gauge", "GPU utilization (in %)."), DCGM_ACTIVE: ("gauge", "Ratio of time the graphics engine is active."),
                    AMD_ACTIVITY: ("gauge", "Graphics engine activity (in %).")}
        with self._lock:
            series = list(self._series.values())
        out = []
        for metric, (kind, help_text) in families.items():
            lines = [f"{metric}{{{','.join(f'{k}={chr(34)}{_escape(v)}{chr(34)}' for k, v in labels[metric].items())}}} {values[metric]:g}"
                     for labels, values in series if metric in values]
            if lines:
                out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", *sorted(lines)]
        return "\n".join(out) + "\n"

    def start(self) -> GpuExporter:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.text().encode()
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: Prometheus scrapes every second
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def target(self) -> str:
        assert self._server is not None, "start() first"
        return f"{self.host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def prometheus_binary() -> Path:
    """scripts/setup.sh builds it into .tools/bin; else the first `prometheus` on PATH."""
    built = TOOLS / "prometheus"
    found = built if built.exists() else (Path(p) if (p := shutil.which("prometheus")) else None)
    if found is None:
        raise FileNotFoundError(f"no prometheus in {built.parent} or on PATH: run scripts/setup.sh")
    return found


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Prometheus:
    """A real Prometheus (its own binary, pinned in scripts/setup.sh) scraping `targets` every SCRAPE_SECONDS,
    keeping the exporters' labels (honor_labels, as dcgm-exporter's ServiceMonitor does). `stop()` then
    `start()` is an outage: the same port and storage afterwards."""

    def __init__(self, workdir: Path, targets: list[str], host: str = "127.0.0.1", port: int | None = None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port or _free_port(host)
        self.targets = list(targets)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> str:
        return json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "scrape_timeout": f"{SCRAPE_SECONDS}s",
                       "evaluation_interval": "15s"},
            "scrape_configs": [{"job_name": "gpu-exporters", "honor_labels": True,
                                "static_configs": [{"targets": self.targets}]}],
        }, indent=1)

    def start(self, timeout: float = 60) -> Prometheus:
        (self.dir / "prometheus.yml").write_text(self.config())
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [str(prometheus_binary()), f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}", "--storage.tsdb.retention.time=1d",
             f"--web.listen-address={self.host}:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        wait_for(self._ready, f"prometheus ready (log {self.log_path})", timeout)
        wait_for(self._answers(lambda: (up := self.values("up")) and len(up) == len(self.targets) and set(up.values()) == {1}),
                 "every target scraped", timeout)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(self, promql: str) -> list[dict]:
        """An instant query's result vector."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 (loopback)
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def values(self, promql: str, by: str = "instance") -> dict:
        """{label `by`: value} of an instant query."""
        return {item["metric"].get(by, ""): float(item["value"][1]) for item in self.query(promql)}

    def wait_for_sample(self, promql: str, value: float, timeout: float = 30) -> None:
        """Until the newest sample of every series `promql` selects (at least one) is `value`."""
        wait_for(self._answers(lambda: (got := [float(i["value"][1]) for i in self.query(promql)]) and set(got) == {value}),
                 f"{promql} == {value:g}", timeout)

    def _ready(self) -> bool:
        """/-/ready answers 200; a Prometheus that exited fails at once with its log."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:  # noqa: S310 (loopback)
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    @staticmethod
    def _answers(check):
        """`check`, false while Prometheus does not answer."""
        def checked():
            try:
                return check()
            except OSError:  # URLError too
                return False
        return checked


__all__ = ["GpuExporter", "Prometheus", "prometheus_binary"]
