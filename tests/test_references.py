"""The measured reference library and the evidence it gives (xasml.references), on real data."""

from __future__ import annotations

import numpy as np
import pytest

from xasml.cli import main
from xasml.errors import DataError
from xasml.references.combine import (assemble_evidence, collect_evidence, combine, conformal_scale,
                                      gather_evidence, load_calibration)
from xasml.references.evidence import (Unknown, edge_position_valence, linear_combination_fit, nearest_standards,
                                       standards_for, unknown_from_row, unknown_from_spectrum)
from xasml.references.library import (LIBRARY_FILE, entry_energy, load_library, read_library,
                                      shipped_library_path)
from xasml.references.pca import pca_series, target_transform


@pytest.fixture(scope="module")
def lib():
    return load_library()


def _xdl(shared_data, rel):
    return shared_data / "experimental" / "xas-data-library" / "data" / rel


def test_shipped_library_is_small_and_described(lib):
    assert shipped_library_path().stat().st_size < 2_000_000
    assert len(lib) >= 250
    assert set(lib["element"]) >= {"V", "Cr", "Mn", "Fe", "Ni", "Cu", "Zn", "As", "S", "Se"}
    assert lib["licence"].notna().all() and lib["source"].notna().all()
    fe3o4 = lib[lib["compound"] == "Fe3O4 (magnetite)"]
    assert len(fe3o4) >= 2 and np.allclose(fe3o4["valence"], 8 / 3, atol=1e-3)  # mixed valence, both files
    assert lib[lib["compound"] == "FeN"]["valence"].isna().all()  # unclear: nearest-standard evidence only
    nio = lib[lib["id"] == "athena/NiO/NiO.000"].iloc[0]  # an Athena project's group (xraylarch examples, MIT)
    assert nio["valence"] == 2 and nio["licence"].startswith("MIT") and nio["calibration"] == "athena-reference-group"
    mno = lib[lib["id"] == "Mn/MnO_rt_01"].iloc[0]
    assert mno["calibration"] == "reference-channel" and mno["environment"] == "O:6" and mno["cn"] == 6
    e = entry_energy(mno)
    assert e[0] < mno["e0"] < e[-1] and mno["e0"] < mno["e_half"] < mno["e0"] + 10


def test_nearest_standard_of_fe2o3_is_fe3(shared_data, lib):
    from xasml.io.reader import read_spectrum

    u = unknown_from_spectrum(read_spectrum(_xdl(shared_data, "Fe/Fe2O3_rt_01.xdi")))
    near = nearest_standards(u, lib, k=3, exclude_compounds=["Fe2O3 (hematite)"])
    assert near[0]["valence"] == 3.0, near
    assert all(abs(n["shift"]) <= 1.0 for n in near) and near[0]["similarity"] > 0.99
    # with itself in the library, the file is its own nearest standard at zero shift
    assert nearest_standards(u, lib, k=1)[0]["id"] == "Fe/Fe2O3_rt_01"


def _mno_mn2o3_mix(lib):
    """The MnO and Mn2O3 library rows, MnO's energy grid (eV) and the 50/50 mix of their flattened spectra on it."""
    from xasml.references.library import entry_flat

    mn = standards_for(lib, "Mn", "K")
    a = mn[mn["id"] == "Mn/MnO_rt_01"].iloc[0]
    b = mn[mn["id"] == "Mn/Mn2O3_rt_01"].iloc[0]
    e = entry_energy(a)
    return a, b, e, 0.5 * entry_flat(a, e) + 0.5 * entry_flat(b, e)


def test_lcf_recovers_a_50_50_mix_of_two_real_standards(lib):
    a, b, e, mix = _mno_mn2o3_mix(lib)
    u = Unknown("Mn", "K", e, mix, 0.5 * (a["e0"] + b["e0"]), 0.5 * (a["e_half"] + b["e_half"]), "mix")
    fit = linear_combination_fit(u, lib)
    best = fit["best"]
    weights = {c["compound"]: c["weight"] for c in best["components"]}
    assert weights.get("MnO (manganosite)", 0) == pytest.approx(0.5, abs=0.03)
    assert weights.get("Mn2O3 (bixbyite)", 0) == pytest.approx(0.5, abs=0.03)
    assert fit["valence"] == pytest.approx(2.5, abs=0.05)
    assert best["shift"] == pytest.approx(0.0, abs=0.15) and best["r_factor"] < 1e-3
    assert fit["n_combinations"] > 4 and all(sum(c["weight"] for c in f["components"]) == pytest.approx(1, abs=1e-3)
                                             for f in fit["fits"])


def test_evidence_curves_redraw_the_fit_and_the_nearest_standards(lib):
    """The curves the beamline page draws: the best LCF rebuilt from the library is the mix it fitted."""
    from xasml.references.evidence import evidence_curves, unknown_from_curves

    a, b, e, mix = _mno_mn2o3_mix(lib)
    u = unknown_from_curves("Mn", "K", e, mix, 0.5 * (a["e0"] + b["e0"]), "mix")
    assert a["e_half"] - 1 < u.e_half < b["e_half"] + 1  # the half-height energy of the mix lies between
    ev = {"lcf": linear_combination_fit(u, lib), "nearest": nearest_standards(u, lib, k=3)}
    c = evidence_curves(ev, lib)
    assert len(c["lcf"]["energy"]) == ev["lcf"]["n_points"]
    assert np.max(np.abs(c["lcf"]["flat"] - np.interp(c["lcf"]["energy"], e, mix))) < 0.03
    assert [n["id"] for n in c["nearest"]] == [n["id"] for n in ev["nearest"]]
    n0, r0 = c["nearest"][0], lib[lib["id"] == ev["nearest"][0]["id"]].iloc[0]
    ok = np.isfinite(np.asarray(r0["flat"], float))  # the stored flat is NaN where the scan had no data
    assert n0["energy"][0] == pytest.approx(entry_energy(r0)[ok][0] + ev["nearest"][0]["shift"])
    assert len(n0["energy"]) == len(n0["flat"]) == ok.sum() and np.all(np.isfinite(n0["flat"]))
    assert evidence_curves({"lcf": None, "nearest": []}, lib) == {"lcf": None, "nearest": []}


def test_cached_library_rereads_a_changed_user_library(shared_data, tmp_path):
    from xasml.references.library import add_standards, cached_library

    user = tmp_path / "mylib"
    add_standards(user, [_xdl(shared_data, "Mn/MnO2_rt_01.xdi")], "my MnO2", 4.0)
    first = cached_library([user])
    assert cached_library([user]) is first and "my MnO2" in set(first["compound"])
    add_standards(user, [_xdl(shared_data, "Mn/MnO_rt_01.xdi")], "my MnO", 2.0)
    again = cached_library([user])
    assert again is not first and {"my MnO2", "my MnO"} <= set(again["compound"])


def test_edge_position_valence_of_mno2_leave_one_compound_out(lib):
    row = lib[lib["id"] == "Mn/MnO2_rt_01"].iloc[0]
    ev = edge_position_valence(unknown_from_row(row), lib, exclude_compounds=[row["compound"]])
    assert ev["n_standards"] == 3 and ev["slope"] > 0
    scale = load_calibration()["scales"]["edge_position"]
    assert abs(ev["valence"] - 4) <= 2 * ev["sigma"] * scale, ev
    assert 3.0 < ev["valence"] < 5.0


def test_evidence_abstains_without_standards(lib):
    co = lib[lib["element"] == "Co"].iloc[0]
    ev = collect_evidence(unknown_from_row(co), lib, exclude_compounds=[])
    assert ev["evidence"]["edge_position"] is None and ev["evidence"]["lcf"]["valence"] is None
    assert ev["combined"]["oxidation_state"] is None
    ti = Unknown("Ti", "K", entry_energy(co), np.asarray(co["flat"]), 4980.0, 4985.0, "ti")
    ev = collect_evidence(ti, lib, model={"prediction": 3.9, "std": 0.3})
    assert ev["evidence"]["nearest"] == [] and ev["flagged"]
    assert ev["combined"]["methods"] == ["model"] and ev["combined"]["sigma"] > 0.3
    assert any("no Ti K standard" in w for w in ev["warnings"])


def test_combination_widens_sigma_by_the_spread_and_tests_disagreement():
    cal = {"scales": {"model": 1.0, "lcf": 1.0, "edge_position": 1.0, "combined": 1.0}}
    agree = combine({"model": (3.0, 0.3), "lcf": (3.1, 0.3), "edge_position": None}, cal)
    assert not agree["disagree"] and agree["oxidation_state"] == pytest.approx(3.05)
    # inverse-variance σ and the answers' standard deviation in quadrature
    assert agree["sigma"] == pytest.approx(np.hypot(0.3 / np.sqrt(2), np.std([3.0, 3.1], ddof=1)), abs=1e-3)
    far = combine({"model": (1.0, 0.3), "lcf": (3.0, 0.3), "edge_position": (3.1, 0.4)}, cal)
    assert far["disagree"] and far["widened_by"] > 1 and far["sigma"] > 1.0
    # the conformal scale: ±2kσ covers the ceil((n+1)·0.95)-th smallest |error|/σ
    errs, sig = np.arange(1, 21) * 0.1, np.full(20, 0.1)
    k = conformal_scale(errs, sig)
    assert 2 * k * 0.1 >= 2.0 - 1e-9


def _loco(lib, compound, model=None):
    """The evidence for the first standard of a compound with the compound left out of the library."""
    row = lib[lib["compound"] == compound].iloc[0]
    return assemble_evidence(gather_evidence(unknown_from_row(row), lib, exclude_compounds=[compound]), model)


def test_a_model_that_disagrees_with_standards_that_fit_is_averaged_in_and_flagged(lib):
    # K2Cr2O7 without K2Cr2O7 in the library: the LCF (K2CrO4, Na2CrO4: R < 0.005) and the edge line
    # say 6; a model answering 4.2 is averaged in, not hidden: the answer widens (disagree regime) and
    # is flagged with the gap, so a beamline user sees that the lines of evidence differ
    cal = load_calibration()
    ev = _loco(lib, "K2Cr2O7", {"prediction": 4.2, "std": 0.6, "status": "ok"})
    assert ev["evidence"]["lcf"]["best"]["r_factor"] < 0.005 and ev["evidence"]["lcf"]["valence"] > 5.5
    assert ev["evidence"]["model"]["used"] and "model" in ev["combined"]["methods"]
    assert ev["combined"]["regime"] == "disagree"
    assert ev["evidence"]["model"]["sigma"] == pytest.approx(0.6 * cal["scales_disagree"]["model"], abs=2e-3)
    assert ev["flagged"] and any("the model (4.20) and the LCF" in r for r in ev["flag_reasons"]), ev["flag_reasons"]
    assert 4.2 < ev["combined"]["oxidation_state"] < 6
    # a model that agrees: the agree regime, nothing flagged
    ev = _loco(lib, "K2Cr2O7", {"prediction": 5.8, "std": 0.6, "status": "ok"})
    assert ev["combined"]["regime"] == "agree" and not ev["flagged"], ev["flag_reasons"]


def test_a_metal_answer_is_the_metal_evidence_and_standards_are_shown(lib):
    # the Cu foils without any Cu metal in the library: LCF and edge line cannot reach 0
    ev = _loco(lib, "Cu metal", {"prediction": 0.0, "std": 0.5, "status": "metal"})
    assert ev["combined"]["methods"] == ["model"] and ev["combined"]["oxidation_state"] == 0
    assert ev["evidence"]["lcf"]["valence"] > 0.5 and not ev["flagged"]
    assert any("metal evidence" in w for w in ev["warnings"])


def test_flags_an_extrapolation_and_a_single_line(lib):
    # a Cr answer far below the Cr standards' valences (3-6), as a molecular Cr(0)/Cr(III) complex gives
    ev = _loco(lib, "Cr2S3", {"prediction": 0.4, "std": 0.5, "status": "ok"})
    assert ev["flagged"] and any("outside the valences" in r for r in ev["flag_reasons"]), ev["flag_reasons"]
    # W: an LCF over two valences and no edge line (fewer than 3 compounds left): one line, flagged
    ev = _loco(lib, "W metal")
    assert ev["combined"]["methods"] == ["lcf"] and ev["flagged"]
    assert any("one line of evidence" in r for r in ev["flag_reasons"])
    assert any("only 2 valences" in w for w in ev["warnings"])


def test_a_compound_the_foil_stands_in_for_is_flagged(lib):
    # NiS without NiS in the library: the best fit is 89 % Ni foil + NiO (R 0.007) and every line says
    # about 0.7 for Ni(II); the edge rises like a compound's, not a foil's, so the foil only stands in
    # for a standard the library lacks: flagged, with that reason
    ev = _loco(lib, "NiS", {"prediction": 0.85, "std": 0.55, "status": "ok"})
    assert ev["combined"]["oxidation_state"] < 1.2
    assert any("metal foil, but the edge rises like a compound's" in r for r in ev["flag_reasons"]), ev["flag_reasons"]
    # a compound whose fit is not mostly foil (Fe3C: 73 % foil + magnetite) is not flagged for that
    ev = _loco(lib, "Fe3C (cohenite)", {"prediction": 0.53, "std": 0.5, "status": "ok"})
    assert not any("metal foil, but" in r for r in ev["flag_reasons"])


def test_model_sigma_is_not_shrunk_per_element(lib):
    # every Zn standard is Zn(II): a per-element scale once made the Zn model's σ 0.01, whatever the file
    ev = _loco(lib, "ZnO (zincite)", {"prediction": 2.03, "std": 0.32, "status": "ok"})
    assert ev["evidence"]["model"]["sigma"] >= 0.25 and ev["combined"]["sigma"] >= 0.2


def test_pca_counts_two_components_of_a_real_two_standard_series(lib):
    from xasml.references.library import entry_flat

    a = lib[lib["id"] == "Fe/FeO_rt_01"].iloc[0]
    b = lib[lib["id"] == "Fe/Fe2O3_rt_01"].iloc[0]
    e = a["e0"] + np.arange(-20, 60, 0.25)
    fa, fb = entry_flat(a, e), entry_flat(b, e)
    rng = np.random.default_rng(0)
    X = np.array([x * fa + (1 - x) * fb + rng.normal(0, 2e-3, e.size) for x in np.linspace(0, 1, 8)])
    p = pca_series(e, X)
    assert p.n_components == 2
    assert target_transform(p, fa)["r_factor"] < 1e-4
    c = lib[lib["id"] == "Cu/CuO_tenorite_13K_01"].iloc[0]  # another element: not in the series
    assert target_transform(p, np.interp(e - a["e0"] + c["e0"], entry_energy(c), np.nan_to_num(c["flat"])))[
        "r_factor"] > 10 * target_transform(p, fa)["r_factor"]
    with pytest.raises(DataError):
        pca_series(e, X[:2])


def test_references_add_round_trip(shared_data, tmp_path, capsys):
    user = tmp_path / "mylib"
    f = _xdl(shared_data, "Mn/MnO2_rt_02.xdi")
    assert main(["references", "add", "--references", str(user), "--compound", "my MnO2", "--formula", "MnO2",
                 "--valence", "4", "--environment", "O:6", "--cn", "6", str(f)]) == 0
    assert (user / LIBRARY_FILE).is_file()
    assert main(["references", "add", "--references", str(user), "--compound", "my unknown",
                 str(_xdl(shared_data, "Mn/MnO_rt_02.xdi"))]) == 0
    mine = read_library(user)
    assert list(mine["compound"]) == ["my MnO2", "my unknown"]
    assert mine["valence"].iloc[0] == 4 and np.isnan(mine["valence"].iloc[1])
    assert mine["calibration"].iloc[0] == "reference-channel"
    capsys.readouterr()
    assert main(["references", "list", "--references", str(user), "--element", "Mn"]) == 0
    out = capsys.readouterr().out
    assert "my MnO2" in out and "MnO2 (pyrolusite)" in out and str(user) in out
    both = load_library(user)
    assert {"my MnO2", "MnO2 (pyrolusite)"} <= set(both["compound"])
    # the user's standard is evidence for a measured MnO2
    assert main(["references", "evidence", "--references", str(user), "--json",
                 str(_xdl(shared_data, "Mn/MnO2_rt_03.xdi"))]) == 0
    import json

    rec = json.loads(capsys.readouterr().out)
    assert rec["evidence"]["nearest"][0]["compound"] in ("my MnO2", "MnO2 (pyrolusite)")
    assert set(rec["evidence"]) == {"model", "lcf", "edge_position", "nearest"}
    assert abs(rec["combined"]["oxidation_state"] - 4) < 0.5


@pytest.mark.parametrize("argv, expect", [
    (["references", "add", "--references", "{tmp}/lib", "--compound", "x", "{tmp}/missing.xdi"], "missing.xdi"),
    (["references", "add", "--references", "{tmp}/lib", "--compound", "x", "--valence", "three", "{mno}"], "--valence"),
    (["references", "list", "--references", "{tmp}/nowhere"], "no reference library here"),
    (["references", "list", "--references", "{tmp}/bad.parquet"], "not a readable Parquet"),
    (["references", "pca", "{mno}", "{mno}"], "at least 3 spectra"),
])
def test_bad_input_is_one_line(shared_data, tmp_path, capsys, argv, expect):
    (tmp_path / "bad.parquet").write_text("not parquet\n")
    mno = _xdl(shared_data, "Mn/MnO_rt_01.xdi")
    argv = [a.format(tmp=tmp_path, mno=mno) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xasml: error:") and len(err.splitlines()) == 1 and expect in err, err
    assert not (tmp_path / "lib" / LIBRARY_FILE).exists()


def test_local_predict_oxidation_carries_the_evidence(shared_data, test_data, capsys):
    import json

    mn = _xdl(shared_data, "Mn/Mn3O4_rt_01.xdi")
    assert main(["local", "predict", "--task", "oxidation", "--json", str(mn)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["evidence"]) == {"model", "lcf", "edge_position", "nearest"}
    assert r["evidence"]["model"]["value"] == pytest.approx(r["prediction"], abs=1e-3)
    c = r["combined"]
    assert c["methods"] == ["model", "lcf", "edge_position"] and abs(c["oxidation_state"] - 8 / 3) <= 2 * c["sigma"]
    assert main(["local", "predict", "--task", "oxidation", "--no-evidence", "--json", str(mn)]) == 0
    assert "evidence" not in json.loads(capsys.readouterr().out)
    assert main(["local", "predict", "--task", "oxidation", str(mn)]) == 0
    out = capsys.readouterr().out
    assert "combined oxidation state" in out and "LCF:" in out and "nearest standards:" in out
    xmu = next((test_data / "local").rglob("xmu.dat"))  # computed spectra: the model alone
    assert main(["local", "predict", "--task", "oxidation", "--json", str(xmu)]) == 0
    assert "evidence" not in json.loads(capsys.readouterr().out.splitlines()[0])


def test_pyrolusite_and_rutile_come_out_tetravalent_or_flagged(shared_data, lib):
    """The issue's misses: pyrolusite MnO2 (model 2.61 then) and rutile-like TiO2 (model 1.92 then).
    A pyrolusite scan against the library without that scan (another beamline's MnO2 finds the
    library's) answers Mn(IV); the Zn-Ti-O film's TiO2 reference, for which no Ti standard exists,
    is flagged (one unchecked line of evidence)."""
    from xasml.io.reader import read_spectrum
    from xasml.local.predict import predict_files
    from xasml.models.bundle import ModelBundle, find_bundle
    from xasml.references.combine import collect_evidence
    from xasml.references.evidence import unknown_from_spectrum

    s = read_spectrum(_xdl(shared_data, "Mn/MnO2_rt_02.xdi"))
    m = ModelBundle.load(find_bundle("oxidation", None, "Mn")).predict([s])[0]
    ev = collect_evidence(unknown_from_spectrum(s), lib[lib["id"] != "Mn/MnO2_rt_02"],
                          model={"prediction": m["prediction"], "std": m["std"],
                                 "out_of_domain": m.get("out_of_domain"), "status": "ok"})
    assert abs(ev["combined"]["oxidation_state"] - 4) < 0.5 or ev["flagged"]
    tio2 = predict_files([shared_data / "experimental" / "tizn-film" / "ti_ref.csv"], "oxidation", element="Ti",
                         edge="K")[0]
    assert abs(tio2["combined"]["oxidation_state"] - 4) < 0.5 or tio2["flagged"]
