"""``xasml topology run | predict | build`` end to end on real data (fast settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xasml.cli import main
from xasml.datasets.format import read_dataset
from xasml.datasets.topology import write_topology_dataset
from xasml.topology.run import BUNDLED_DATASET, BUNDLED_MODEL

TINY = "topology/feff10"


def _json_out(capsys) -> dict:
    out = capsys.readouterr().out
    obj = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert out.strip().startswith("{") and out.strip().endswith("}")
    return obj


def test_predict_json_on_xmu_files_of_test_split_compound(test_data, capsys):
    # amcsd-10838 (SnSe, Pnma-like sg 63, trivial) is in the test split of the shipped model's run
    folder = test_data / TINY / "FEFF10" / "amcsd-10838"
    files = sorted(str(p) for p in folder.glob("FEFF-XANES/*/xmu.dat"))
    assert main(["topology", "predict", "--json", *files]) == 0
    res = _json_out(capsys)
    assert {"probability", "topological", "elements"} <= set(res)
    assert 0 <= res["probability"] <= 1 and isinstance(res["topological"], bool)
    assert res["elements"] == ["Se", "Sn"]
    assert res["topological"] == (res["probability"] >= res["threshold"])
    # the compound folder (multiplicities from material.json) gives the same answer here (one site each)
    assert main(["topology", "predict", "--json", str(folder)]) == 0
    res2 = _json_out(capsys)
    assert res2["probability"] == pytest.approx(res["probability"], abs=1e-6)
    # a subset of the edges still predicts
    assert main(["topology", "predict", "--json", files[0]]) == 0
    assert _json_out(capsys)["elements"] == ["Sn"]


def test_predict_measured_xdi_records_preprocessing(test_data, capsys):
    xdi = test_data / "topology" / "Cu2S_13K_01.xdi"
    assert main(["topology", "predict", "--json", str(xdi)]) == 0
    res = _json_out(capsys)
    assert res["elements"] == ["Cu"]
    rec = res["inputs"][0]
    assert rec["kind"] == "measured"
    pp = rec["preprocessing"]
    assert {"a1", "a2", "a3", "shift_eV", "pre_edge_slope"} <= set(pp)
    assert 8970 < pp["a3"] < 9000  # Cu K edge near 8979 eV
    assert abs(pp["shift_eV"]) < 30


def test_predict_errors_are_clear(test_data, tmp_path, capsys):
    assert main(["topology", "predict", str(tmp_path / "missing.dat")]) == 2
    assert "file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["topology", "predict"])


def test_build_cli_on_tiny_folder(test_data, tmp_path, capsys):
    out = tmp_path / "tiny.parquet"
    assert main(["topology", "build", "--data", str(test_data / TINY), "--out", str(out), "--quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["compounds"] == 10 and info["site_spectra"] == 16
    frame, meta = read_dataset(out, kind="topology")
    assert {"subclass", "topological", "formula", "sg"} <= set(frame.columns)
    assert "Materiae" in meta["attribution"]


def test_run_end_to_end_tiny(tmp_path, capsys, test_data):
    """The whole run (all six models, resolution study, report) on 70 real compounds, few epochs."""
    frame, _ = read_dataset(BUNDLED_DATASET, kind="topology")
    ids = frame["material_id"].drop_duplicates().sample(70, random_state=1)
    sub = frame[frame["material_id"].isin(set(ids))].reset_index(drop=True)
    data = write_topology_dataset(tmp_path / "sub.parquet", sub)
    cfg = tmp_path / "fast.json"
    cfg.write_text(json.dumps({"network": {"epochs": 3, "patience": None, "spectral_hidden": 32,
                                           "hidden": [32, 16]},
                               "resolution": {"delta_e": [0.28, 2.0]}, "report": {"pca_elements": 1}}))
    out = tmp_path / "run"
    assert main(["topology", "run", "--data", str(data), "--out", str(out), "--seed", "2", "--config", str(cfg),
                 "--quiet", "--threads", "1"]) == 0
    for f in ("config.json", "run.json", "splits.json", "metrics.json", "report/report.md", "report/roc_test.png"):
        assert (out / f).exists(), f
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 2 and config["network"]["epochs"] == 3 and config["grid"]["n_points"] == 200
    run = json.loads((out / "run.json").read_text())
    assert run["xasml_version"] and len(run["data_fingerprint"]) == 64
    splits = json.loads((out / "splits.json").read_text())
    allids = splits["train"] + splits["val"] + splits["test"]
    assert len(allids) == len(set(allids)) == 70
    metrics = json.loads((out / "metrics.json").read_text())
    names = {"topology_net", "nn_type", "svm_type", "svm_type_aug", "svm_spectra", "pca_kmeans"}
    assert set(metrics["models"]) == names
    for m in metrics["models"].values():
        t = m["splits"]["test"]
        assert 0 <= t["per_class"]["topological"]["f1"] <= 1 and "per_element" in m
    assert len(metrics["resolution"]["models"]["topology_net"]["f1_topological"]) == 2
    report = (out / "report" / "report.md").read_text()
    assert "| topology_net |" in report and "Energy resolution" in report
    for name in names:
        assert (out / "models" / name / "weights.safetensors").exists()
    # the run's network predicts through --model (run folder), on compounds with a known element
    known = json.loads((out / "models" / "topology_net" / "topology.json").read_text())["featurizer"]["grids"]
    folders = [f for f in sorted((test_data / TINY / "FEFF10").iterdir())
               if any(p.parent.name.split("_")[1] in known for p in f.glob("FEFF-XANES/*/xmu.dat"))]
    assert folders
    capsys.readouterr()
    assert main(["topology", "predict", "--json", "--model", str(out), str(folders[0])]) == 0
    res = _json_out(capsys)
    assert res["model_name"] == "topology_net" and set(res["elements"]) <= set(known)


def test_run_rejects_bad_config(tmp_path, capsys):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"network": {"epochz": 3}}))
    assert main(["topology", "run", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "epochz" in capsys.readouterr().err


def test_show_config(capsys):
    assert main(["topology", "run", "--show-config"]) == 0
    out = capsys.readouterr().out
    assert "network.lr = 0.0001" in out and "grid.width = 56.0" in out


def test_bundled_model_is_complete():
    meta = json.loads((BUNDLED_MODEL / "topology.json").read_text())
    assert meta["model"] == "topology_net"
    grids = meta["featurizer"]["grids"]
    assert len(grids) >= 40 and all(g["n_points"] == 200 for g in grids.values())
    assert np.isfinite(np.asarray(meta["featurizer"]["reference"]["Cu"])).all()
