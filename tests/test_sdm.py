"""Spectral domain mapping (cBSS, paper 002 §II.D): the math, the film reader, the CLI.

Real data: ``tests/data/sdm/tizn_film_ti10.csv`` (10 measured Ti K-edge spectra of the zinc
titanate film, mcr_const, BSD-3-Clause) and ``ti_sites.npz`` (34 FEFF10 Ti K-edge site spectra
of the project's sets with their bond-valence oxidation states and ChemEnv coordination numbers);
see ``tests/data/sdm/README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xasml.cli import main
from xasml.errors import DataError, SpectrumError
from xasml.io.matrix import energy_blocks, read_spectrum_matrix
from xasml.measure.sdm import cbss_fit, cbss_losses, kmeans_basis, map_with_bundle, project_simplex, spectral_domain_map

DATA = Path(__file__).parent / "data" / "sdm"
FILM = DATA / "tizn_film_ti10.csv"


def _synthetic(seed=1, m=30, n=3, N=60):
    """Three well-separated motifs (sigmoid edge + white line) and Dirichlet weights: T = S C exactly."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, N)
    S = np.stack([1 / (1 + np.exp(-(x - c) / 0.03)) + a * np.exp(-(x - p) ** 2 / 0.002)
                  for c, a, p in [(0.3, 1.0, 0.35), (0.45, 0.3, 0.7), (0.6, 0.6, 0.5)][:n]], 1)
    C = rng.dirichlet(np.ones(n), size=m).T
    return (S @ C).T, S, C


# -- math ---------------------------------------------------------------------------------------
def test_project_simplex_is_the_euclidean_projection():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(5, 4, 7)) * 2
    P = project_simplex(V)
    assert np.all(P >= 0) and np.allclose(P.sum(axis=1), 1)
    # optimality (KKT): on the support, v - p is the same constant, and off it no larger
    for r in range(5):
        for j in range(7):
            v, p = V[r, :, j], P[r, :, j]
            on = p > 1e-12
            theta = (v - p)[on]
            assert np.allclose(theta, theta[0])
            assert np.all(v[~on] <= theta[0] + 1e-12)
    assert np.allclose(project_simplex(P), P)  # points of the simplex stay


def test_exact_mixtures_are_recovered_from_the_true_basis():
    T, S, C = _synthetic()
    r = spectral_domain_map(T, None, 3, n_restarts=20, seed=0, basis=S, n_iter=200)
    assert np.abs(r.weights - C).max() < 1e-3
    assert np.abs(r.basis_fitted - S).max() < 1e-3
    assert r.residual.max() < 1e-3
    assert r.weights_std.max() < 1e-3  # every random start converges to the same weights
    assert np.allclose(r.mapped, (S @ r.weights).T)  # eq. 3: the simulated basis with the fitted weights
    assert np.all(r.weights >= 0) and np.allclose(r.weights.sum(axis=0), 1)
    assert r.loss_pinv.max() < 1e-6  # eq. 2 at the solution: T C⁺ is the simulated basis


def test_mapping_removes_a_systematic_difference_between_domains():
    """Measured = shifted/scaled motifs mixed; the mapped spectra are the same mixtures of the simulated motifs."""
    _, S, C = _synthetic(seed=3)
    S_exp = 1.08 * np.roll(S, 2, axis=0)  # "experiment": edge moved by two grid points, 8 % higher
    S_exp[:2] = S[:2]
    T_exp = (S_exp @ C).T
    r = spectral_domain_map(T_exp, None, 3, n_restarts=10, seed=0, basis=S, n_iter=200, anchor=0.05)
    direct = np.sqrt(np.mean((T_exp - (S @ C).T) ** 2))
    mapped = np.sqrt(np.mean((r.mapped - (S @ C).T) ** 2))
    assert mapped < 0.3 * direct
    assert np.abs(r.basis_fitted - S_exp).max() < np.abs(S - S_exp).max()  # the fitted basis moved to experiment


def test_anchor_zero_basis_step_is_the_pseudoinverse():
    T, S, _ = _synthetic()
    fit = cbss_fit(T, S, n_restarts=3, seed=5, n_iter=5, anchor=0.0)
    C = fit["C"]
    S_pinv = np.stack([T.T @ np.linalg.pinv(c) for c in C])
    assert np.allclose(fit["S"], S_pinv, atol=1e-6)
    lp, la, _ = cbss_losses(C, fit["S"], T.T, S)
    assert np.allclose(lp, la, atol=1e-8)


def test_seeded_and_shapes():
    T, S, _ = _synthetic(m=12)
    X = np.concatenate([S.T + 0.01 * k for k in range(5)])  # 15 "training spectra", three groups
    a = spectral_domain_map(T, X, 3, n_restarts=7, seed=4, n_iter=30)
    b = spectral_domain_map(T, X, 3, n_restarts=7, seed=4, n_iter=30)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.basis_fitted, b.basis_fitted)
    assert a.basis_simulated.shape == (60, 3) and a.basis_fitted.shape == (60, 3)
    assert a.weights.shape == (3, 12) and a.mapped.shape == (12, 60) and a.residual.shape == (12,)
    assert a.loss_pinv.shape == (7,)
    s = a.summary()
    assert s["n_restarts"] == 7 and s["n_motifs"] == 3 and len(s["mean_weights"]) == 3
    json.dumps(s)


def test_kmeans_basis_orders_by_edge_and_counts():
    _, S, _ = _synthetic()
    X = np.concatenate([np.repeat(S[:, [2]].T, 4, 0), np.repeat(S[:, [0]].T, 2, 0), np.repeat(S[:, [1]].T, 3, 0)])
    B, sizes = kmeans_basis(X + 1e-3 * np.random.default_rng(0).normal(size=X.shape), 3, seed=0)
    assert np.abs(B - S).max() < 5e-3  # edge order: motif 0 (earliest edge) first
    assert sizes.tolist() == [2, 3, 4]
    with pytest.raises(DataError, match="distinct"):
        kmeans_basis(np.repeat(S[:, [0]].T, 5, 0), 2)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_motifs": 0}, "n_motifs"),
    ({"n_motifs": 31}, "n_motifs"),
    ({"n_motifs": 3, "n_restarts": 0}, "n_restarts"),
    ({"n_motifs": 3, "training_spectra": np.ones((5, 7))}, "training spectra have shape"),
    ({"n_motifs": 3, "training_spectra": None}, "no training spectra"),
])
def test_bad_arguments_are_named(kwargs, match):
    T, _, _ = _synthetic()
    kwargs = {"training_spectra": np.random.default_rng(0).random((10, 60)), **kwargs}
    with pytest.raises(DataError, match=match):
        spectral_domain_map(T, **kwargs)
    with pytest.raises(DataError, match="non-finite"):
        spectral_domain_map(np.full((3, 60), np.nan), np.ones((5, 60)), 2)


# -- film reader -------------------------------------------------------------------------------
def test_film_reader_ti_block():
    spectra = read_spectrum_matrix(FILM, "Ti", label_name="f_Ti")
    assert len(spectra) == 10
    s = spectra[0]
    assert s.absorbing_element == "Ti" and s.edge == "K" and len(s) == 315
    assert s.energy[0] == pytest.approx(4940.91) and s.energy[-1] == pytest.approx(5060.59)
    f = [x.metadata["f_Ti"] for x in spectra]
    assert f[0] == pytest.approx(0.7795942, abs=1e-6) and f[-1] == pytest.approx(0.0631461, abs=1e-6)
    assert s.metadata["row"] == 1 and s.source == str(FILM)


def test_film_reader_errors(tmp_path):
    with pytest.raises(SpectrumError, match="Zn K edge"):
        read_spectrum_matrix(FILM, "Zn")  # the fixture holds the Ti block only
    bad = tmp_path / "bad.csv"
    bad.write_text("0 4960 4961 4962\n0.5 0.1 0.2\n")
    with pytest.raises(SpectrumError, match=r"bad.csv, line 2: 3 numbers"):
        read_spectrum_matrix(bad, "Ti")
    bad.write_text("0 4960 4961\n0.5 0.1 x\n")
    with pytest.raises(SpectrumError, match=r"line 2: not a number: 'x'"):
        read_spectrum_matrix(bad, "Ti")
    bad.write_text("0 4960 4961\n")
    with pytest.raises(SpectrumError, match="at least one spectrum"):
        read_spectrum_matrix(bad, "Ti")
    assert energy_blocks(np.array([1.0, 2, 3, 900, 901, 5])) == [(0, 3), (3, 5), (5, 6)]


def test_full_film_file_both_edges(shared_data):
    path = shared_data / "experimental" / "tizn-film" / "TiZn_multimodal_K-edge_spectra.csv"
    ti = read_spectrum_matrix(path, "Ti", label_name="f_Ti")
    zn = read_spectrum_matrix(path, "Zn", label_name="f_Ti")
    assert len(ti) == len(zn) == 100 and len(ti[0]) == 315 and len(zn[0]) == 556


# -- with a model bundle and the CLI -------------------------------------------------------------
@pytest.fixture(scope="module")
def ti_bundle(tmp_path_factory):
    """A tiny Ti oxidation-state bundle trained on the 34 FEFF10 Ti sites, with its training spectra."""
    from xasml.models.bundle import ModelBundle
    from xasml.models.local_nets import SpectrumEnsembleRegressor
    from xasml.preprocess.grid import EnergyGrid

    z = np.load(DATA / "ti_sites.npz")
    X, y = z["X"].astype(float), z["oxidation_state"]
    est = SpectrumEnsembleRegressor(hidden=(16,), epochs=15, n_members=2, seed=0, device="cpu").fit(X, y)
    bundle = ModelBundle(task="oxidation", estimator=est, element="Ti", edge="K",
                         grid=EnergyGrid(4960.0, 5010.0, X.shape[1]), feature_slice=(0, X.shape[1]),
                         reference_mu=X.mean(axis=0), info={"purpose": "test"}, training_spectra=X)
    return bundle.save(tmp_path_factory.mktemp("bundle") / "oxidation")


def test_map_with_bundle_on_film(ti_bundle):
    from xasml.models.bundle import ModelBundle

    bundle = ModelBundle.load(ti_bundle)
    spectra = read_spectrum_matrix(FILM, "Ti", label_name="f_Ti")
    out = map_with_bundle(bundle, spectra, 4, n_restarts=10, seed=0, n_iter=100)
    r = out["result"]
    assert r.weights.shape == (4, 10) and r.mapped.shape == (10, 101)
    assert r.residual.max() < 0.1  # max-normalised spectra: the four motifs describe the film
    assert len(out["predictions"]) == len(out["predictions_sdm"]) == 10
    assert all(np.isfinite(p["prediction"]) and p["std"] >= 0 for p in out["predictions_sdm"])


def test_cli_map_writes_everything(ti_bundle, tmp_path, capsys):
    out = tmp_path / "map"
    rc = main(["measure", "map", "--model", str(ti_bundle), "--n-motifs", "4", "--matrix", "--label-name", "f_Ti",
               "--n-restarts", "5", "--n-iter", "50", str(FILM), "--out", str(out)])
    assert rc == 0
    assert "with SDM" in capsys.readouterr().out
    for name in ("basis.csv", "weights.csv", "measured.csv", "mapped.csv", "basis.png", "predictions.csv",
                 "sdm.json", "config.json", "run.json"):
        assert (out / name).is_file(), name
    s = json.loads((out / "sdm.json").read_text())
    assert s["n_motifs"] == 4 and s["n_restarts"] == 5 and len(s["predictions"]) == 10
    assert s["model"]["element"] == "Ti"
    head = (out / "basis.csv").read_text().splitlines()[0].split(",")
    assert head[0] == "energy_eV" and "simulated_motif_1" in head and "fitted_motif_4" in head
    w = (out / "weights.csv").read_text().splitlines()
    assert len(w) == 11 and w[1].startswith("tizn_film_ti10.csv#1 f_Ti=0.7796")
    # a second run into the same folder needs --overwrite
    rc = main(["measure", "map", "--model", str(ti_bundle), "--n-motifs", "4", "--matrix", str(FILM),
               "--out", str(out)])
    assert rc == 2 and "not empty" in capsys.readouterr().err


@pytest.mark.parametrize("args, match", [
    (["--n-motifs", "11", "--matrix"], "--n-motifs is 11 but 10 spectra"),
    (["--n-motifs", "0", "--matrix"], "--n-motifs is 0"),
    (["--n-motifs", "4"], "tizn_film_ti10.csv"),  # not read as a matrix: a column file the model cannot take
    (["--n-motifs", "2", "--matrix", "--element", "Zn"], "tizn_film_ti10.csv"),
])
def test_cli_map_errors_are_one_line(ti_bundle, tmp_path, capsys, args, match):
    out = tmp_path / "o"
    rc = main(["measure", "map", "--model", str(ti_bundle), *args, str(FILM), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("xasml: error: ") and err.count("\n") == 1 and match in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written on a refused input


def test_cli_map_model_without_training_spectra(ti_bundle, tmp_path, capsys):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(ti_bundle, bare)
    (bare / "training_spectra.npz").unlink()
    rc = main(["measure", "map", "--model", str(bare), "--n-motifs", "2", "--matrix", str(FILM),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "no training_spectra.npz" in err and err.count("\n") == 1
    rc = main(["measure", "map", "--model", str(tmp_path), "--n-motifs", "2", "--matrix", str(FILM),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "no bundle.json" in capsys.readouterr().err
