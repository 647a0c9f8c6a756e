"""How fast the fleet overview's queries are on the ``f500`` fleet (500 clusters, 50,000 objects).

The real pipeline in three processes: ``fluxwatch simulate --preset f500``, ``fluxwatch exporter
--per-object not-ready`` (the mode docs/exporter.md recommends for fleets: per-object series
follow failures, aggregates stay complete) watching it, and the real Prometheus scraping the
exporter. Every query of the Fleet overview (``dashboards.build.queries()["fleet"]``, variables
set to All) is then timed against Prometheus's HTTP API:

- instant: the query at now (what tables send), median of 3;
- range: what the other panels (time series, stats, state timelines) send for the last hour,
  240 points. An hour of history cannot be waited for, so Prometheus scrapes every second for
  240 s and the range query spans those 240 s at a 1 s step: the same number of evaluation
  steps and series as one hour at Grafana's 15 s step, with 15x the samples inside each rate
  window (so, if anything, slower).

Prometheus also evaluates the rules of ``fluxwatch alerts build`` (every minute, as shipped):
the overview reads its fleet-wide aggregates from them. Each query's raw form
(``--no-recording-rules``) is timed too, to show what the rules save. Baseline in the same run:
``sum(flux_cluster_resources)``, the raw aggregate behind the headline numbers. Target (issue
7): every panel under 1 s, judged on the kind of query its panel sends; the slowest is named.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

SCRAPE_SECONDS = 240
STEPS = 240
TARGET_SECONDS = 1.0
STARTUP_DEADLINE = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except OSError:
        return 0, b""


def wait_for(what: str, check: Any, deadline: float = STARTUP_DEADLINE) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            raise SystemExit(f"bench/dashboards: timed out waiting for {what}")
        time.sleep(0.5)
    return time.monotonic() - start


def query(api: str, expr: str, **params: str) -> tuple[float, dict[str, Any]]:
    path = "/api/v1/query_range" if "start" in params else "/api/v1/query"
    url = f"{api}{path}?" + urllib.parse.urlencode({"query": expr, **params})
    start = time.perf_counter()
    status, body = get(url, timeout=120)
    took = time.perf_counter() - start
    doc = json.loads(body) if body else {}
    if status != 200 or doc.get("status") != "success":
        raise SystemExit(f"bench/dashboards: Prometheus refused {expr}: {status} {body[:300]!r}")
    return took, doc


def instantiate(expr: str) -> str:
    builtins = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
    return re.sub(r"\$\{?(\w+)\}?", lambda m: builtins.get(m.group(1), ".*"), expr)


def main() -> None:
    from dashboards.build import generate, queries
    from dashboards.settings import DashboardSettings

    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise SystemExit("bench/dashboards: prometheus is not installed (make tools)")
    fluxwatch = str(Path(sys.executable).parent / "fluxwatch")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="fluxwatch-bench-dash-") as tmp:
        work = Path(tmp)
        logs = {name: (work / f"{name}.log").open("wb") for name in ("sim", "exporter", "prom")}
        try:
            sim_port, exp_port, prom_port = free_port(), free_port(), free_port()
            kubeconfig = work / "kubeconfig"
            procs.append(
                subprocess.Popen(
                    [fluxwatch, "simulate", "--preset", "f500", "--listen", f"127.0.0.1:{sim_port}",
                     "--state-dir", str(work / "sim"), "--kubeconfig-out", str(kubeconfig)],
                    stdout=logs["sim"], stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            built = wait_for("the simulator", kubeconfig.exists)
            exporter = f"127.0.0.1:{exp_port}"
            procs.append(
                subprocess.Popen(
                    [fluxwatch, "exporter", "--kubeconfig", str(kubeconfig), "--per-object",
                     "not-ready", "--listen", exporter, "--log-level", "warning"],
                    stdout=logs["exporter"], stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            synced = wait_for(
                "the exporter's first sync", lambda: get(f"http://{exporter}/readyz")[0] == 200
            )
            _, body = get(f"http://{exporter}/metrics")
            series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
            print(f"f500 simulator built in {built:.1f} s; exporter synced in {synced:.1f} s")
            print(
                f"exporter body: {len(body) / 2**20:.1f} MiB, {series:,} samples "
                "(--per-object not-ready)"
            )

            rules = work / "rules.yaml"
            subprocess.run(
                [fluxwatch, "alerts", "build", "--out", str(rules), "--format", "rules"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            config = work / "prometheus.yml"
            config.write_text(
                f"rule_files: ['{rules}']\n"
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: fluxwatch\n    static_configs:\n"
                f"      - targets: ['{exporter}']\n"
            )
            procs.append(
                subprocess.Popen(
                    [prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{prom_port}"],
                    stdout=logs["prom"], stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            api = f"http://127.0.0.1:{prom_port}"

            def scrapes() -> float:
                status, raw = get(f"{api}/api/v1/query?query=" + urllib.parse.quote(
                    'count_over_time(up{job="fluxwatch"}[10m])'))  # fmt: skip
                if status != 200:
                    return 0.0
                result = json.loads(raw)["data"]["result"]
                return float(result[0]["value"][1]) if result else 0.0

            wait_for(
                f"{SCRAPE_SECONDS} scrapes",
                lambda: scrapes() >= SCRAPE_SECONDS,
                3 * SCRAPE_SECONDS + 60,
            )
            _, doc = query(api, 'max_over_time(scrape_duration_seconds{job="fluxwatch"}[10m])')
            _, up = query(api, 'avg_over_time(up{job="fluxwatch"}[10m])')
            print(
                f"Prometheus scraped every 1 s for {SCRAPE_SECONDS} s: slowest scrape "
                f"{float(doc['data']['result'][0]['value'][1]):.2f} s, "
                f"up {float(up['data']['result'][0]['value'][1]) * 100:.0f}% of scrapes"
            )
            end = time.time()
            window = {"start": f"{end - STEPS:.0f}", "end": f"{end:.0f}", "step": "1"}

            def timed(expr: str) -> tuple[float, float, int]:
                instant = statistics.median(query(api, expr)[0] for _ in range(3))
                took, doc = query(api, expr, **window)
                return instant, took, len(doc["data"]["result"])

            timed("sum(flux_cluster_resources)")  # warm-up: the first query pays for cold caches
            base_instant, base_range, _ = timed("sum(flux_cluster_resources)")
            print(f"baseline sum(flux_cluster_resources): instant {base_instant * 1000:.0f} ms, "
                  f"range {base_range * 1000:.0f} ms")  # fmt: skip
            print(
                f"{'fleet overview query':24} {'panel':>7} {'instant':>9} {'range':>9} "
                f"{'x base':>7} {'series':>6}"
            )
            rows = []
            raw = queries(DashboardSettings(recording_rules=False))["fleet"]
            # What Grafana sends: tables ask instant queries, the other panels range queries.
            sent_instant = {
                t["expr"]: bool(t["instant"])
                for p in generate()["fluxwatch-fleet"]["panels"]
                for t in p.get("targets", [])
            }
            for key, expr in queries()["fleet"].items():
                instant, ranged, n = timed(instantiate(expr))
                panel = instant if sent_instant[expr] else ranged
                rows.append((panel, key, instant, ranged, n))
                ratio = ranged / base_range if base_range else float("nan")
                line = (
                    f"{key:24} {'instant' if sent_instant[expr] else 'range':>7} "
                    f"{instant * 1000:7.0f}ms {ranged * 1000:7.0f}ms {ratio:6.2f}x {n:6}"
                )
                if raw[key] != expr:
                    raw_instant, raw_range, _ = timed(instantiate(raw[key]))
                    line += f"   raw: {raw_instant * 1000:.0f} ms / {raw_range * 1000:.0f} ms"
                print(line)
            slowest = max(rows)
            verdict = "PASS" if slowest[0] < TARGET_SECONDS else "FAIL"
            print(
                f"slowest panel query: {slowest[1]} at {slowest[0] * 1000:.0f} ms "
                f"(target < {TARGET_SECONDS * 1000:.0f} ms per panel: {verdict})"
            )
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in reversed(procs):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for log in logs.values():
                log.close()
            if os.environ.get("FLUXWATCH_BENCH_KEEP_LOGS"):
                for name in ("sim", "exporter", "prom"):
                    print((work / f"{name}.log").read_text(errors="replace")[-2000:])


if __name__ == "__main__":
    main()
