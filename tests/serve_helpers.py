"""Helpers of the serve tests: a real ``xasml serve`` process on a free loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 10):
    """The JSON body of a GET of ``url``."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def checkout_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that runs this checkout's code on one thread per library."""
    return dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)


@contextmanager
def server_process(cmd: list[str], ready_url: str, log_path: Path, *, env: dict[str, str] | None = None,
                   cwd: Path | None = None, timeout: float = 120,
                   what: str = "xasml serve") -> Iterator[subprocess.Popen]:
    """Start the server ``cmd`` (output to ``log_path``), wait until ``ready_url`` answers; yield the process.

    Raises :class:`RuntimeError` (with the end of the log) when the process exits before it answers or
    does not answer within ``timeout`` seconds. The process is always stopped (terminate, then kill)
    when the block ends. One helper for the serve tests, the Tiled test and ``benchmarks/serve_latency.py``.
    """
    log_path = Path(log_path)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            t0 = time.monotonic()
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what} exited with {proc.returncode}: "
                                       f"{log_path.read_text()[-2000:]}")
                try:
                    get_json(ready_url, timeout=2)
                    break
                except OSError:
                    if time.monotonic() - t0 > timeout:
                        raise RuntimeError(f"{what} did not answer {ready_url} in "
                                           f"{timeout:g} s: {log_path.read_text()[-2000:]}")
                    time.sleep(0.3)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def serve_process(store: Path, *args: str, elements=("Fe",), timeout: float = 120):
    """Run ``xasml serve`` (this checkout's code) on 127.0.0.1 and a free port; yield its base URL.

    The process is always stopped (terminate, then kill) when the block ends.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "xasml.cli", "serve", "--store", str(store), "--port", str(port),
           "--elements", *elements, *args]
    url = f"http://127.0.0.1:{port}"
    with server_process(cmd, url + "/api/status", store.parent / f"serve-{port}.log", env=checkout_env(),
                        timeout=timeout):
        yield url


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate()`` until it returns a true value (returned), or fail after ``timeout`` s."""
    t0 = time.time()
    while True:
        v = predicate()
        if v:
            return v
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
