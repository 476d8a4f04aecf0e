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

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


@contextmanager
def serve_process(store: Path, *args: str, elements=("Fe",), timeout: float = 120):
    """Run ``xasml serve`` (this checkout's code) on 127.0.0.1 and a free port; yield its base URL.

    The process is always stopped (terminate, then kill) when the block ends.
    """
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "xasml.cli", "serve", "--store", str(store), "--port", str(port),
           "--elements", *elements, *args]
    log = open(store.parent / f"serve-{port}.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"xasml serve exited with {proc.returncode}: "
                                   f"{(store.parent / f'serve-{port}.log').read_text()[-2000:]}")
            try:
                get_json(url + "/api/status", timeout=2)
                break
            except OSError:
                if time.time() - t0 > timeout:
                    raise RuntimeError("xasml serve did not start in time")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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
