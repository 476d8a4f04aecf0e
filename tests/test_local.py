"""Tests of the local-structure capability on real Cu K-edge data (tests/data/local, OmniXAS / MP)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from xasml.datasets.format import frame_to_spectra, read_dataset
from xasml.errors import DataError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def local_dir(test_data):
    return test_data / "local"


@pytest.fixture(scope="module")
def sample(local_dir):
    """150 real site spectra (T:4, S:4, O:6, L:2) with their labels."""
    frame, info = read_dataset(local_dir / "cu_sites.parquet", kind="local")
    return frame, frame_to_spectra(frame)


@pytest.fixture(scope="module")
def gridded(sample):
    from xasml.datasets.local import choose_grid, grouped_stratified_split
    from xasml.preprocess.augment import max_normalize, shifted_resample

    frame, spectra = sample
    grid, e0 = choose_grid(spectra)
    X = max_normalize(shifted_resample(spectra, grid.energy))
    split = grouped_stratified_split(frame["environment"], frame["material_id"], (0.7, 0.0, 0.3), seed=0)
    return frame, spectra, grid, e0, X, split


# -- labels ------------------------------------------------------------------------------------

def _label(local_dir, mp, idx):
    from pymatgen.core import Structure

    from xasml.labels.site import label_structure

    return label_structure(Structure.from_file(local_dir / mp / "POSCAR"), [idx], material_id=mp)[0]


def test_cu2o_is_linear_cu1(local_dir):
    lab = _label(local_dir, "mp-361", 0)
    assert lab.environment == "L:2" and lab.coordination_number == 2
    assert lab.oxidation_state == 1 and lab.oxidation_status == "ok"
    assert lab.ligands == "O-O" and lab.csm < 0.1 and lab.error == ""


def test_cuo_is_square_planar_cu2(local_dir):
    lab = _label(local_dir, "mp-1692", 0)
    assert lab.environment == "S:4" and lab.coordination_number == 4
    assert lab.oxidation_state == 2 and lab.valence_method == "bond-valence"


def test_octahedral_site(local_dir):
    lab = _label(local_dir, "mp-22037", 0)  # Cu6PbO8
    assert lab.environment == "O:6" and lab.coordination_number == 6 and lab.ligands == "O-O-O-O-O-O"


def test_bond_valence_failure_is_unknown_not_fatal(local_dir):
    lab = _label(local_dir, "mp-1078646", 2)  # K2CuCl4O2: BVAnalyzer cannot assign valences
    assert lab.oxidation_state is None and lab.oxidation_status.startswith("unknown:")
    assert lab.environment is not None and lab.valence_method == "undefined"


def test_label_sites_cache_resumes_and_survives_bad_structure(local_dir, tmp_path, monkeypatch):
    import xasml.labels.site as site

    bad = tmp_path / "POSCAR"
    bad.write_text("this is not a structure\n")
    tasks = [("mp-361", local_dir / "mp-361" / "POSCAR", [0]), ("mp-1692", local_dir / "mp-1692" / "POSCAR", [0]),
             ("broken", bad, [0])]
    cache = tmp_path / "labels.parquet"
    df = site.label_sites(tasks, cache=cache, n_jobs=1)
    assert list(df["environment"][:2]) == ["L:2", "S:4"]
    assert df["environment"].iloc[2] is None and str(bad) in df["error"].iloc[2]
    assert cache.exists()

    def boom(task):
        raise AssertionError(f"recomputed {task[0]}")

    # the two good sites come from the cache; only the broken one is retried
    monkeypatch.setattr(site, "_label_task", lambda t: boom(t) if t[0] != "broken" else
                        [dict(site.asdict(site.SiteLabel(t[0], 0, "", error="still broken")))])
    df2 = site.label_sites(tasks, cache=cache, n_jobs=1)
    assert list(df2["environment"][:2]) == ["L:2", "S:4"]
    s = site.summarize_labels(df2)
    assert s["n_sites"] == 3 and s["n_environment_failed"] == 1


def test_shipped_label_table_matches_known_sites():
    from xasml.labels.site import read_label_cache
    from xasml.models.bundle import SHIPPED_DIR

    df = read_label_cache(SHIPPED_DIR / "labels_Cu.parquet").set_index(["material_id", "absorbing_index"])
    assert df.loc[("mp-361", 0), "environment"] == "L:2"
    assert df.loc[("mp-1692", 0), "environment"] == "S:4"
    assert len(df) > 1000


# -- augmentation ------------------------------------------------------------------------------

def test_shift_moves_features_by_the_shift(sample):
    from xasml.preprocess.augment import shifted_resample

    _, spectra = sample
    s = spectra[0]
    E = np.arange(s.energy[0] + 5, s.energy[-1] - 5, 0.1)
    base = shifted_resample([s], E)[0]
    plus = shifted_resample([s], E, shift=2.0)[0]
    # mu shifted by +2 eV at E equals the original at E - 2 eV
    np.testing.assert_allclose(plus[20:], base[:-20], atol=1e-9)
    assert E[np.argmax(plus)] == pytest.approx(E[np.argmax(base)] + 2.0, abs=0.11)


def test_augment_sizes_and_noise(sample, gridded):
    from xasml.preprocess.augment import add_gaussian_noise, augment, max_normalize

    frame, spectra, grid, _, X, _ = gridded
    y = frame["environment"].to_numpy()
    Xa, ya, rows = augment(spectra[:20], grid.energy, y[:20], seed=1)
    assert Xa.shape == (100, grid.n_points)  # base + 4 shifts: 5x (paper, §II.A)
    np.testing.assert_allclose(Xa[:20], X[:20])  # the base copy is untouched
    assert list(ya[20:40]) == list(y[:20]) and list(rows[:3]) == [0, 1, 2]
    assert np.allclose(Xa.max(axis=1)[:20], 1.0)
    noisy = add_gaussian_noise(X, 0.03, rng=0)
    assert np.std(noisy - X) == pytest.approx(0.03, rel=0.05)
    Xn, _, _ = augment(spectra[:20], grid.energy, shifts=[], noise_copies=2, noise_sigma=0.05, seed=0)
    assert Xn.shape == (60, grid.n_points) and np.std(Xn[20:] - np.tile(X[:20], (2, 1))) == pytest.approx(0.05, rel=0.1)
    with pytest.raises(ValueError, match="no positive value"):
        max_normalize(np.zeros((2, 5)))


# -- data set ----------------------------------------------------------------------------------

def test_grid_dedup_and_grouped_split(gridded):
    from xasml.datasets.local import check_group_split, deduplicate

    frame, spectra, grid, e0, X, split = gridded
    assert grid.n_points == 100 and grid.step == pytest.approx(0.5)
    assert grid.start < e0 < grid.stop  # the window holds the edge
    U = X[deduplicate(X, 0.015)]  # the sample itself holds near-duplicates (different materials)
    assert 0 < len(U) < len(X)
    keep = deduplicate(np.vstack([U, U[:5] + 0.001]), 0.015)
    assert keep[: len(U)].all() and not keep[len(U):].any()
    check_group_split(split, frame["material_id"])
    with pytest.raises(DataError, match="leaks"):
        check_group_split(["train", "test"], ["mp-1", "mp-1"])
    for env in frame["environment"].unique():  # stratified: every class in both parts
        assert {"train", "test"} <= set(split[frame["environment"] == env])


def test_build_dataset_from_folder(local_dir):
    from xasml.datasets.local import build_local_dataset, discover_sites
    from xasml.labels.site import label_sites

    sites = discover_sites(local_dir, "Cu")
    assert set(sites["material_id"]) == {"mp-361", "mp-1692", "mp-22037", "mp-1078646"}
    tasks = [(r.material_id, r.structure_path, [r.absorbing_index]) for r in sites.itertuples()]
    labels = label_sites(tasks)
    ds = build_local_dataset(local_dir, "Cu", labels, split_fractions=(0.5, 0.0, 0.5), sites=sites)
    assert len(ds) == 4 and ds.X.shape == (4, 100)
    assert set(ds.table["environment"]) == {"L:2", "S:4", "O:6"}
    with pytest.raises(DataError, match="not found"):
        discover_sites(local_dir / "nope", "Cu")


# -- models ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_classifier_learns_real_environments(gridded, arch, tmp_path):
    from xasml.models.base import get_model, load_estimator
    from xasml.models.local_nets import SpectrumClassifier
    from xasml.preprocess.augment import augment

    frame, spectra, grid, _, X, split = gridded
    y = frame["environment"].to_numpy()
    tr = np.flatnonzero(split == "train")
    te = np.flatnonzero(split == "test")
    Xa, ya, _ = augment([spectra[i] for i in tr], grid.energy, y[tr], shifts=[-1.0, 1.0], seed=0)
    clf = SpectrumClassifier(arch=arch, epochs=25, n_members=2, seed=0, n_threads=1).fit(Xa, ya)
    P = clf.predict_proba(X[te])
    assert P.shape == (len(te), 4) and np.allclose(P.sum(1), 1.0, atol=1e-5)
    assert clf.predict_proba_members(X[te]).shape == (2, len(te), 4)
    acc = np.mean(clf.predict(X[te]) == y[te])
    majority = pd.Series(y[tr]).value_counts(normalize=True).iloc[0]
    assert acc > majority + 0.2, (acc, majority)  # 4 balanced-ish classes: far above chance
    assert get_model("local_classifier") is SpectrumClassifier
    loaded = load_estimator(clf.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict_proba(X[te]), P, atol=1e-6)
    assert not list(tmp_path.rglob("*.pkl"))


def test_classifier_is_seeded(gridded):
    from xasml.models.local_nets import SpectrumClassifier

    frame, _, _, _, X, _ = gridded
    y = frame["environment"].to_numpy()
    a = SpectrumClassifier(epochs=2, seed=3, n_threads=1).fit(X, y).predict_proba(X)
    b = SpectrumClassifier(epochs=2, seed=3, n_threads=1).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_ensemble_regressor_oxidation_state(gridded, tmp_path):
    from xasml.models.base import load_estimator
    from xasml.models.local_nets import SpectrumEnsembleRegressor

    frame, _, _, _, X, split = gridded
    ok = frame["oxidation_state"].notna().to_numpy()
    y = frame["oxidation_state"].to_numpy(dtype=float, na_value=np.nan)
    tr = np.flatnonzero(ok & (split == "train"))
    te = np.flatnonzero(ok & (split == "test"))
    reg = SpectrumEnsembleRegressor(epochs=40, n_members=4, seed=0, n_threads=1).fit(X[tr], y[tr])
    mean, std = reg.predict(X[te], return_std=True)
    assert reg.predict_members(X[te]).shape == (4, len(te))
    assert np.all(std > 0)
    mae = np.mean(np.abs(mean - y[te]))
    baseline = np.mean(np.abs(y[te] - y[tr].mean()))
    assert mae < baseline, (mae, baseline)
    loaded = load_estimator(reg.save(tmp_path / "r"))
    m2, s2 = loaded.predict(X[te], return_std=True)
    np.testing.assert_allclose(m2, mean, atol=1e-5)
    # variance scaling on held-out data: +-2 sigma then covers ~95 % of those data
    reg.calibrate(X[te], y[te])
    m3, s3 = reg.predict(X[te], return_std=True)
    assert np.mean(np.abs(m3 - y[te]) <= 2 * s3 + 1e-9) >= 0.9
    np.testing.assert_allclose(s3, std * reg.std_scale_, rtol=1e-6)
    again = load_estimator(reg.save(tmp_path / "r2"))
    assert again.std_scale_ == pytest.approx(reg.std_scale_)
    with pytest.raises(DataError, match="NaN"):
        SpectrumEnsembleRegressor(epochs=1).fit(X[:3], [1.0, np.nan, 2.0])


def test_network_shapes():
    from xasml.models.local_nets import build_ensemble_net

    net = build_ensemble_net(3, 100, 5, conv_filters=8)
    assert net(torch.zeros(3, 7, 100)).shape == (3, 7, 5)
    with pytest.raises(ValueError, match="too short"):
        build_ensemble_net(1, 5, 2, conv_filters=8)


# -- configuration and command line ------------------------------------------------------------

def test_balanced_class_weight_raises_minority_recall(gridded):
    """'balanced' weighting must move predictions towards a class made rare in training."""
    from xasml.models.local_nets import SpectrumClassifier

    frame, _, _, _, X, _ = gridded
    y = frame["environment"].to_numpy().astype(str)
    rare = pd.Series(y).value_counts().index[-1]
    keep = np.flatnonzero(y != rare)
    keep = np.sort(np.concatenate([keep, np.flatnonzero(y == rare)[:4]]))  # the rare class: 4 examples
    kw = dict(epochs=15, n_members=2, seed=0, n_threads=1, lr_schedule="cosine")
    plain = SpectrumClassifier(**kw).fit(X[keep], y[keep])
    weighted = SpectrumClassifier(class_weight="balanced", **kw).fit(X[keep], y[keep])
    c = list(plain.classes_).index(rare)
    assert weighted.predict_proba(X)[:, c].mean() > plain.predict_proba(X)[:, c].mean()
    with pytest.raises(ValueError, match="class_weight"):
        SpectrumClassifier(class_weight="auto", epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="lr_schedule"):
        SpectrumClassifier(lr_schedule="step", epochs=1).fit(X, y)


def test_paper_preset_and_new_options_validated():
    from xasml.local.config import PAPER_TRAINING, LocalConfig

    cfg = LocalConfig.paper()
    assert (cfg.class_weight, cfg.lr_schedule, cfg.epochs, cfg.batch_size) == (None, "constant", 50, 32)
    assert set(PAPER_TRAINING) <= set(LocalConfig.model_fields)
    assert LocalConfig.paper(epochs=7).epochs == 7 and LocalConfig.quick().robustness is False
    with pytest.raises(DataError, match="^config: field 'class_weight': Input should be 'balanced', got \"auto\"$"):
        LocalConfig.from_dict({"class_weight": "auto"})
    with pytest.raises(DataError, match="^config: field 'lr_schedule': "):
        LocalConfig.from_dict({"lr_schedule": "step"})


def test_config_rejects_unknown_and_bad_values(tmp_path):
    from xasml.local.config import LocalConfig

    p = tmp_path / "c.json"
    p.write_text(json.dumps({"epochz": 3}))
    with pytest.raises(DataError, match=rf"^{p}: field 'epochz': unknown option \(known: angle_cutoff, archs, "):
        LocalConfig.from_file(p)
    p.write_text(json.dumps({"epochs": "x"}))
    with pytest.raises(DataError, match=rf"^{p}: field 'epochs': Input should be a valid integer.*got \"x\"$"):
        LocalConfig.from_file(p)
    with pytest.raises(DataError, match=r"^c: field 'archs\[0\]': Input should be 'mlp' or 'cnn'"):
        LocalConfig.from_dict({"archs": ["rnn"]}, "c")
    with pytest.raises(DataError, match=r"^c: field 'ship_arch': 'mlp' is not trained"):
        LocalConfig.from_dict({"archs": ["cnn"]}, "c")
    with pytest.raises(DataError, match=r"^c: field 'n_ensemble': Input should be greater than or equal to 2"):
        LocalConfig.from_dict({"n_ensemble": 1}, "c")
    with pytest.raises(DataError, match=r"^c: field 'split_fractions': expected three fractions summing to 1"):
        LocalConfig.from_dict({"split_fractions": [0.5, 0.5]}, "c")
    with pytest.raises(DataError, match=r"^c: field 'protocols': duplicate protocol names"):
        LocalConfig.from_dict({"protocols": [{"name": "a"}, {"name": "a"}]}, "c")
    with pytest.raises(DataError, match=r"^c: field 'ship_protocol': 'b' is not one of the protocols \['a'\]"):
        LocalConfig.from_dict({"protocols": [{"name": "a"}]}, "c")
    with pytest.raises(DataError, match=r"^c: field 'protocols\[1\].min_cnt': unknown option \(known: classes, "
                                        r"description, ligands, min_count, name\)"):
        LocalConfig.from_dict({"protocols": [{"name": "a"}, {"name": "b", "min_cnt": 3}]}, "c")
    cfg = LocalConfig.from_dict({"element": "Ni", "protocols": [{"name": "x", "classes": ["O:6", "T:4"]}],
                                 "robustness_protocol": "x", "ship_protocol": "x"})
    assert cfg.element == "Ni" and cfg.protocols[0].classes == ["O:6", "T:4"]
    assert (cfg.protocols[0].name, cfg.protocols[0].min_count, cfg.protocols[0].ligands) == ("x", 50, None)
    assert LocalConfig.from_dict(cfg.to_dict()) == cfg  # the resolved config.json reads back


def _cli_json(capsys, argv):
    from xasml.cli import main

    code = main(argv)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return code, lines


def test_predict_cli_shipped_models(local_dir, capsys):
    xmu = str(local_dir / "mp-1692" / "FEFF-XANES" / "000_Cu" / "xmu.dat")
    xdi = str(local_dir / "CuO_tenorite_13K_01.xdi")
    code, out = _cli_json(capsys, ["local", "predict", "--task", "coordination", "--json", xmu, xdi])
    assert code == 0 and [o["file"] for o in out] == [xmu, xdi]
    for o in out:
        assert set(o) >= {"file", "prediction", "probabilities"}
        assert o["prediction"] in o["probabilities"]
        assert sum(o["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert out[0]["prediction"] == "S:4"  # CuO, computed
    for task in ("oxidation", "cn"):
        code, out = _cli_json(capsys, ["local", "predict", "--task", task, "--json", xmu, xdi])
        assert code == 0 and all(set(o) >= {"file", "prediction", "std"} for o in out)
        assert all(isinstance(o["prediction"], float) and o["std"] >= 0 for o in out)
    code, out = _cli_json(capsys, ["local", "predict", "--task", "oxidation", "--json", xmu])
    assert out[0]["prediction"] == pytest.approx(2.0, abs=0.5)  # Cu(II)


def test_predict_reports_bad_file(tmp_path, capsys):
    bad = tmp_path / "xmu.dat"
    bad.write_text("# nothing\n1 2 3\n")
    from xasml.cli import main

    code = main(["local", "predict", "--task", "cn", "--json", str(bad)])
    cap = capsys.readouterr()
    assert code == 2 and cap.out == ""  # --json: results on stdout, errors on stderr
    assert str(bad) in cap.err and len(cap.err.strip().splitlines()) == 1


def test_quick_run_end_to_end(shared_data, tmp_path):
    """A real (tiny) run on 60 Cu materials: labels from the shipped table, all artefacts written."""
    from xasml.local.config import LocalConfig
    from xasml.models.bundle import ModelBundle
    from xasml.local.run import run_local

    src = shared_data / "omnixas-cu-feff" / "FEFF" / "Cu"
    data = tmp_path / "data"
    for m in sorted(p.name for p in src.iterdir() if p.is_dir())[::25]:  # ~90 materials across the set
        shutil.copytree(src / m, data / m)
    cfg = LocalConfig.quick(data=str(data), epochs=2,
                            protocols=[{"name": "a", "classes": ["O:6", "S:4"], "min_count": 0},
                                       {"name": "b", "classes": None, "min_count": 10},
                                       {"name": "c", "classes": ["O:6", "C:12"], "min_count": 0}],
                            robustness_protocol="a", ship_protocol="b")
    metrics = run_local(cfg, tmp_path / "run")
    run = tmp_path / "run"
    for f in ("config.json", "run.json", "splits.json", "metrics.json", "dataset.parquet", "report/report.md"):
        assert (run / f).exists(), f
    splits = json.loads((run / "splits.json").read_text())
    mats = [{s.rsplit("_", 1)[0] for s in splits[k]} for k in ("train", "val", "test")]
    assert not (mats[0] & mats[1] or mats[0] & mats[2] or mats[1] & mats[2])
    assert 0 <= metrics["classification"]["a"]["models"]["a_mlp"]["macro_f1"]["mean"] <= 1
    assert "coverage_2sigma" in metrics["regression"]["oxidation_state"]["test"]
    assert metrics["classification"]["c"]["skipped"]  # a protocol without two classes is skipped, not fatal
    b = ModelBundle.load(run / "models" / "coordination")
    assert b.grid.n_points == 100 and b.task == "coordination"


def test_predict_takes_folders_and_names_environments(test_data):
    from xasml.labels.site import environment_name
    from xasml.local.predict import predict_files

    res = predict_files([test_data / "local"], "coordination")
    files = [r["file"] for r in res]
    assert any(f.endswith("xmu.dat") for f in files) and any(f.endswith(".xdi") for f in files)
    assert all("error" not in r for r in res)
    cuo = next(r for r in res if r["file"].endswith("CuO_tenorite_13K_01.xdi"))
    assert cuo["prediction"] == "S:4" and cuo["environment_name"] == "Square plane"
    assert environment_name("T:4") == "Tetrahedron" and environment_name(None) is None
    ox = predict_files([test_data / "local" / "mp-1692"], "oxidation")
    assert ox[0]["std"] > 0


def test_run_show_config_lists_every_option(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text("epochs = 7\n")
    res = subprocess.run([sys.executable, "-m", "xasml.cli", "local", "run", "--show-config", "--config", str(cfg),
                          "--element", "Fe"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = dict(ln.split(" = ", 1) for ln in res.stdout.splitlines())
    assert lines["element"].startswith('"Fe"') and lines["epochs"].startswith("7") and "#" in lines["edge"]
    from xasml.local.config import HELP, LocalConfig

    assert list(lines) == list(LocalConfig.model_fields) == list(HELP) and all(HELP.values())
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochz": 3}')
    res = subprocess.run([sys.executable, "-m", "xasml.cli", "local", "run", "--show-config", "--config", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and res.stdout == "" and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"xasml: error: {bad}: field 'epochz': unknown option")
    assert len(res.stderr.strip().splitlines()) == 1


def test_predict_scan_option_picks_the_scan_of_hdf5_and_spec_files(test_data, tmp_path, capsys):
    """``--scan`` (every reading command) reaches read_spectra: HDF5/NeXus entries (a file made with h5py
    from the real X-DAC Fe foil scan fe.060) and SPEC ``#S`` scans."""
    from test_beamline_files import _h5_from

    from xasml.cli import main
    from xasml.local.predict import predict_files

    beamline = test_data / "io" / "beamline"
    h5 = _h5_from(beamline, tmp_path / "foil.h5", "bliss")
    last, first = predict_files([h5], "oxidation", scan=None)[0], predict_files([h5], "oxidation", scan="1.1")[0]
    assert any("choose another with --scan" in w for w in last["warnings"])
    assert not any("choose another" in w for w in first["warnings"])
    assert first["prediction"] == pytest.approx(last["prediction"], abs=1e-6)  # it only differs by a factor 2
    assert first["combined"]["oxidation_state"] < 1.0  # an Fe foil
    code = main(["local", "predict", "--task", "oxidation", "--json", "--scan", "9.1", str(h5)])
    err = capsys.readouterr().err
    assert code == 2 and "field 'scan'" in err and "its scans are 1.1, 2.1" in err
    code = main(["local", "predict", "--task", "oxidation", "--json", "--scan", "7", str(beamline / "ESRF_SNBL_2013.dat")])
    assert code == 2 and "no scan #S 7 in the file: its scans are 1, 2" in capsys.readouterr().err
    from xasml.cli import build_parser

    for cmd in (["topology", "predict", "x"], ["measure", "read", "x"], ["references", "evidence", "x"]):
        assert build_parser().parse_args([*cmd, "--scan", "2"]).scan == "2"


def test_uncalibrated_foil_is_metal_from_the_measured_standards(shared_data):
    """fe.060 (NSLS X-DAC) is an Fe foil scanned 5 eV below the tabulated edge: the spectral metal
    test (edge at the foil's energy) misses it, the best LCF against the reference library (97 %
    Fe foil, R 0.02) does not; Fe3C (valence 0, but a carbide) is never made a metal that way."""
    from xasml.local.predict import predict_files

    foil = predict_files([shared_data / "experimental" / "beamline-files" / "fe.060"], "all")[0]
    assert foil["coordination"]["prediction"] == "metal"
    assert foil["metal_evidence"]["source"] == "measured standards"
    assert foil["oxidation"]["prediction"] == 0.0 and foil["oxidation"]["status"] == "metal"
    assert any("metal foil" in w for w in foil["warnings"])
    fe3c = predict_files([shared_data / "experimental" / "xas-data-library" / "data" / "Fe" / "Fe3C_rt_01.xdi"],
                         "coordination")[0]
    assert fe3c["status"] == "ok" and fe3c["prediction"] != "metal"


def test_a_sulfide_the_foil_fits_is_not_made_a_metal(shared_data):
    """NiS with its own compound out of the library: the best LCF is 89 % Ni foil (R 0.007), which the
    fit rule alone would call a metal; its edge rises like a compound's (flattened μ 0.65 at 3 eV
    above e0; foils 0.31-0.48), so the answer stays the evidence's, with a warning that says why."""
    from xasml.io.reader import read_spectra
    from xasml.local.metal import metal_from_standards
    from xasml.local.predict import _edge_shape
    from xasml.references.combine import gather_evidence
    from xasml.references.evidence import unknown_from_spectrum
    from xasml.references.library import load_library

    nis = read_spectra(shared_data / "experimental" / "xas-data-library" / "data" / "Ni" / "NiS_rt_01.xdi",
                       include_references=False)[0]
    lcf = gather_evidence(unknown_from_spectrum(nis), load_library(), exclude_compounds=["NiS"])["lcf"]
    evidence = {"lcf": lcf}
    assert metal_from_standards(evidence, "Ni")["strength"] == "metal"  # the fit alone says foil
    shape = _edge_shape(nis, "auto", None)
    assert not shape["metallic"] and shape["flat_at_3eV"] > 0.6
    found = metal_from_standards(evidence, "Ni", shape)
    assert found["strength"] is None and "rises like a compound" in found["message"]
    foil = read_spectra(shared_data / "experimental" / "beamline-files" / "fe.060", include_references=False)[0]
    assert _edge_shape(foil, "auto", None)["metallic"]  # 5 eV off its edge, shaped like a foil


def test_a_nearly_identical_standard_checks_the_environment_and_cn(shared_data):
    """Pyrolusite: the Mn classifier says T:4 at p 1.00 and CN 4; the library's MnO2 (r 1.000) is O:6
    with CN 6 by its structure: both answers are flagged, naming the standard. Hematite, answered
    O:6 as its nearest standards are, is not flagged."""
    from xasml.local.predict import predict_files

    xdl = shared_data / "experimental" / "xas-data-library" / "data"
    mno2 = predict_files([xdl / "Mn" / "MnO2_rt_01.xdi"], "all")[0]
    env = mno2["coordination"]
    assert env["prediction"] != "O:6" and env["flagged"]
    assert any("MnO2 (pyrolusite)" in w and "is O:6 by its structure" in w for w in env["flag_reasons"])
    assert mno2["cn"]["flagged"] and "CN 6" in mno2["cn"]["flag_reasons"][0]
    fe2o3 = predict_files([xdl / "Fe" / "Fe2O3_rt_01.xdi"], "coordination")[0]
    assert fe2o3["prediction"] == "O:6" and not fe2o3.get("flagged")
