"""Latency of ``xasml serve --watch``: from a file written into the watched folder to its answer pushed to the page.

A real ``xasml serve`` process (this checkout's code) watches a temporary folder; a server-sent
events client (what the page's ``EventSource`` receives) listens on ``/api/events``. For each of
``--n`` files (copies of real measured files: the XAS Data Library XDI files of the 3d metals
that have models, and the column files in ``tests/data/io/columns``), one at a time, the
benchmark writes the file (open, write, close), notes the time, and waits for the event that
announces its result; latency = event arrival − end of the write. It includes the watch's
``--settle`` time (a file must be unchanged that long to count as complete; default 0.5 s),
the analysis (read, calibrate, normalise, three models) and the store write. The analysis time
alone (``elapsed_s`` of each result) is reported too. Target: median and p95 under 2 s on 2 cores.

Usage::

    python benchmarks/serve_latency.py [--data-root ../shared/data] [--n 200] [--settle 0.5]
                                       [--out benchmarks/results/serve]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from serve_helpers import checkout_env, free_port, get_json, server_process  # noqa: E402  (one server-start helper)

ELEMENTS = ("Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "V", "Ti")


def _inputs(data_root: Path) -> list[Path]:
    files = []
    for el in ELEMENTS:
        files += sorted((data_root / "experimental" / "xas-data-library" / "data" / el).glob("*.xdi"))
    files += sorted((REPO / "tests" / "data" / "io" / "columns").glob("cuo_*"))
    return files


class _Events(threading.Thread):
    """Reads ``/api/events`` and records the arrival time of each entry event by name."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.arrived: dict[str, tuple[float, dict]] = {}
        self.cond = threading.Condition()
        self.connected = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.request("GET", "/api/events")
        resp = conn.getresponse()
        self.connected.set()
        while True:
            line = resp.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                t = time.perf_counter()
                ev = json.loads(line[6:])
                if ev.get("type") == "entry":
                    with self.cond:
                        self.arrived[ev["name"]] = (t, ev)
                        self.cond.notify_all()

    def wait(self, name: str, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: name in self.arrived, timeout=timeout)
            return self.arrived.get(name, (None,))[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=Path(os.environ.get("XASML_SHARED_DATA", REPO.parent / "shared"
                                                                          / "data")))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "serve")
    args = ap.parse_args(argv)
    sources = _inputs(args.data_root)
    if not sources:
        sys.exit(f"no input files under {args.data_root}")
    work = Path(tempfile.mkdtemp(prefix="xasml-serve-bench-"))
    watch, store = work / "watch", work / "store"
    watch.mkdir()
    port = free_port()
    cmd = [sys.executable, "-m", "xasml.cli", "serve", "--watch", str(watch), "--store", str(store),
           "--port", str(port), "--settle", str(args.settle)]
    t_start = time.perf_counter()
    try:
        with server_process(cmd, f"http://127.0.0.1:{port}/api/status", work / "serve.log", env=checkout_env(),
                            timeout=300):
            startup_s = time.perf_counter() - t_start
            events = _Events(port)
            events.start()
            events.connected.wait(30)
            time.sleep(0.5)
            latencies, names = [], []
            for i in range(args.n):
                src = sources[i % len(sources)]
                name = f"{i:04d}_{src.name}"
                data = src.read_bytes()
                with open(watch / name, "wb") as fh:
                    fh.write(data)
                t_written = time.perf_counter()
                t_event = events.wait(name, timeout=60)
                if t_event is None:
                    print(f"{name}: no result within 60 s", file=sys.stderr)
                    latencies.append(float("inf"))
                else:
                    latencies.append(t_event - t_written)
                names.append(name)
            entries = get_json(f"http://127.0.0.1:{port}/api/download/results.json", timeout=120)
    except RuntimeError as e:  # the server exited or did not answer: the message ends with its log
        sys.exit(str(e))
    lat = np.asarray(latencies)
    by_name = {e["name"]: e for e in entries}
    analysis = np.asarray([by_name[n]["result"]["elapsed_s"] for n in names if n in by_name])
    statuses = [by_name[n]["status"] for n in names if n in by_name]
    result = {
        "what": "xasml serve --watch: write of a file into the watched folder -> its result event on /api/events "
                "(what the page receives), one file at a time; includes the settle time",
        "n_files": int(args.n), "n_sources": len(sources), "settle_s": args.settle,
        "latency_s": {"median": round(float(np.median(lat)), 3), "p95": round(float(np.percentile(lat, 95)), 3),
                      "max": round(float(lat.max()), 3), "min": round(float(lat.min()), 3)},
        "analysis_s": {"median": round(float(np.median(analysis)), 4),
                       "p95": round(float(np.percentile(analysis, 95)), 4), "max": round(float(analysis.max()), 4)},
        "results": {"ok": statuses.count("ok"), "error": statuses.count("error"), "missing": args.n - len(statuses),
                    "errors": [{"file": n, "error": by_name[n]["result"].get("error")} for n in names
                               if n in by_name and by_name[n]["status"] == "error"]},
        "target": "median and p95 latency < 2 s on 2 cores",
        "meets_target": bool(np.median(lat) < 2 and np.percentile(lat, 95) < 2),
        "server_startup_s": round(startup_s, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "per_file": [{"file": n, "latency_s": round(float(v), 3)} for n, v in zip(names, lat)],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "latency.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if k != "per_file"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
