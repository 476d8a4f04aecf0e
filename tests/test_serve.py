"""``xasml serve``: the analysis step, the result store, the downloads and the web API (in process,
through FastAPI's test client), on real measured files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xasml.errors import SpectrumError
from xasml.serve.analysis import AnalysisOptions, Analyzer, header_numbers
from xasml.serve.export import RESULT_COLUMNS, athena_project_text, result_rows, results_csv
from xasml.serve.store import ResultStore, file_key, finite


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.fixture(scope="module")
def fe2o3(test_data):
    return test_data / "measure" / "Fe2O3_rt_01.xdi"


def test_analysis_of_a_measured_xdi_matches_local_predict(analyzer, fe2o3):
    from xasml.local.predict import predict_files

    r = analyzer.analyze(fe2o3)
    assert r["status"] == "ok" and len(r["spectra"]) == 1
    s = r["spectra"][0]
    assert s["absorbing_element"] == "Fe" and s["edge"] == "K"
    assert abs(s["e0"] - 7125.6) < 0.5 and s["edge_step"] > 0
    c = s["curves"]
    assert len({len(v) for v in c.values()}) == 1 and len(c["energy"]) > 300
    # the pre-edge line meets mu below e0, the flattened spectrum is about 1 above the edge
    e = np.asarray(c["energy"])
    assert abs(np.asarray(c["flat"])[(e > s["e0"] + 50) & (e < s["e0"] + 200)].mean() - 1) < 0.1
    ox = s["answers"]["oxidation"]
    cli = predict_files([fe2o3], "oxidation")[0]  # what `xasml local predict` says
    assert ox["prediction"] == cli["prediction"] and ox["std"] == cli["std"]
    assert 2.3 < ox["prediction"] < 3.3 and ox["out_of_domain"] < 5
    assert s["answers"]["coordination"]["prediction"] == "O:6"
    assert len(s["model_input"]["x"]) == len(s["model_input"]["energy"])
    assert any("no reference foil" in w for w in s["warnings"])
    json.dumps(r, allow_nan=False)  # JSON-ready as it is


def test_editing_e0_changes_the_normalisation_and_the_answer(analyzer, fe2o3):
    base = analyzer.analyze(fe2o3)["spectra"][0]
    r = analyzer.analyze(fe2o3, {"e0": "7115", "nnorm": 1})
    s = r["spectra"][0]
    assert r["options"]["e0"] == 7115.0 and s["e0"] == 7115.0 and s["e0_source"] == "user" and s["nnorm"] == 1
    assert s["edge_step"] != base["edge_step"]
    new, old = s["answers"]["oxidation"]["prediction"], base["answers"]["oxidation"]["prediction"]
    assert new != old and abs(new - old) < 0.5
    assert any("no reference foil" in w for w in s["answers"]["oxidation"]["warnings"])  # kept after the edit
    bad = analyzer.analyze(fe2o3, {"e0": 9000})
    assert bad["status"] == "error" and "e0 = 9000.00 eV is outside the data" in bad["error"]


def test_options_are_checked_field_by_field():
    assert AnalysisOptions.from_dict({"e0": "", "mu": " ln(i0/it) ", "calibrate": "none"}).to_dict()["mu"] == "ln(i0/it)"
    for bad, field in (({"e0": "abc"}, "e0"), ({"nnorm": 7}, "nnorm"), ({"calibrate": "maybe"}, "calibrate")):
        with pytest.raises(SpectrumError) as exc:
            AnalysisOptions.from_dict(bad, "scan.xdi")
        assert exc.value.field == field and str(exc.value).startswith("scan.xdi")
    with pytest.raises(SpectrumError, match="unknown option"):
        AnalysisOptions.from_dict({"e00": 1})


def test_athena_project_gives_one_answer_per_group(analyzer, test_data):
    r = analyzer.analyze(test_data / "io" / "athena" / "cu.prj")
    assert r["status"] == "ok" and [s["label"] for s in r["spectra"]] == ["cu010k.dat", "cu050k.dat", "cu150k.dat"]
    for s in r["spectra"]:
        assert s["absorbing_element"] == "Cu" and s["e0_source"].startswith("Athena")
        assert 0 <= s["answers"]["oxidation"]["prediction"] < 1.5  # Cu foil


@pytest.mark.parametrize("name, where", [("bad_13.xdi", "line 31"), ("bad_16.xdi", "line 30"),
                                         ("bad_18.xdi", "line 8")])
def test_malformed_files_give_one_line_naming_file_and_line(analyzer, test_data, name, where):
    path = test_data / "io" / "xdi" / "baddata" / name
    r = analyzer.analyze(path)
    assert r["status"] == "error" and "\n" not in r["error"]
    assert r["error"].startswith(str(path)) and where in r["error"]


def test_header_numbers_keep_numbers_with_units_only(test_data):
    from xasml.io.reader import read_spectra

    s = read_spectra(test_data / "io" / "xdi" / "CuO_tenorite_13K_01.xdi")[0]
    h = header_numbers(s)
    assert all(isinstance(v, float) and math.isfinite(v) for v in h.values())
    assert not any(k.lower().startswith("column.") for k in h)
    assert "Scan.start_time" not in h  # a date is not a number


def test_store_replaces_by_path_and_keeps_id(tmp_path, fe2o3):
    st = ResultStore(tmp_path / "r.sqlite")
    k = file_key(fe2o3)
    assert k.split(":")[0] == str(fe2o3.stat().st_size) and len(k.split(":")[2]) == 64
    i = st.put("watch", "/a/x.xdi", "x.xdi", k, {"status": "ok", "v": float("nan")})
    assert st.key_of("/a/x.xdi") == k and st.get(i)["result"]["v"] is None
    j = st.put("watch", "/a/x.xdi", "x.xdi", "other", {"status": "error", "error": "bad"})
    assert j == i and st.get(i)["analyses"] == 2 and st.get(i)["status"] == "error" and st.count() == 1
    st.close()
    st2 = ResultStore(tmp_path / "r.sqlite")  # a restart finds it
    assert st2.key_of("/a/x.xdi") == "other"
    assert finite({"a": [1.0, float("inf"), np.float64(2.0)]}) == {"a": [1.0, None, 2.0]}


def test_athena_project_export_reads_back(analyzer, fe2o3, tmp_path):
    from xasml.io.athena import read_athena

    s = analyzer.analyze(fe2o3, {"e0": 7124})["spectra"][0]
    text = athena_project_text([{**{k: s[k] for k in ("label", "e0", "pre1", "pre2", "norm1", "norm2", "nnorm",
                                                      "absorbing_element", "edge")},
                                 "energy": s["curves"]["energy"], "mu": s["curves"]["mu"]}])
    p = tmp_path / "out.prj"
    p.write_text(text)
    back = read_athena(p)[0]
    assert back.absorbing_element == "Fe" and back.edge == "K"
    assert np.allclose(back.energy, s["curves"]["energy"]) and np.allclose(back.mu, s["curves"]["mu"], rtol=1e-6)
    assert back.metadata["athena"]["e0"] == 7124.0 and back.metadata["athena"]["nnorm"] == s["nnorm"]


def test_results_csv_has_one_row_per_spectrum(analyzer, fe2o3, test_data):
    entries = [{"id": 1, "name": "Fe2O3_rt_01.xdi", "origin": "upload", "result": analyzer.analyze(fe2o3)},
               {"id": 2, "name": "bad.xdi", "origin": "watch",
                "result": analyzer.analyze(test_data / "io" / "xdi" / "baddata" / "bad_13.xdi")}]
    rows = result_rows(entries)
    text = results_csv(rows).splitlines()
    assert text[0].split(",")[:len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert len(text) == 3 and ",ok,Fe,K," in text[1] and ",error," in text[2] and "line 31" in text[2]


# -- the web API ---------------------------------------------------------------------------------
@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from xasml.serve.app import create_app
    from xasml.serve.service import ServeConfig, ServeService

    svc = ServeService(ServeConfig(store=tmp_path / "store", max_upload_bytes=100_000, max_uploads=3))
    svc.start(warm=False)
    try:
        with TestClient(create_app(svc)) as c:
            c.service = svc
            yield c
    finally:
        svc.stop()


def test_api_upload_answer_edit_and_downloads(client, fe2o3, test_data):
    from xasml.io.athena import read_athena
    from xasml.io.xdi import read_xdi

    r = client.post("/api/upload", params={"name": "../../etc/Fe2O3_rt_01.xdi"}, content=fe2o3.read_bytes())
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["status"] == "ok" and e["name"] == "Fe2O3_rt_01.xdi"
    stored = client.service.store.get(e["id"])["path"]
    assert stored.startswith(str(client.service.upload_dir)) and "etc" not in stored.split("/")[-1].split("_", 1)[0]
    rows = client.get("/api/rows").json()
    assert rows[0]["oxidation_state"] == e["result"]["spectra"][0]["answers"]["oxidation"]["prediction"]
    r2 = client.post(f"/api/entries/{e['id']}/analyse", json={"e0": 7115}).json()
    assert r2["id"] == e["id"] and r2["result"]["spectra"][0]["e0"] == 7115.0 and r2["analyses"] == 2
    bad = client.post(f"/api/entries/{e['id']}/analyse", json={"e0": "x"})
    assert bad.status_code == 400 and "field 'e0'" in bad.json()["error"]
    xdi = client.get(f"/api/entries/{e['id']}/spectra/0/normalized.xdi")
    assert xdi.status_code == 200
    p = client.service.store_dir / "check.xdi"
    p.write_bytes(xdi.content)
    s = read_xdi(p)
    assert s.kind == "norm" and s.absorbing_element == "Fe"
    prj = client.get(f"/api/entries/{e['id']}/project.prj")
    q = client.service.store_dir / "check.prj"
    q.write_bytes(prj.content)
    assert read_athena(q)[0].metadata["athena"]["e0"] == 7115.0
    csv = client.get("/api/download/results.csv").text.splitlines()
    assert len(csv) == 2 and csv[1].startswith(f"{e['id']},Fe2O3_rt_01.xdi")
    assert json.loads(client.get("/api/download/results.json").text)[0]["id"] == e["id"]
    page = client.get("/").text
    assert "/static/plotly.min.js" in page and "cdn" not in page.lower()
    assert len(client.get("/static/plotly.min.js").content) > 1_000_000
    assert client.get("/static/..%2F..%2Fcli.py").status_code == 404


def test_api_limits_and_bad_files(client, fe2o3, test_data):
    big = client.post("/api/upload", params={"name": "big.xdi"}, content=b"0" * 200_000)
    assert big.status_code == 400 and "upload limit" in big.json()["error"]
    bad = client.post("/api/upload", params={"name": "bad_13.xdi"},
                      content=(test_data / "io" / "xdi" / "baddata" / "bad_13.xdi").read_bytes()).json()
    assert bad["status"] == "error" and bad["result"]["error"].startswith("bad_13.xdi") and "line 31" in bad["result"]["error"]
    assert str(client.service.store_dir) not in bad["result"]["error"]  # the user's name, not the store's
    for _ in range(2):
        assert client.post("/api/upload", params={"name": "a.xdi"}, content=fe2o3.read_bytes()).status_code == 200
    full = client.post("/api/upload", params={"name": "a.xdi"}, content=fe2o3.read_bytes())
    assert full.status_code == 400 and "--max-uploads" in full.json()["error"]
    with pytest.raises(SpectrumError, match="outside the watched folder"):
        client.service.allowed("/etc/passwd")
    series = client.get("/api/series").json()
    assert series["element"] == "Fe" and len(series["rows"]) == 2
    assert series["pca"] is not None and series["domain"] is not None
    assert len(series["domain"]["scans"]) == 2 and len(series["domain"]["training"]) > 10


def test_cli_binds_loopback_by_default():
    from xasml.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8050 and args.watch is None
