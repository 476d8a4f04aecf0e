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


@pytest.fixture(scope="module")
def cr2o3(test_data):
    """Cr2O3 (Cr III) at 15 K: the Cr model says about 2, the measured standards (which reproduce it) 3."""
    return test_data / "measure" / "cr2o3_15K_001.xdi"


@pytest.fixture(scope="module")
def fe3c(test_data):
    """Cohenite Fe3C (Fe 0): the LCF matches the Fe3C standard, the edge-position line says about 2: FLAGGED."""
    return test_data / "measure" / "Fe3C_rt_01.xdi"


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
    assert ox == cli  # one answer path: the model, the evidence of the standards and the combined answer
    assert 2.3 < ox["prediction"] < 3.3 and ox["out_of_domain"] < 5
    c = ox["combined"]
    assert c["methods"] == ["model", "lcf", "edge_position"] and 2.5 < c["oxidation_state"] < 3.3
    assert 0.05 < c["sigma"] < 1.0 and ox["flagged"] is False and ox["flag_reasons"] == []
    # the spectra behind the evidence, to draw: the best LCF (hematite itself, a library standard) and the nearest
    ec = s["evidence_curves"]
    assert ec["lcf"]["label"] == "1.00 Fe2O3 (hematite)" and len(ec["lcf"]["energy"]) == len(ec["lcf"]["flat"]) > 300
    assert [n["compound"] for n in ec["nearest"]] == [n["compound"] for n in ox["evidence"]["nearest"][:3]]
    lcf_e = np.asarray(ec["lcf"]["energy"])
    page_flat = np.interp(lcf_e, e, np.asarray(s["curves"]["flat"]))  # the fit lies on the spectrum
    assert np.sqrt(np.mean((page_flat - np.asarray(ec["lcf"]["flat"])) ** 2)) < 0.02
    assert s["answers"]["coordination"]["prediction"] == predict_files([fe2o3], "coordination")[0]["prediction"]
    assert len(s["model_input"]["x"]) == len(s["model_input"]["energy"])
    assert any("no reference foil" in w for w in s["warnings"])
    json.dumps(r, allow_nan=False)  # JSON-ready as it is


def test_a_disagreeing_model_is_handled_the_same_on_the_page_and_in_the_shell(analyzer, cr2o3):
    from xasml.local.predict import predict_files

    s = analyzer.analyze(cr2o3)["spectra"][0]
    ox = s["answers"]["oxidation"]
    assert ox == predict_files([cr2o3], "oxidation")[0]
    # the standards reproduce the spectrum (R < 0.005) and say Cr(III); the model says about 2 for this
    # 15 K scan: it is averaged in, σ widens, and the answer is flagged with the gap, the same on the
    # page as in the shell (xasml.references.combine)
    assert ox["evidence"]["lcf"]["best"]["r_factor"] < 0.005
    assert set(ox["combined"]["methods"]) == {"model", "lcf", "edge_position"}
    assert 2.5 < ox["combined"]["oxidation_state"] < 3.5 and ox["combined"]["regime"] == "disagree"
    assert ox["flagged"] and any(r.startswith("the model (") for r in ox["flag_reasons"]), ox["flag_reasons"]
    assert any("the model (" in w for w in s["warnings"])


def test_hematite_environment_is_octahedral(analyzer, fe2o3):
    assert analyzer.analyze(fe2o3)["spectra"][0]["answers"]["coordination"]["prediction"] == "O:6"


def test_flagged_answer_is_the_same_on_the_page_and_in_the_shell(analyzer, fe3c):
    from xasml.local.predict import predict_files

    s = analyzer.analyze(fe3c)["spectra"][0]
    ox = s["answers"]["oxidation"]
    assert ox == predict_files([fe3c], "oxidation")[0]
    # cohenite: the LCF matches Fe3C (0), the edge-position line says about 2: flagged, with the reasons
    assert ox["flagged"] is True and any("edge position" in r for r in ox["flag_reasons"])
    assert ox["combined"]["oxidation_state"] < 1.0 and "lcf" in ox["combined"]["methods"]
    assert all(r in "\n".join(s["warnings"]) for r in ox["flag_reasons"])


def test_editing_e0_changes_the_normalisation_and_the_answer(analyzer, fe2o3):
    base = analyzer.analyze(fe2o3)["spectra"][0]
    r = analyzer.analyze(fe2o3, {"e0": "7115", "nnorm": 1})
    s = r["spectra"][0]
    assert r["options"]["e0"] == 7115.0 and s["e0"] == 7115.0 and s["e0_source"] == "user" and s["nnorm"] == 1
    assert s["edge_step"] != base["edge_step"]
    new, old = s["answers"]["oxidation"]["prediction"], base["answers"]["oxidation"]["prediction"]
    assert new != old and abs(new - old) < 0.5
    assert any("no reference foil" in w for w in s["answers"]["oxidation"]["warnings"])  # kept after the edit
    # the edited spectrum gets the evidence and the combined answer too, compared at the user's e0
    ox, ox0 = s["answers"]["oxidation"], base["answers"]["oxidation"]
    assert ox["combined"]["oxidation_state"] is not None and ox["combined"] != ox0["combined"]
    assert ox["evidence"]["lcf"]["window"][0] == pytest.approx(7115 - 20.0)
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


def test_user_library_reaches_the_evidence(test_data, fe2o3, tmp_path):
    """A user's standard (``xasml references add``) is evidence on the page, as in the shell."""
    from xasml.local.predict import predict_files
    from xasml.references.library import add_standards

    lib = tmp_path / "mylib"
    add_standards(lib, [fe2o3], "my hematite", 3.0, formula="Fe2O3")
    page = Analyzer(library=[lib]).analyze(fe2o3)["spectra"][0]["answers"]["oxidation"]
    assert page["evidence"]["nearest"][0]["compound"] in ("my hematite", "Fe2O3 (hematite)")
    assert "my hematite" in {n["compound"] for n in page["evidence"]["nearest"]}
    assert page == predict_files([fe2o3], "oxidation", references=[lib])[0]


def test_serve_references_folder_holds_foils_and_a_library(tmp_path, fe2o3, test_data):
    """``xasml serve --references DIR``: the foil scans are calibration choices, DIR's references.parquet
    (``xasml references add``) joins the shipped library as evidence; a broken library stops the start."""
    import shutil

    from xasml.errors import DataError
    from xasml.references.library import add_standards
    from xasml.serve.service import ServeConfig, ServeService

    refs = tmp_path / "refs"
    add_standards(refs, [fe2o3], "my hematite", 3.0)
    shutil.copy(test_data / "io" / "xdi" / "cu_metal_rt.xdi", refs)
    svc = ServeService(ServeConfig(store=tmp_path / "store", references=refs))
    try:
        st = svc.status()
        assert st["references"] == ["cu_metal_rt.xdi"] and st["reference_errors"] == []
        assert st["library"]["user"] == [str(refs.resolve())] and st["library"]["standards"] > 100
        assert "my hematite" in set(svc.analyzer.standards()["compound"])
    finally:
        svc.stop()
    (refs / "references.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="references.parquet: not a readable Parquet reference library"):
        ServeService(ServeConfig(store=tmp_path / "store2", references=refs))


def test_athena_project_gives_one_answer_per_group(analyzer, test_data):
    r = analyzer.analyze(test_data / "io" / "athena" / "cu.prj")
    assert r["status"] == "ok" and [s["label"] for s in r["spectra"]] == ["cu010k.dat", "cu050k.dat", "cu150k.dat"]
    for s in r["spectra"]:
        assert s["absorbing_element"] == "Cu" and s["e0_source"].startswith("Athena")
        assert 0 <= s["answers"]["oxidation"]["prediction"] < 1.5  # Cu foil
        assert s["answers"]["oxidation"]["combined"]["oxidation_state"] < 1.0


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


def test_api_hdf5_and_spec_uploads_and_the_scan_option(client, test_data, tmp_path):
    """HDF5/NeXus scans (made here with h5py from the real X-DAC Fe foil scan) and SPEC files with
    several scans read through read_spectra; the page's scan option picks another scan."""
    from test_beamline_files import _h5_from

    beamline = test_data / "io" / "beamline"
    for layout, name in (("bliss", "foil.h5"), ("nexus", "foil.nxs")):
        h5 = _h5_from(beamline, tmp_path / name, layout)
        e = client.post("/api/upload", params={"name": name}, content=h5.read_bytes()).json()
        assert e["status"] == "ok", e["result"].get("error")
        s = e["result"]["spectra"][0]
        assert (s["absorbing_element"], s["edge"]) == ("Fe", "K") and s["mu_source"] == "ln(i0/it)"
        assert any("choose another with --scan" in w and w.startswith(name) for w in s["warnings"])
        ox = s["answers"]["oxidation"]
        assert ox["prediction"] < 1.0 and ox["combined"]["oxidation_state"] < 1.0  # an Fe foil
        again = client.post(f"/api/entries/{e['id']}/analyse", json={"scan": "1.1"}).json()
        assert again["result"]["spectra"][0]["e0"] == pytest.approx(s["e0"], abs=0.01)
        assert not any("choose another" in w for w in again["result"]["spectra"][0]["warnings"])
        bad = client.post(f"/api/entries/{e['id']}/analyse", json={"scan": "9.1"}).json()
        assert bad["status"] == "error" and "no scan '9.1' in the file: its scans are 1.1, 2.1" in bad["result"]["error"]
    spec = (beamline / "ESRF_SNBL_2013.dat").read_bytes()  # two #S scans, Ge K: no Ge model
    e = client.post("/api/upload", params={"name": "ESRF_SNBL_2013.dat"}, content=spec).json()
    s = e["result"]["spectra"][0]
    assert s["absorbing_element"] == "Ge" and "no oxidation model for Ge" in s["answer_errors"]["oxidation"]
    first = client.post(f"/api/entries/{e['id']}/analyse", json={"scan": "1"}).json()["result"]["spectra"][0]
    assert first["e0"] != s["e0"] or first["curves"]["mu"] != s["curves"]["mu"]


def test_api_athena_failed_groups_each_show_their_error(client, test_data, tmp_path):
    from test_athena import _broken_project

    prj = _broken_project(test_data, tmp_path)
    client.service.config.max_upload_bytes = 2 * prj.stat().st_size  # nine groups: larger than the fixture's limit
    e = client.post("/api/upload", params={"name": "broken.prj"}, content=prj.read_bytes()).json()
    assert e["status"] == "ok"
    errors = {s["label"]: s["error"] for s in e["result"]["spectra"] if "error" in s}
    assert {"bad x", "short y", "grp7"} <= set(errors)
    for label in ("bad x", "short y", "grp7"):
        assert "\n" not in errors[label] and errors[label].startswith("broken.prj")
    assert "@x holds 'abc'" in errors["bad x"] and "612 energies but 607 mu values" in errors["short y"]
    assert "not executed" in errors["grp7"]
    rows = [r for r in client.get("/api/rows").json() if r["entry"] == e["id"]]
    shown = {r["label"]: r for r in rows}
    assert all(shown[k]["status"] == "error" and shown[k]["error"] == errors[k] for k in errors)
    assert shown["cu010k.dat"]["status"] == "ok" and shown["cu010k.dat"]["combined_oxidation_state"] is not None


def test_api_series_combined_values_and_factor_analysis(client, test_data, fe3c):
    e = client.post("/api/upload", params={"name": "cu.prj"},
                    content=(test_data / "io" / "athena" / "cu.prj").read_bytes()).json()
    series = client.get("/api/series", params={"element": "Cu"}).json()
    assert len(series["rows"]) == 3
    for r, s in zip(series["rows"], e["result"]["spectra"]):
        ox = s["answers"]["oxidation"]
        assert r["oxidation_state"] == ox["combined"]["oxidation_state"] and r["combined"] is True
        assert r["oxidation_state_std"] == ox["combined"]["sigma"] and r["model_oxidation_state"] == ox["prediction"]
    f = series["factors"]
    assert f["element"] == "Cu" and f["edge"] == "K" and f["pca"]["spectra"] == ["cu010k.dat", "cu050k.dat", "cu150k.dat"]
    assert 1 <= f["pca"]["n_components"] <= 2 and len(f["pca"]["ind"]) == 2
    assert f["pca"]["ind"][f["pca"]["n_components"] - 1] == min(f["pca"]["ind"])
    assert f["targets"] and f["targets"][0]["compound"] == "Cu metal"  # the foils are copper metal
    client.post("/api/upload", params={"name": "Fe3C.xdi"}, content=fe3c.read_bytes())
    fe = client.get("/api/series", params={"element": "Fe"}).json()
    assert fe["rows"][0]["flagged"] is True and "at least 3 spectra" in fe["factors"]["error"]
    csv = client.get("/api/download/results.csv").text.splitlines()
    head = csv[0].split(",")
    row = dict(zip(head, csv[-1].split(",")))
    assert row["flagged"] == "True" and float(row["combined_oxidation_state"]) < 1.0
