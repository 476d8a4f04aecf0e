"""Multi-element local-structure models, the simulation energy scale and calibrated bundles, on real data.

Data: tests/data/local/sites_small.parquet (108 labelled FEFF site spectra of Fe, Mn, Ti, Cu; see
tests/data/local/README.md), the FEFF10 foils in data/feff10-foils.parquet, measured XDI files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xasml.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SITES = DATA / "local" / "sites_small.parquet"
CUO_XDI = DATA / "local" / "CuO_tenorite_13K_01.xdi"


def _frame():
    from xasml.datasets.format import read_dataset

    return read_dataset(SITES, kind="sites")[0]


# -- energy scale ------------------------------------------------------------------------------

def test_shipped_energy_scales_cover_the_3d_metals_and_omnixas_cu():
    from xasml.preprocess.energy_scale import energy_offset, energy_scales

    sc = energy_scales()
    assert set(sc["FEFF10 v0"]) == {"Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"}
    # FEFF10 with the v0 settings puts the K edges of these compounds within a few eV of experiment
    # (its metal foils 7-11 eV above)
    assert all(-6 < v < 6 for v in sc["FEFF10 v0"].values())
    assert -8 < energy_offset("Cu", "FEFF 9.9.1") < -3
    with pytest.raises(DataError, match="no energy offset for Fe spectra of 'FEFF 9.9.1'"):
        energy_offset("Fe", "FEFF 9.9.1")


def test_standards_offset_is_the_median_of_measured_standards():
    data = json.loads((ROOT / "src" / "xasml" / "data" / "local" / "energy_scales.json").read_text())
    fe = data["offsets"]["FEFF10 v0"]["Fe"]
    assert {s["file"] for s in fe["standards"]} >= {"Fe/Fe2O3_rt_01.xdi", "Fe/Fe3O4_rt_01.xdi"}
    assert fe["offset_eV"] == pytest.approx(float(np.median([s["offset_eV"] for s in fe["standards"]])))
    # the measured standards match their simulations closely once the simulation is compared as computed
    assert min(x["correlation"] for x in fe["standards"]) > 0.9
    # an element without standards: its foil plus the (standards - foil) difference interpolated in Z
    # (Co between Fe and Ni)
    co = data["offsets"]["FEFF10 v0"]["Co"]
    diff = data["standards_minus_foil_eV"]
    assert co["offset_eV"] == pytest.approx(co["offset_foil_eV"] + (diff["Fe"] + diff["Ni"]) / 2, abs=0.011)


def test_match_offset_finds_a_known_shift_of_a_simulated_spectrum():
    from xasml.io.feff import read_feff_xmu
    from xasml.preprocess.energy_scale import match_offset
    from xasml.simulate.pack import feff_root
    from xasml.spectrum import Spectrum

    foil = feff_root(ROOT / "data" / "feff10-foils.parquet") / "FEFF10" / "Fe-foil" / "FEFF-XANES" / "000_Fe" / "xmu.dat"
    sim = read_feff_xmu(foil, absorbing_element="Fe")
    # a "measured" copy 6.5 eV higher, on a wide grid with a pre- and post-edge (as an experiment has)
    e = np.arange(sim.energy[0] - 150.0, sim.energy[-1] + 6.5, 0.25)
    mu = np.interp(e - 6.5, sim.energy, sim.mu, left=sim.mu[0])
    meas = Spectrum(energy=e, mu=mu, absorbing_element="Fe", edge="K")
    off, r = match_offset(sim, meas, float(sim.energy[0]) + 20.0)
    assert off == pytest.approx(6.5, abs=0.1)
    assert r > 0.99


def test_metals_have_their_own_energy_scale():
    from xasml.preprocess.energy_scale import energy_offset, energy_scales, scale_key

    assert scale_key("FEFF10 v0", "Co2") == "FEFF10 v0 metal"
    assert scale_key("FEFF10 v0", "NiAl") == "FEFF10 v0 metal"
    assert scale_key("FEFF10 v0", "Fe2O3") == "FEFF10 v0"
    assert scale_key("FEFF10 v0", "Cr3Si") == "FEFF10 v0"
    assert scale_key("FEFF10 v0", None) == "FEFF10 v0"
    assert scale_key("FEFF10 v0 metal", "Fe") == "FEFF10 v0 metal"
    data = json.loads((ROOT / "src" / "xasml" / "data" / "local" / "energy_scales.json").read_text())
    sc = energy_scales()
    assert sc["FEFF10 v0 metal"]["Fe"] == pytest.approx(data["offsets"]["FEFF10 v0"]["Fe"]["offset_foil_eV"])
    # FEFF10 v0 puts a metal's edge several eV away from the insulators' (relative to experiment)
    assert energy_offset("Fe", "FEFF10 v0") - energy_offset("Fe", "FEFF10 v0 metal") > 5


def test_a_structure_of_metals_only_is_neutral():
    from pymatgen.core import Lattice, Structure

    from xasml.labels.site import oxidation_states

    fe = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert oxidation_states(fe) == ([0, 0], "ok")
    nial = Structure(Lattice.cubic(2.887), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert oxidation_states(nial) == ([0, 0], "ok")


def test_match_simulations_chains_one_code_to_another():
    from xasml.io.feff import read_feff_xmu
    from xasml.preprocess.energy_scale import match_simulations
    from xasml.simulate.pack import feff_root

    foil = feff_root(ROOT / "data" / "feff10-foils.parquet") / "FEFF10" / "Fe-foil" / "FEFF-XANES" / "000_Fe" / "xmu.dat"
    sim = read_feff_xmu(foil, absorbing_element="Fe")
    other = sim.replace(energy=sim.energy + 3.0)  # "another code" 3 eV higher
    off, r = match_simulations(other, sim, -9.0, float(sim.energy[0]) + 5.0)
    assert off == pytest.approx(-12.0, abs=0.06) and r > 0.999


def test_foil_offset_puts_the_simulated_fe_foil_on_the_tabulated_edge():
    from xasml.io.feff import read_feff_xmu
    from xasml.edges import edge_energy
    from xasml.preprocess.energy_scale import energy_offset, foil_offset
    from xasml.preprocess.normalize import find_e0
    from xasml.simulate.pack import feff_root

    foil = feff_root(ROOT / "data" / "feff10-foils.parquet") / "FEFF10" / "Fe-foil" / "FEFF-XANES" / "000_Fe" / "xmu.dat"
    sim = read_feff_xmu(foil, absorbing_element="Fe")
    rec = foil_offset(sim, "Fe")
    # the shipped value comes from Fe standards (oxides, siderite) whose structures are simulated: FEFF10
    # v0 places a metal's edge about 8 eV higher than the insulators' relative to experiment
    assert rec["offset_eV"] < energy_offset("Fe", "FEFF10 v0") - 5
    shifted = sim.replace(energy=sim.energy + rec["offset_eV"])
    # e0 falls on FEFF grid points (about 0.3 eV apart near the edge)
    assert find_e0(shifted.energy, shifted.mu) == pytest.approx(edge_energy("Fe", "K"), abs=0.35)


# -- data --------------------------------------------------------------------------------------

def test_structure_key_joins_one_structure_across_absorbers_and_sets():
    from xasml.datasets.sites import structure_key

    assert structure_key("amcsd-123-Fe") == structure_key("amcsd-123") == "amcsd-123"
    assert structure_key("mp-1692") == "mp-1692"


def test_spectra_keep_their_chemical_shift_on_one_grid_per_element():
    from xasml.local.multi import MultiConfig, MultiData

    data = MultiData(_frame(), MultiConfig(data=[], elements=["Ti", "Mn", "Fe", "Cu"]))
    assert data.X.shape == (108, 100 + 4)
    assert np.allclose(data.X[:, :100].max(axis=1), 1.0)
    # one-hot codes in the element order of the config
    assert data.elements_order == ["Ti", "Mn", "Fe", "Cu"]
    assert (data.X[data.element == "Fe", 100 + 2] == 1).all()
    # no per-spectrum alignment: Fe(III) sites reach half height later than Fe(II) sites on the grid
    fe = data.element == "Fe"
    os_ = data.y["oxidation"][fe]
    half = np.argmax(data.X[fe, :100] >= 0.5, axis=1)
    assert half[os_ == 3].mean() > half[os_ == 2].mean()


def test_a_simulation_without_an_offset_is_dropped_and_reported():
    from xasml.local.multi import MultiConfig, MultiData

    f = _frame()
    f.loc[f["absorbing_element"] == "Ti", "simulation"] = "FEFF10 custom"
    data = MultiData(f, MultiConfig(data=[], elements=["Ti", "Mn", "Fe", "Cu"]))
    assert "Ti" not in set(data.element)
    assert data.dropped["no_energy_offset"] == {"Ti FEFF10 custom": 24}


def test_warm_start_fine_tunes_and_keeps_classes():
    from xasml.models.local_nets import SpectrumClassifier, SpectrumEnsembleRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    y = np.array(["a", "b", "c"] * 20)
    clf = SpectrumClassifier(epochs=2, seed=0).fit(X, y)
    w0 = [p.detach().clone() for p in clf.net_.parameters()]
    clf.set_params(warm_start=True, epochs=1).fit(X[:20][y[:20] != "c"], y[:20][y[:20] != "c"])
    assert list(clf.classes_) == ["a", "b", "c"]
    assert any(not np.allclose(a.numpy(), b.detach().numpy()) for a, b in zip(w0, clf.net_.parameters()))
    with pytest.raises(DataError, match="not among the fitted classes"):
        clf.fit(X[:5], np.array(["z"] * 5))
    reg = SpectrumEnsembleRegressor(epochs=2, n_members=2, seed=0).fit(X, np.arange(60.0))
    m0 = reg.target_mean_
    reg.set_params(warm_start=True).fit(X[:10], np.full(10, 100.0))
    assert reg.target_mean_ == m0


# -- the run, the bundles, prediction -----------------------------------------------------------

@pytest.fixture(scope="module")
def multi_run(tmp_path_factory):
    from xasml.local.multi import MultiConfig, run_multi

    out = tmp_path_factory.mktemp("multi") / "run"
    cfg = MultiConfig(data=[str(SITES)], elements=["Ti", "Mn", "Fe", "Cu"], n_folds=2, epochs=3, finetune_epochs=2,
                      n_members=2, min_sites=20, min_class_sites=5, balance_elements=50, n_jobs=2)
    metrics = run_multi(cfg, out, log=lambda *a: None)  # folds and final models in 2 processes
    return out, metrics


def test_run_scores_every_regime_per_element_and_ships_bundles(multi_run):
    out, m = multi_run
    for el in ("Ti", "Mn", "Fe", "Cu", "all"):
        row = m["scores"][el]
        for reg in ("per-element", "universal", "fine-tuned"):
            assert {"oxidation_mae", "oxidation_baseline_mae", "cn_mae", "cn_coverage_2sigma"} <= set(row[reg])
    # folds grouped by structure: no structure in two folds
    folds = json.loads((out / "splits.json").read_text())
    seen = [g for v in folds.values() for g in v]
    assert len(seen) == len(set(seen))
    assert (out / "report" / "regimes.md").read_text().startswith("| element |")
    for el in ("Ti", "Mn", "Fe", "Cu"):
        for task in ("coordination", "cn", "oxidation"):
            meta = json.loads((out / "models" / el / task / "bundle.json").read_text())
            # oxidation on the calibrated scale; geometry tasks area-match measured spectra
            assert meta["alignment"] == "calibrated"  # every task on the calibrated scale (geometry_alignment)
            assert meta["elements"] == ["Ti", "Mn", "Fe", "Cu"]
            assert meta["info"]["regime"] in ("per-element", "universal", "fine-tuned")
            assert (out / "models" / el / task / "training_spectra.npz").exists()


def test_predict_picks_the_model_of_the_files_element(multi_run, capsys):
    from xasml.cli import main
    from xasml.models.bundle import find_bundle
    from xasml.local.predict import predict_files

    out, _ = multi_run
    models = out / "models"
    assert find_bundle("oxidation", models, "Fe") == models / "Fe" / "oxidation"
    with pytest.raises(DataError, match="no Zn oxidation model"):
        find_bundle("oxidation", models, "Zn")
    res = predict_files([CUO_XDI], "oxidation", models)
    assert res[0]["absorbing_element"] == "Cu" and np.isfinite(res[0]["prediction"])
    assert res[0]["calibration"]["method"] == "reference-channel" and "out_of_domain" in res[0]
    geo = predict_files([CUO_XDI], "coordination", models)[0]
    assert "alignment_shift_eV" not in geo and geo["calibration"]["method"] == "reference-channel"  # calibrated scale
    code = main(["local", "predict", "--task", "oxidation", "--model", str(models), "--element", "Cu", "--edge", "K",
                 "--calibrate", "none", "--json", str(CUO_XDI)])
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and rec["calibration"]["method"] == "none"
    assert any("no reference foil" in w for w in rec["warnings"])


def test_a_computed_spectrum_gets_its_simulations_offset(multi_run):
    from xasml.models.bundle import ModelBundle
    from xasml.spectrum import Spectrum

    out, _ = multi_run
    b = ModelBundle.load(out / "models" / "Fe" / "cn")
    f = _frame()
    r = f[f["absorbing_element"] == "Fe"].iloc[0]
    s = Spectrum(energy=np.asarray(r["energy"]), mu=np.asarray(r["mu"]), absorbing_element="Fe", edge="K",
                 metadata={"feff_version": "10.0.0"}, source="x/FEFF-XANES/000_Fe/xmu.dat")
    X, rec = b.prepare_full([s])
    assert rec[0]["energy_offset_eV"] == pytest.approx(b.info["energy_scale"]["FEFF10 v0"])
    assert "taken as the v0 settings" in rec[0]["warnings"][0]
    assert X.shape == (1, b.grid.n_points)


def test_a_metal_foil_is_flagged_as_outside_the_training_data(shared_data):
    from xasml.local.predict import predict_files

    lib = shared_data / "experimental" / "xas-data-library" / "data"
    foil, oxide, cu2s = predict_files([lib / "Fe" / "Fe_Foil_rt_2016Foils.xdi", lib / "Fe" / "Fe2O3_rt_01.xdi",
                                       lib / "Cu" / "Cu2S_13K_01.xdi"], "coordination")
    assert any("looks metallic" in w for w in foil["warnings"]) and foil["metal_evidence"]["strength"] == "metal"
    assert not any("metallic" in w for w in oxide["warnings"]) and oxide["status"] == "ok"
    # Cu(I) sulfide: edge at the foil's and no white line, but a steep rise: warned, answered as before
    assert any("looks metallic or low-valent" in w for w in cu2s["warnings"])
    assert cu2s["status"] == "ok" and cu2s["prediction"] != "metal"


#: the metal foils of the XAS Data Library (V, Fe, Co, Ni, Cu, Zn; it has no Cr or Mn foil)
FOILS = ["V/V_foil.xdi", "Fe/Fe_Foil_rt_2016Foils.xdi", "Fe/Fe_metal_rt_01.xdi", "Fe/Hansel2001_Fe_foil_xanes_001.xdi",
         "Co/co_metal_rt.xdi", "Ni/Ni_metal_rt_01.xdi", "Cu/Cu_Foil_rt_2016Foils.xdi", "Cu/cu_metal_rt.xdi",
         "Zn/Zn_foil.xdi", "Zn/Chorover13BM_Znfoil_rt_01.xdi"]


def test_metal_foils_are_metal_not_a_ligand_polyhedron(shared_data):
    """Issue 16 item 5: every foil gets "metal" with its element's lattice (the classifier alone said T:4
    at p 1.00 for V and Co), oxidation state 0, and a coordination number only where the model agrees
    with the lattice."""
    from xasml.local.metal import LATTICE_CN, METAL_LATTICE
    from xasml.local.predict import predict_files

    lib = shared_data / "experimental" / "xas-data-library" / "data"
    res = predict_files([lib / f for f in FOILS], "all")
    assert len(res) == len(FOILS) and not any("error" in r for r in res)
    for r in res:
        env, cn, ox = r["coordination"], r["cn"], r["oxidation"]
        el = r["absorbing_element"]
        assert r["metal_evidence"]["strength"] == "metal", r["file"]
        assert env["prediction"] == "metal" and env["status"] == "metal" and "probabilities" not in env
        assert env["lattice"] == METAL_LATTICE[el] and "not read from the spectrum" in env["lattice_source"]
        assert env["model_prediction"] in env["model_probabilities"]  # the model's answer is kept aside
        assert ox["prediction"] == 0.0 and ox["status"] == "metal" and ox["model_prediction"] is not None
        if cn["status"] == "metal":
            assert abs(cn["prediction"] - LATTICE_CN[env["lattice"]]) <= 2
        else:
            assert cn["status"] == "abstained" and cn["prediction"] is None
        assert any(w.startswith("metal: the model's environment") for w in r["warnings"])
    by_el = {r["absorbing_element"]: r for r in res}
    assert by_el["Ni"]["cn"]["status"] == "metal"          # 11.7 next to the fcc lattice's 12
    assert by_el["Cu"]["cn"]["status"] == "abstained"      # 5.2 contradicts fcc: no answer


def test_a_carbide_is_not_called_a_metal(shared_data):
    from xasml.local.predict import predict_files

    lib = shared_data / "experimental" / "xas-data-library" / "data"
    r = predict_files([lib / "Fe" / "Fe3C_rt_01.xdi"], "coordination")[0]
    assert r["prediction"] != "metal" and r["status"] == "ok" and "metal_evidence" not in r


def test_plain_text_prints_the_warnings_and_task_all_answers_three_tasks(shared_data, capsys):
    from xasml.cli import main

    lib = shared_data / "experimental" / "xas-data-library" / "data"
    assert main(["local", "predict", "--task", "oxidation", str(lib / "Cu" / "Cu_Foil_rt_2016Foils.xdi")]) == 0
    text = capsys.readouterr().out
    assert "  warning: " in text and "no reference foil" in text and "oxidation state 0 from the metal evidence" in text
    assert main(["local", "predict", "--task", "all", str(lib / "Fe" / "Fe2O3_rt_01.xdi")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("(Fe):")
    assert [ln.split(":")[0].strip() for ln in lines[1:4]] == ["environment", "coordination number", "oxidation state"]
    assert main(["local", "predict", "--task", "all", "--json", str(lib / "Fe" / "Fe2O3_rt_01.xdi")]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert {"coordination", "cn", "oxidation", "calibration", "warnings"} <= set(rec)
    assert 2.0 < rec["oxidation"]["prediction"] < 4.0 and rec["coordination"]["status"] == "ok"


def test_athena_reference_groups_calibrate_but_are_not_answered(shared_data):
    from xasml.local.predict import predict_files

    res = predict_files([shared_data / "experimental" / "athena-projects" / "NiO.prj"], "oxidation", element="Ni")
    assert res and all("Ref" not in r["file"] for r in res)
    assert all(r["calibration"]["method"] == "athena-reference-group" for r in res)
    assert all(1.0 < r["prediction"] < 3.5 for r in res)  # NiO is Ni(II)


def test_too_few_environments_skip_the_classifier_with_a_warning(tmp_path, monkeypatch, capsys):
    from tqdm.auto import tqdm

    import xasml.local.multi as multi
    from xasml.local.multi import MultiConfig, run_multi

    # the progress bars (hidden when stderr is not a terminal) shown and drawn at every step
    monkeypatch.setattr(multi, "progress_bar", lambda total, desc="": tqdm(total=total, desc=desc, leave=False,
                                                                          disable=False, mininterval=0))
    said = []
    cfg = MultiConfig(data=[str(SITES)], elements=["Fe", "Mn"], n_folds=2, epochs=1, finetune_epochs=1, n_members=2,
                      min_sites=20, min_class_sites=1000, tasks=["coordination", "oxidation"])
    m = run_multi(cfg, tmp_path / "run", log=said.append)
    err = capsys.readouterr().err
    assert "cross-validation (task x fold)" in err and "2/2 " in err and "oxidation fold" in err  # 1 task x 2 folds
    assert "final models (universal + per element, per task)" in err and "1/1 " in err  # one task
    assert any("environment classifier skipped" in s for s in said)
    assert "oxidation_mae" in m["scores"]["Fe"]["universal"] and "macro_f1" not in m["scores"]["Fe"]["universal"]
    assert not (tmp_path / "run" / "models" / "Fe" / "coordination").exists()
    assert (tmp_path / "run" / "models" / "Fe" / "oxidation" / "bundle.json").exists()


def test_parallel_folds_give_the_serial_predictions(tmp_path):
    from xasml.datasets.sites import load_sites
    from xasml.local.multi import MultiConfig, MultiData, cross_validate

    cfg = MultiConfig(data=[str(SITES)], elements=["Fe", "Mn"], n_folds=2, epochs=1, finetune_epochs=1, n_members=2,
                      min_sites=20, tasks=["oxidation"])
    data = MultiData(load_sites(cfg.data, cfg.elements), cfg)
    serial = cross_validate(data, cfg, log=lambda *a: None)
    parallel = cross_validate(data, cfg.model_copy(update={"n_jobs": 2}), log=lambda *a: None)
    np.testing.assert_array_equal(serial["fold"], parallel["fold"])
    for reg in ("universal", "per-element", "fine-tuned"):
        assert np.isfinite(serial["oxidation"][reg]["pred"]).sum() > 10
        for key in ("pred", "std"):
            np.testing.assert_allclose(serial["oxidation"][reg][key], parallel["oxidation"][reg][key], rtol=1e-6)


def test_the_fine_tuned_regime_is_shipped_when_within_tolerance_of_the_best():
    from xasml.local.multi import _best_regime

    scores = {"Cu": {"per-element": {"macro_f1": 0.642, "oxidation_mae": 0.20},
                     "universal": {"macro_f1": 0.627, "oxidation_mae": 0.23},
                     "fine-tuned": {"macro_f1": 0.640, "oxidation_mae": 0.23}}}
    assert _best_regime(scores, "Cu", "coordination") == "per-element"
    assert _best_regime(scores, "Cu", "coordination", tolerance=0.02) == "fine-tuned"
    # an MAE 15 % worse is not within 2 %
    assert _best_regime(scores, "Cu", "oxidation", tolerance=0.02) == "per-element"
