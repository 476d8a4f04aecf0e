"""Forward model: broadening, spectra metrics on hand-made spectra, readers, and a small
end-to-end train / save / load / predict on real Cu crystal data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xasml.errors import DataError, SpectrumError
from xasml.evaluation.spectra_metrics import (error_summary, find_spectrum_peaks, match_peaks, peak_metrics,
                                              percentage_error)
from xasml.preprocess.broaden import (Broadening, arctan_width, core_hole_width, lorentzian_broaden,
                                      lorentzian_kernel)

CU = Path(__file__).resolve().parent / "data" / "forward" / "cu"


# -- broadening ----------------------------------------------------------------------------------
def test_core_hole_width_from_xraydb():
    assert core_hole_width("Fe", "K") == pytest.approx(1.25, abs=0.05)
    assert core_hole_width("Cu", "K") == pytest.approx(1.55, abs=0.05)
    with pytest.raises(DataError):
        core_hole_width("Xx", "K")


def test_lorentzian_kernel_conserves_and_has_right_width():
    e = np.linspace(7000, 7100, 1001)            # 0.1 eV step
    K = lorentzian_kernel(e, 2.0)
    assert np.allclose(K.sum(axis=1), 1.0)
    # a constant spectrum is unchanged (end values continued beyond the window)
    assert np.allclose(lorentzian_broaden(e, np.full(e.size, 3.0), 2.0), 3.0)
    # a narrow line becomes a Lorentzian of FWHM ~2 eV (grid step 0.1 eV adds little)
    line = np.zeros(e.size)
    line[500] = 1.0
    out = lorentzian_broaden(e, line, 2.0)
    above = e[out >= out.max() / 2]
    assert above[-1] - above[0] == pytest.approx(2.0, abs=0.15)
    # stacks broaden row by row
    assert lorentzian_broaden(e, np.vstack([line, 2 * line]), 2.0).shape == (2, e.size)


def test_arctan_width_and_broadening_record():
    e = np.linspace(7090, 7200, 200)
    g = arctan_width(e, 7112.0, 1.25, gamma_max=15, e_center=30, e_large=30)
    assert np.all(g[e <= 7112] == 1.25)
    assert np.all(np.diff(g[e > 7112]) >= -1e-12) and g[-1] > 10
    b = Broadening("arctan", element="Fe")
    d = b.to_dict()
    assert d["fwhm"] == pytest.approx(1.25, abs=0.05) and d["e_fermi"] == pytest.approx(7112, abs=1)
    assert Broadening.from_dict(d).apply(e, np.ones(e.size)) == pytest.approx(np.ones(e.size))
    with pytest.raises(DataError, match="kind"):
        Broadening("gauss")


# -- metrics ------------------------------------------------------------------------------------
def _two_peaks(e, c1, c2, a1=1.0, a2=0.6):
    return a1 * np.exp(-((e - c1) / 1.5) ** 2) + a2 * np.exp(-((e - c2) / 2.0) ** 2) + 0.05


def test_percentage_error_definition():
    t = np.array([[1.0, 2.0, 3.0, 4.0]])
    p = np.array([[1.1, 1.8, 3.0, 4.3]])
    # 100 * (0.1 + 0.2 + 0 + 0.3) / 10
    assert percentage_error(t, p)[0] == pytest.approx(6.0)
    s = error_summary(np.array([1.0, 2.0, 3.0, 4.0, 10.0]))
    assert s["median"] == 3.0 and s["lower_quartile"] == 2.0 and s["upper_quartile"] == 4.0
    assert s["skewness"] > 0
    with pytest.raises(ValueError):
        percentage_error(t, p[:, :3])


def test_peaks_found_refined_and_matched():
    e = np.linspace(7100, 7170, 211)                  # 1/3 eV step, like the Fe data
    t = _two_peaks(e, 7120.2, 7140.7)
    pk = find_spectrum_peaks(e, t)
    assert pk == pytest.approx([7120.2, 7140.7], abs=0.1)   # sub-grid by parabolic refinement
    # a ripple below 5 % of the range is not a peak
    rip = t + 0.01 * np.sin(e * 3)
    assert len(find_spectrum_peaks(e, rip)) == 2
    assert match_peaks([7120.0, 7140.0], [7141.0, 7121.5, 7160.0]) == [(0, 1), (1, 0)]
    assert match_peaks([7120.0], [7130.0], max_shift=5.0) == []


def test_peak_metrics_on_shifted_spectra():
    e = np.linspace(7100, 7170, 211)
    T = np.stack([_two_peaks(e, 7120, 7140), _two_peaks(e, 7115, 7150)])
    P = np.stack([_two_peaks(e, 7121, 7139), _two_peaks(e, 7115, 7162)])  # last peak 12 eV off: a miss
    m = peak_metrics(e, T, P, max_shift=5.0)
    assert m["n_target_peaks"] == 4 and m["n_matched"] == 3 and m["hit_rate"] == pytest.approx(0.75)
    assert m["mean_abs_dE"] == pytest.approx(2 / 3, abs=0.05) and m["max_abs_dE"] == pytest.approx(1.0, abs=0.05)
    assert m["r2"] > 0.98 and m["pairs"].shape == (3, 3)


# -- readers ------------------------------------------------------------------------------------
def test_read_xyz_numbers_and_symbols(tmp_path):
    from xasml.io.structures import read_xyz

    f = tmp_path / "a.xyz"
    f.write_text("3\nwater-ish\n26 0 0 0\nO 1.9 0 0\n1\t0 1.5 0.2\n")
    m = read_xyz(f)
    assert m.numbers.tolist() == [26, 8, 1] and m.positions.shape == (3, 3) and m.comment == "water-ish"
    f.write_text("3\n\n26 0 0 0\n8 1.9 0\n")
    with pytest.raises(DataError, match="line 4"):
        read_xyz(f)
    f.write_text("2\n\n26 0 0 0\nQq 1 1 1\n")
    with pytest.raises(DataError, match="neither an atomic number"):
        read_xyz(f)


def test_read_fdmnes(tmp_path, shared_data):
    from xasml.io.structures import read_fdmnes

    files = sorted((shared_data / "xanesnet-fe" / "preconv" / "xanes_train").glob("*.txt"))[:1]
    s = read_fdmnes(files[0], "Fe")
    assert len(s) == 226 and s.energy[0] == pytest.approx(7097.0) and s.energy[-1] == pytest.approx(7172.0)
    bad = tmp_path / "bad.txt"
    bad.write_text("FDMNES\n energy <xanes>\n 7097.0 0.1\n 7097.3 x\n")
    with pytest.raises(SpectrumError, match="line 4"):
        read_fdmnes(bad, "Fe")


# -- model and pipeline -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cu_data():
    from xasml.descriptors.wacsf import WACSF
    from xasml.forward.data import load_feff_crystals

    return load_feff_crystals(CU, "Cu", descriptor=WACSF(n_g2=16, n_g4=32))


def test_cu_crystal_dataset(cu_data):
    assert len(cu_data) == 23 and cu_data.X.shape == (23, 49) and cu_data.y.shape == (23, 141)
    assert cu_data.energy[0] == pytest.approx(8983.173) and cu_data.energy[1] - cu_data.energy[0] == pytest.approx(0.25)
    assert np.all(np.isfinite(cu_data.X)) and cu_data.broadening.kind == "none"
    assert 0.5 < np.median(cu_data.y[:, -1]) < 1.5          # FEFF mu is edge-step normalised


def test_train_save_load_predict_roundtrip(cu_data, tmp_path):
    from xasml.forward.predict import ForwardModel
    from xasml.models.xanesnet import XanesnetMLP

    m = XanesnetMLP(hidden=(32, 32), epochs=30, batch_size=8, lr=3e-3, schedule="onecycle", scale_targets=True,
                    seed=1).fit(cu_data.X, cu_data.y)
    assert m.history_[-1] < m.history_[0]
    assert m.feature_mask_.sum() < cu_data.X.shape[1]          # variance filter dropped 25 %
    fm = ForwardModel(m, cu_data.descriptor, cu_data.energy, "Cu", "K", cu_data.broadening, {"note": "test"})
    fm.save(tmp_path / "model")
    back = ForwardModel.load(tmp_path / "model")
    assert np.allclose(back.predict_descriptors(cu_data.X), m.predict(cu_data.X), atol=1e-6)
    poscar = CU / "mp-361" / "POSCAR"
    r = back.predict_file(poscar, absorbing_index=0)
    assert r["element"] == "Cu" and len(r["energy"]) == len(r["mu"]) == 141
    i = cu_data.ids.index("mp-361_000")
    assert np.allclose(r["mu"], m.predict(cu_data.X[i:i + 1])[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError, match="is O"):
        back.predict_file(poscar, absorbing_index=5)
    # all four Cu sites of Cu2O are equivalent: the index may be omitted
    assert back.predict_file(poscar)["absorbing_index"] == 0
    spec = back.to_spectrum(r["mu"], "mp-361", 0)
    assert spec.absorbing_element == "Cu" and len(spec) == 141 and spec.metadata["predicted"]
    # same seed, same model
    m2 = XanesnetMLP(hidden=(32, 32), epochs=30, batch_size=8, lr=3e-3, schedule="onecycle", scale_targets=True,
                     seed=1).fit(cu_data.X, cu_data.y)
    assert np.allclose(m2.predict(cu_data.X), m.predict(cu_data.X), atol=1e-6)


def test_run_folder_end_to_end(tmp_path):
    from xasml.forward.run import run_forward

    out = tmp_path / "run"
    metrics = run_forward(data=CU, out=out, show_progress=False, overrides={
        "split": {"test_fraction": 0.25}, "cv": {"folds": 2, "repeats": 1},
        "descriptor": {"n_g2": 8, "n_g4": 16},
        "model": {"hidden": [32, 32], "epochs": 10, "batch_size": 8},
        "analysis": {"importance_repeats": 1, "select_fractions": [0.5, 1.0], "sfs_features": 0, "fast_epochs": 3}})
    for f in ("config.json", "run.json", "splits.json", "metrics.json", "models/forward/forward.json",
              "models/forward/weights.safetensors", "report/report.md", "report/delta_mu_hist.png"):
        assert (out / f).exists(), f
    assert metrics["n_train"] + metrics["n_test"] == 23 and len(metrics["cv"]["folds"]) == 2
    splits = json.loads((out / "splits.json").read_text())
    assert not set(splits["train"]) & set(splits["test"])
    fwd = json.loads((out / "models/forward/forward.json").read_text())
    assert fwd["broadening"]["kind"] == "none" and fwd["element"] == "Cu"
    assert "G4" in (out / "report" / "report.md").read_text() or metrics.get("analysis")


def test_config_errors(tmp_path):
    from xasml.forward.config import load_config

    cfg = load_config(preset="paper")
    assert cfg["model"]["lr"] == 1e-4 and cfg["model"]["batch_size"] == 32 and cfg["cv"]["repeats"] == 5
    bad = tmp_path / "c.json"
    bad.write_text('{"model": {"learning_rate": 1}}')
    with pytest.raises(DataError, match="model.learning_rate"):
        load_config(bad)


def test_shipped_models_predict_cli(capsys, shared_data):
    from xasml.cli import main
    from xasml.forward.predict import SHIPPED

    if not all((SHIPPED / el / "forward.json").exists() for el in ("Fe", "Cu")):
        pytest.skip("shipped Fe and Cu models not present")
    xyz = sorted((shared_data / "xanesnet-fe" / "preconv" / "xyz_train").glob("*.xyz"))[0]
    assert main(["forward", "predict", "--json", str(xyz), str(CU / "mp-361" / "POSCAR"),
                 "--absorbing-index", "0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["element"] for r in lines] == ["Fe", "Cu"]
    fe, cu = lines
    assert len(fe["energy"]) == len(fe["mu"]) == 226 and fe["broadening"]["kind"] == "lorentzian"
    assert fe["energy"][0] == pytest.approx(7097.0) and max(fe["mu"]) > 0.2
    assert len(cu["mu"]) == 141 and cu["broadening"]["kind"] == "none"


def test_v_npz_and_fe_folder_loaders(shared_data):
    from xasml.forward.data import load_forward_data

    v = load_forward_data(shared_data / "xanesnet-v" / "k_edge_v.npz")
    assert v.X.shape == (1439, 97) and v.y.shape == (1439, 226) and v.element == "V"
    assert v.energy[0] == pytest.approx(5465 - 15, abs=2) and v.broadening.kind == "none"
    fe = load_forward_data(shared_data / "xanesnet-fe" / "preconv", limit=20)
    assert fe.X.shape == (20, 97) and fe.y.shape == (20, 226)
    assert fe.broadening.kind == "lorentzian" and fe.broadening.fwhm == pytest.approx(1.25, abs=0.05)
    # Lorentzian convolution smooths: the largest point-to-point jump shrinks
    from xasml.io.structures import read_fdmnes

    raw = read_fdmnes(shared_data / "xanesnet-fe" / "preconv" / "xanes_train" / f"{fe.ids[0]}.txt", "Fe")
    assert np.abs(np.diff(fe.y[0])).max() < np.abs(np.diff(raw.mu)).max()


def test_predict_errors_are_clear(tmp_path):
    from xasml.cli import main

    bad = tmp_path / "x.xyz"
    bad.write_text("1\n\n8 0 0 0\n")
    model = tmp_path / "nomodel"
    model.mkdir()
    assert main(["forward", "predict", "--model", str(model), str(bad)]) == 2


def test_configured_arctan_broadening_is_applied_and_recorded(tmp_path):
    from xasml.forward.config import load_config
    from xasml.forward.run import dataset_from_config

    cfg = load_config(data={"path": str(CU), "limit": 3}, broadening={"kind": "arctan"},
                      descriptor={"n_g2": 4, "n_g4": 8})
    ds = dataset_from_config(cfg)
    raw = dataset_from_config(load_config(data={"path": str(CU), "limit": 3}, descriptor={"n_g2": 4, "n_g4": 8}))
    assert ds.broadening.kind == "arctan" and ds.broadening.fwhm == pytest.approx(1.55, abs=0.05)
    assert ds.broadening.e_fermi == pytest.approx(8979, abs=1)
    assert not np.allclose(ds.y, raw.y) and raw.broadening.kind == "none"


def test_model_refuses_wrong_absorber(tmp_path):
    from xasml.forward.predict import SHIPPED, ForwardModel

    if not (SHIPPED / "Fe" / "forward.json").exists():
        pytest.skip("no shipped Fe model")
    f = tmp_path / "cu.xyz"
    f.write_text("2\n\n29 0 0 0\n8 1.9 0 0\n")
    with pytest.raises(DataError, match="predicts Fe"):
        ForwardModel.load(SHIPPED / "Fe").predict_file(f)


def test_predict_writes_xdi_files(tmp_path, test_data):
    import json as _json
    import subprocess
    import sys

    from xasml.io.xdi import read_xdi

    poscar = test_data / "forward" / "cu" / "mp-361" / "POSCAR"
    res = subprocess.run([sys.executable, "-m", "xasml.cli", "forward", "predict", str(poscar), "--json",
                          "--out", str(tmp_path / "xdi")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    r = _json.loads(res.stdout)
    s = read_xdi(r["xdi"])
    assert r["xdi"].endswith("mp-361_Cu_000.xdi") and s.absorbing_element == "Cu" and s.edge == "K"
    np.testing.assert_allclose(s.energy, r["energy"])
    np.testing.assert_allclose(s.mu, r["mu"], rtol=1e-5)
    text = open(r["xdi"]).read()
    assert "model:" in text and "broadening" in text
