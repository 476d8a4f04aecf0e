"""The Tiled feed of ``xasml serve``: a scan written to a local Tiled server (``tiled serve catalog
--temp``, started by the test on 127.0.0.1 with an API key) appears on the page with its answer."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from serve_helpers import free_port, get_json, serve_process, server_process, wait_for

pytest.importorskip("tiled.client", reason="tiled client not installed (pip install 'xasml[serve]')")
API_KEY = "xasmltestkey0123"


@pytest.fixture
def tiled_server(tmp_path):
    exe = shutil.which("tiled") or str(Path(sys.executable).parent / "tiled")
    if not Path(exe).exists():
        pytest.skip("the tiled server is not installed (pip install 'tiled[server]')")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [exe, "serve", "catalog", "--temp", "--host", "127.0.0.1", "--port", str(port), "--api-key", API_KEY]
    with server_process(cmd, url + "/api/v1/", tmp_path / "tiled.log", cwd=tmp_path, timeout=90, what="tiled serve",
                        env=dict(os.environ, TILED_SINGLE_USER_API_KEY=API_KEY)):
        yield url


def test_tiled_run_appears_with_its_answer(tiled_server, tmp_path, test_data):
    import pandas as pd
    from tiled.client import from_uri

    from xasml.io.xdi import read_xdi_table

    xdi = read_xdi_table(test_data / "measure" / "Fe2O3_rt_01.xdi")  # a real Fe2O3 transmission scan
    table = pd.DataFrame({"energy": xdi.data["energy"], "i0": xdi.data["i0"], "it": xdi.data["itrans"]})
    client = from_uri(tiled_server, api_key=API_KEY)
    with serve_process(tmp_path / "store", "--tiled", tiled_server, "--tiled-api-key", API_KEY) as url:
        client.write_table(table, key="fe2o3_scan_0001", metadata={"element": "Fe", "edge": "K",
                                                                   "sample": "Fe2O3", "temperature": 295.0})
        rows = wait_for(lambda: [r for r in get_json(url + "/api/rows") if r["name"] == "fe2o3_scan_0001"], 90,
                        interval=0.5, what="the Tiled run on the page")
        r = rows[0]
        assert r["origin"] == "tiled" and r["status"] == "ok", r.get("error")
        assert r["absorbing_element"] == "Fe" and 2.3 < r["oxidation_state"] < 3.3 and r["oxidation_state_std"] > 0
        assert r["header"]["Tiled.temperature"] == 295.0
        # a run without absorption channels shows its one-line error in the status, the server goes on
        client.write_table(pd.DataFrame({"energy": xdi.data["energy"]}), key="bad_run", metadata={})
        client.write_table(table, key="fe2o3_scan_0002", metadata={"element": "Fe", "edge": "K"})
        wait_for(lambda: any(r["name"] == "fe2o3_scan_0002" for r in get_json(url + "/api/rows")), 90,
                 interval=0.5, what="the second run")
        assert get_json(url + "/api/status")["tiled"] == tiled_server
