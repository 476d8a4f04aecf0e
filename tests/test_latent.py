"""Tests of the RankAAE latent capability (seed 002 §II.C) on real Cu K-edge data.

tests/data/local: 150 real OmniXAS FEFF site spectra with labels (cu_sites.parquet), four real
structures with one site spectrum each, a measured CuO XDI; the shared data folder, when
present, for an end-to-end ``xasml latent fit`` on a few dozen real materials.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.exceptions import NotFittedError

from xasml.datasets.format import read_dataset

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from xasml.latent.descriptors import DESCRIPTORS, site_descriptors
from xasml.models.rankaae import LatentPropertyEnsemble, RankAAE, pairwise_rank_loss

SMALL = dict(hidden=(64, 32), disc_hidden=(32,), epochs=60, batch_size=32, n_threads=1)


@pytest.fixture(scope="module")
def local_dir(test_data):
    return test_data / "local"


@pytest.fixture(scope="module")
def cu(local_dir):
    """150 real Cu site spectra on the calibrated Cu grid (as ``latent fit``: FEFF 9.9.1 energy offset,
    -3 ... +46.5 eV around the tabulated edge); descriptors OS and CN from the labels (the rest unknown)."""
    from xasml.datasets.sites import SiteGrid, spectra_matrix
    from xasml.edges import edge_energy
    from xasml.preprocess.grid import EnergyGrid

    frame, _ = read_dataset(local_dir / "cu_sites.parquet", kind="local")
    frame["simulation"] = "FEFF 9.9.1"  # OmniXAS
    cfg = SiteGrid()
    X, keep, _ = spectra_matrix(frame, cfg)
    assert keep.all()
    e = edge_energy("Cu", "K") + cfg.rel_grid()
    grid = EnergyGrid(float(e[0]), float(e[-1]), len(e))
    D = np.full((len(X), len(DESCRIPTORS)), np.nan)
    D[:, 0] = frame["oxidation_state"].astype(float).to_numpy()
    D[:, 1] = frame["coordination_number"].astype(float).to_numpy()
    return X, D, grid


@pytest.fixture(scope="module")
def fitted(cu):
    X, D, _ = cu
    return RankAAE(**SMALL).fit(X, D)


@pytest.mark.parametrize("est", [RankAAE(epochs=5, hidden=(8,), disc_hidden=(8,), n_threads=1),
                                 LatentPropertyEnsemble(epochs=40, hidden=(16,), n_members=2, n_threads=1)],
                         ids=lambda e: type(e).__name__)
def test_sklearn_check_estimator(est):
    """Every check of scikit-learn's check_estimator passes (transformer and multi-output regressor)."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed, failed


def test_not_fitted_errors():
    """transform / inverse_transform / predict before fit raise NotFittedError."""
    with pytest.raises(NotFittedError):
        RankAAE().transform(np.zeros((2, 5)))
    with pytest.raises(NotFittedError):
        RankAAE().inverse_transform(np.zeros((2, 6)))
    with pytest.raises(NotFittedError):
        LatentPropertyEnsemble().predict(np.zeros((2, 6)))


def test_pairwise_rank_loss_orders_and_skips_missing():
    """Ordered latents score lower than reversed ones; NaN descriptors and ties are left out."""
    d = torch.tensor([[1.0], [2.0], [3.0], [float("nan")]])
    up = torch.tensor([[-1.0], [0.0], [1.0], [5.0]])
    assert pairwise_rank_loss(up, d) < pairwise_rank_loss(-up, d)
    # the NaN row does not count: moving its latent changes nothing
    moved = up.clone()
    moved[3, 0] = -5.0
    assert torch.isclose(pairwise_rank_loss(up, d), pairwise_rank_loss(moved, d))
    assert float(pairwise_rank_loss(up, torch.full((4, 1), 2.0))) == 0.0  # ties only


def test_fit_shapes_and_history(fitted, cu):
    X, D, _ = cu
    Z = fitted.transform(X)
    assert Z.shape == (150, 6) and np.isfinite(Z).all()
    R = fitted.inverse_transform(Z)
    assert R.shape == X.shape and np.abs(R - X).mean() < 0.1
    assert fitted.n_constrained_ == 5 and len(fitted.history_["rec"]) == SMALL["epochs"]
    assert fitted.history_["rec"][-1] < fitted.history_["rec"][0]


def test_rank_constraint_aligns_latent_with_descriptor(fitted, cu):
    """The CN- and OS-constrained dimensions follow their descriptors; without the constraint they do not."""
    X, D, _ = cu
    Z = fitted.transform(X)
    free = RankAAE(**SMALL, rank_weight=0.0).fit(X, D).transform(X)
    for j in (0, 1):
        ok = np.isfinite(D[:, j])
        rho = spearmanr(Z[ok, j], D[ok, j]).statistic
        rho_free = spearmanr(free[ok, j], D[ok, j]).statistic
        assert rho > 0.7, (DESCRIPTORS[j], rho)
        assert rho > abs(rho_free) + 0.1, (DESCRIPTORS[j], rho, rho_free)


def test_save_load_round_trip_gives_identical_latents(fitted, cu, tmp_path):
    X, D, _ = cu
    back = RankAAE.load(fitted.save(tmp_path / "ae"))
    np.testing.assert_array_equal(back.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(X), fitted.transform(X))
    assert not list(tmp_path.rglob("*.pkl")) and (tmp_path / "ae" / "weights.safetensors").exists()
    Z = fitted.transform(X)
    ens = LatentPropertyEnsemble(n_members=4, epochs=30).fit(Z, D[:, :2])
    from xasml.models import load_estimator

    ens_back = load_estimator(ens.save(tmp_path / "ens"))
    m, s = ens.predict(Z, return_std=True)
    m2, s2 = ens_back.predict(Z, return_std=True)
    assert m.shape == (150, 2) and (s > 0).all()
    np.testing.assert_array_equal(m, m2)
    np.testing.assert_array_equal(s, s2)


def test_same_seed_same_latents(cu):
    X, D, _ = cu
    kw = {**SMALL, "epochs": 3}
    a, b = RankAAE(**kw).fit(X, D), RankAAE(**kw).fit(X, D)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_site_descriptors_of_cu2o(local_dir):
    """Cu2O (mp-361): linear O-Cu-O, equal bonds, each O has 4 Cu, O-O = twice Cu-O."""
    from pymatgen.core import Structure

    s = Structure.from_file(local_dir / "mp-361" / "POSCAR")
    d = site_descriptors(s, 0)
    assert d["shell_size"] == 2 and d["ligand_cn"] == pytest.approx(4.0)
    assert d["shell_radial_std"] == pytest.approx(0.0, abs=1e-6)
    assert 3.6 < d["min_ligand_distance"] < 3.8


def _model(fitted, cu, tmp_path):
    from xasml.latent.model import LatentModel

    X, D, grid = cu
    Z = fitted.transform(X)
    ens = LatentPropertyEnsemble(n_members=4, epochs=30).fit(Z, D[:, :2])
    from xasml.preprocess.energy_scale import energy_offset

    m = LatentModel(rankaae=fitted, properties=ens, element="Cu", edge="K", grid=grid,
                    reference_mu=X.mean(axis=0), descriptors=list(DESCRIPTORS) + [None], alignment="calibrated",
                    energy_scale={"FEFF 9.9.1": energy_offset("Cu", "FEFF 9.9.1")})
    return m.save(tmp_path / "model")


def test_encode_cli_on_feff_and_xdi(fitted, cu, local_dir, tmp_path, capsys):
    """``xasml latent encode --json`` on a FEFF xmu.dat and a measured XDI: the documented JSON, no traceback."""
    from xasml.cli import main

    model = _model(fitted, cu, tmp_path)
    files = [str(local_dir / "mp-1692" / "FEFF-XANES" / "000_Cu" / "xmu.dat"), str(local_dir / "CuO_tenorite_13K_01.xdi")]
    assert main(["latent", "encode", "--model", str(model), "--json", *files]) == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [r["file"] for r in rows] == files and "Traceback" not in out.err
    for r in rows:
        assert len(r["latent"]) == 6 and all(np.isfinite(r["latent"]))
        assert r["descriptors"] == list(DESCRIPTORS) + [None]
        for t in ("oxidation_state", "coordination_number"):
            assert set(r[t]) == {"prediction", "std"} and np.isfinite(r[t]["prediction"])
    # computed: the simulation's energy offset; measured: calibrated and flattened, never shifted on its own
    from xasml.preprocess.energy_scale import energy_offset

    assert rows[0]["energy_offset_eV"] == pytest.approx(energy_offset("Cu", "FEFF 9.9.1"))
    assert "calibration" not in rows[0]
    assert "calibration" in rows[1] and np.isfinite(rows[1]["e0"]) and "alignment_shift_eV" not in rows[1]
    # a bad file: one error line, the others still encoded, exit status 2
    assert main(["latent", "encode", "--model", str(model), "--json", str(tmp_path / "missing.xdi"), files[0]]) == 2
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 1 and out.err.startswith("xasml: error:") and "Traceback" not in out.err


def test_shipped_cu_model_encodes(local_dir, capsys):
    """Without --model the Cu model shipped in xasml/data/latent/Cu is used."""
    from xasml.cli import main
    from xasml.latent.model import SHIPPED_DIR

    if not (SHIPPED_DIR / "Cu" / "latent.json").exists():
        pytest.skip("no shipped Cu latent model")
    f = str(local_dir / "mp-361" / "FEFF-XANES" / "000_Cu" / "xmu.dat")
    assert main(["latent", "encode", "--json", f]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["latent"]) == 6 and r["descriptors"][-1] is None and r["element"] == "Cu"
    assert r["latent_in_range"] is True and r["shipped_elements"] == ["Cu"]  # a training-like FEFF spectrum


def test_measured_cu_metal_latent_is_flagged_outside_the_training_range(test_data, local_dir, capsys):
    """Issue 16 item 5: a measured Cu metal spectrum encoded to latents far outside anything the model
    was trained on (OS -11 +- 28, CN 63 +- 48 with ``warnings: []``); now flagged, with the dimensions
    named, in JSON and in plain text. CuO, a compound like the training data, is not flagged."""
    from xasml.cli import main
    from xasml.latent.model import SHIPPED_DIR

    if not (SHIPPED_DIR / "Cu" / "latent.json").exists():
        pytest.skip("no shipped Cu latent model")
    metal, cuo = test_data / "io" / "xdi" / "cu_metal_rt.xdi", local_dir / "CuO_tenorite_13K_01.xdi"
    assert main(["latent", "encode", "--json", str(metal), str(cuo)]) == 0
    m, c = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert m["latent_in_range"] is False and m["latent_out_of_range"]
    for b in m["latent_out_of_range"]:
        v = m["latent"][b["dimension"]]
        assert v < b["training_min"] or v > b["training_max"]
    assert any(w.startswith("latent outside the training range of the Cu model") for w in m["warnings"])
    assert c["latent_in_range"] is True and c["latent_out_of_range"] == [] and c["targets_out_of_range"] == []
    assert not any("training range" in w for w in c["warnings"])
    assert main(["latent", "encode", str(metal)]) == 0
    text = capsys.readouterr().out
    assert "[OUT OF TRAINING RANGE]" in text and "  warning: latent outside the training range" in text


def test_fit_cli_on_real_materials(shared_data, tmp_path):
    """``xasml latent fit`` end to end on 40 real Cu materials: run folder with model, splits, metrics, figure."""
    from xasml.cli import main

    src = shared_data / "omnixas-cu-feff" / "FEFF" / "Cu"
    if not src.is_dir():
        pytest.skip("omnixas-cu-feff not in the shared data")
    data = tmp_path / "data"
    data.mkdir()
    for m in sorted(p for p in src.iterdir() if p.name.startswith("mp-"))[:40]:
        for f in [m / "POSCAR", *m.glob("FEFF-XANES/*_Cu/xmu.dat")]:
            dst = data / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(f)  # real folders, linked files (rglob does not follow folder links)
    out = tmp_path / "run"
    assert main(["latent", "fit", "--data", str(data), "--out", str(out), "--epochs", "5", "--members", "2"]) == 0
    for name in ("config.json", "run.json", "splits.json", "metrics.json", "report/report.md",
                 "report/latent_scan.png", "models/latent/latent.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]["spearman"]) == set(DESCRIPTORS)
    splits = json.loads((out / "splits.json").read_text())
    mats = {s: {k.rsplit("_", 1)[0] for k in v} for s, v in splits.items()}
    assert not (mats["train"] & mats["test"]) and not (mats["val"] & mats["test"])
    assert json.loads((out / "run.json").read_text())["data_fingerprint"]
    tr = json.loads((out / "models" / "latent" / "latent.json").read_text())["training_range"]
    assert len(tr["latent_min"]) == len(tr["latent_max"]) == 6 and tr["source"].startswith("training split")
    assert all(lo <= hi for lo, hi in zip(tr["latent_min"], tr["latent_max"]))


def test_latent_data_from_site_table_keeps_chemical_shift(test_data):
    """A site table gives element grids on the calibrated scale (one offset per element and
    simulation, no per-spectrum alignment) and a split grouped by structure."""
    from xasml.latent.sites import build_latent_data
    from xasml.datasets.sites import SiteGrid, load_sites, spectra_matrix, structure_key
    from xasml.preprocess.energy_scale import energy_offset

    path = test_data / "local" / "sites_small.parquet"
    d = build_latent_data([path], ["Ti", "Fe", "Cu"], fractions=(0.6, 0.2, 0.2), dedup_threshold=0.0)
    assert d.X.shape == (len(d), 100) and d.D.shape == (len(d), len(DESCRIPTORS))
    assert set(d.elements) == {"Ti", "Fe", "Cu"} and d.energy_scale["Cu"] == {"FEFF 9.9.1": pytest.approx(energy_offset("Cu", "FEFF 9.9.1"))}
    assert d.grid("Fe").start == pytest.approx(7112.0 - 3.0) and d.grid("Fe").n_points == 100
    # the rows are exactly the local-structure models' inputs (same energy handling, nothing re-aligned)
    frame = load_sites([path], ["Ti", "Fe", "Cu"])
    X, keep, _ = spectra_matrix(frame, SiteGrid())
    ref = {(m, i): x for m, i, x in zip(frame[keep]["material_id"], frame[keep]["absorbing_index"], X)}
    for m, i, x in zip(d.table["material_id"], d.table["absorbing_index"], d.X):
        np.testing.assert_allclose(x, ref[(m, i)], atol=1e-6)
    parts = d.table.groupby(d.table["material_id"].map(structure_key))["split"].nunique()
    assert (parts == 1).all() and set(d.table["split"]) == {"train", "val", "test"}
    assert np.isfinite(d.D[:, 1]).all()  # CN known for every labelled site


def test_fit_cli_universal_on_site_table(test_data, tmp_path, capsys):
    """``latent fit --data <site table> --elements ...``: one universal model, one model folder per
    element, per-element metrics; ``encode --model <run>`` picks the folder of the file's element."""
    from xasml.cli import main

    out = tmp_path / "run"
    assert main(["latent", "fit", "--data", str(test_data / "local" / "sites_small.parquet"), "--elements",
                 "Ti,Mn,Fe,Cu", "--out", str(out), "--epochs", "5", "--members", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["universal"] and set(metrics["test"]["by_element"]) <= {"Ti", "Mn", "Fe", "Cu"}
    for el, r in metrics["test"]["by_element"].items():
        assert set(r["spearman"]) == set(DESCRIPTORS) and r["n_materials"] >= 1
    for el in ("Ti", "Mn", "Fe", "Cu"):
        meta = json.loads((out / "models" / "latent" / el / "latent.json").read_text())
        assert meta["elements"] == ["Ti", "Mn", "Fe", "Cu"] and meta["alignment"] == "calibrated"
    assert not list(out.rglob("*.pkl")) and (out / "splits.json").exists() and (out / "config.json").exists()
    capsys.readouterr()
    f = str(test_data / "local" / "mp-361" / "FEFF-XANES" / "000_Cu" / "xmu.dat")
    assert main(["latent", "encode", "--model", str(out), "--json", f]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["element"] == "Cu" and len(r["latent"]) == 6 and np.isfinite(r["oxidation_state"]["prediction"])
