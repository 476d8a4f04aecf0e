"""``xasml curate`` on real spectra: every curation step of the paper (Sec. III.B) reproduced.

Real data: 150 OmniXAS Cu K-edge FEFF9 site spectra (tests/data/local/cu_sites.parquet), the
FEFF10 compound folders under tests/data, two Materials Project XAS documents, and - when the
shared data folder is present - OmniXAS compound folders.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xasml.curate import CurateOptions, curate
from xasml.curate import algorithms as alg
from xasml.datasets.format import read_dataset, write_dataset

OFF = dict(selection=False, exact_duplicates=False, near_duplicates=False, outliers=False)


@pytest.fixture(scope="module")
def cu(test_data) -> pd.DataFrame:
    frame = pd.read_parquet(test_data / "local" / "cu_sites.parquet")
    frame = frame[["material_id", "absorbing_element", "edge", "absorbing_index", "multiplicity", "energy", "mu",
                   "source", "kind"]].reset_index(drop=True)
    frame["energy"] = [np.asarray(e, float) for e in frame["energy"]]
    frame["mu"] = [np.asarray(m, float) for m in frame["mu"]]
    return frame


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "in.parquet") -> Path:
    return write_dataset(tmp_path / name, frame.reset_index(drop=True), kind="test")


def _add(frame: pd.DataFrame, row: pd.Series, **changes) -> pd.DataFrame:
    d = row.to_dict()
    d.update(changes)
    new = pd.DataFrame({k: [v] for k, v in d.items()})
    return pd.concat([frame, new], ignore_index=True)


def _run(tmp_path, inputs, **opts):
    out = tmp_path / "out.parquet"
    rep = curate(inputs, out, CurateOptions(**opts), report_path=tmp_path / "report.json")
    frame, info = read_dataset(out)
    return frame, info, rep


def _grid_of(info, el):
    g = info["metadata"]["curate"]["grids"][el]
    return g["start"] + g["step"] * np.arange(g["n_points"])


# --- algorithms ------------------------------------------------------------------------------
def test_batch_interpolation_equals_np_interp(cu):
    rng = np.random.default_rng(0)
    E = list(cu["energy"])
    M = list(cu["mu"])
    eoff = np.concatenate([[0], np.cumsum([len(e) for e in E])])
    start = np.array([e[0] for e in E]) + rng.uniform(-2, 3, len(E))  # some below the first energy
    step = 0.175
    Y, st, filled = alg.interpolate_rows(np.concatenate(E), np.concatenate(M), eoff, eoff, start, step, 200)
    assert (st == alg.OK).all()
    for r in range(len(E)):
        x = start[r] + step * np.arange(200)
        np.testing.assert_array_equal(Y[r], np.interp(x, E[r], M[r]))
    assert filled.sum() == (start < np.array([e[0] for e in E])).sum() > 0


def test_np_interp_fallback_gives_the_same_values(cu, monkeypatch):
    E, M = list(cu["energy"][:30]), list(cu["mu"][:30])
    off = np.concatenate([[0], np.cumsum([len(e) for e in E])])
    args = (np.concatenate(E), np.concatenate(M), off, off, np.full(30, 8983.5), 0.175, 200)
    fast, _, _ = alg.interpolate_rows(*args)
    monkeypatch.setattr(alg, "_KERNEL", alg._interp_loop)
    slow, _, _ = alg.interpolate_rows(*args)
    np.testing.assert_array_equal(fast, slow)


def test_exact_duplicates_checks_values_not_only_the_hash(cu):
    X = np.stack([np.interp(8984 + 0.175 * np.arange(200), e, m) for e, m in zip(cu["energy"][:5], cu["mu"][:5])])
    X = np.concatenate([X, X[[1, 1, 3]]])           # rows 5, 6 repeat row 1; row 7 repeats row 3
    keys = alg.block_means(X, alg.block_bounds(200))
    group = np.zeros(len(X), dtype=np.int64)
    dup = alg.exact_duplicates(group, keys, np.ones(len(X), bool), lambda rows: X[rows])
    assert np.flatnonzero(dup).tolist() == [5, 6, 7]
    keys[:] = 0.0                                   # every hash collides: values still decide
    dup = alg.exact_duplicates(group, keys, np.ones(len(X), bool), lambda rows: X[rows])
    assert np.flatnonzero(dup).tolist() == [5, 6, 7]
    group[5] = 1                                    # another element: not a duplicate
    dup = alg.exact_duplicates(group, alg.block_means(X, alg.block_bounds(200)), np.ones(len(X), bool),
                               lambda rows: X[rows])
    assert np.flatnonzero(dup).tolist() == [6, 7]


def test_near_duplicate_search_is_exact_against_brute_force(cu):
    X = np.stack([np.interp(8984 + 0.175 * np.arange(200), e, m) for e, m in zip(cu["energy"], cu["mu"])])
    rng = np.random.default_rng(1)
    X = np.concatenate([X, X[:40] + rng.uniform(-0.03, 0.03, (40, 200))])  # close pairs at every distance
    for tol in (0.005, 0.02, 0.06):
        keys = alg.block_means(X, alg.block_bounds(200))
        i, j, stats = alg.near_duplicate_pairs(keys, tol, lambda rows: X[rows], chunk_pairs=97)
        D = np.max(np.abs(X[:, None, :] - X[None, :, :]), axis=2)
        bi, bj = np.nonzero(np.triu(D <= tol, k=1))
        assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(bi.tolist(), bj.tolist()))
        assert stats["pairs"] == len(bi) and stats["candidates"] >= stats["prefiltered"] >= stats["pairs"]


def test_keep_first_resolution_of_chains():
    # a~b, b~c, a!~c: b goes (close to kept a), c stays (its only close earlier row b was removed)
    removed = alg.greedy_keep_first(3, np.array([0, 1]), np.array([1, 2]))
    assert removed.tolist() == [False, True, False]


# --- the steps on real spectra --------------------------------------------------------------
def test_grid_starts_at_each_elements_minimum_energy(tmp_path, test_data, cu):
    feff = test_data / "topology" / "feff10"
    frame, info, rep = _run(tmp_path, [_write(tmp_path, cu), feff], **OFF)
    assert rep["totals"]["kept"] == rep["totals"]["input"]
    from xasml.io.feff import read_feff_xmu

    mins = {"Cu": min(e[0] for e in cu["energy"])}
    for f in feff.rglob("xmu.dat"):
        s = read_feff_xmu(f)
        mins[s.absorbing_element] = min(mins.get(s.absorbing_element, np.inf), s.energy[0])
    grids = info["metadata"]["curate"]["grids"]
    assert set(grids) == set(mins)
    for el, g in grids.items():
        assert g["start"] == mins[el] and g["n_points"] == 200 and g["step"] == pytest.approx(35 / 200)
    # every output row is on its element's grid and equals linear interpolation of the input
    for row in frame.itertuples():
        np.testing.assert_array_equal(row.energy, _grid_of(info, row.absorbing_element))
    cu_out = frame[frame.absorbing_element == "Cu"].set_index("input_row")
    for r in (0, 77, 149):
        np.testing.assert_allclose(cu_out.loc[r, "mu"], np.interp(_grid_of(info, "Cu"), cu.energy[r], cu.mu[r]),
                                   rtol=0, atol=1e-12)
    assert frame["kind"].eq("standardized").all()


def test_explicit_start_and_window(tmp_path, cu):
    frame, info, _ = _run(tmp_path, [_write(tmp_path, cu)], n_points=141, window=35.25, start={"Cu": 8990.0}, **OFF)
    g = info["metadata"]["curate"]["grids"]["Cu"]
    assert (g["start"], g["n_points"], g["step"]) == (8990.0, 141, 0.25)
    assert len(frame.energy[0]) == 141


def test_exact_duplicate_of_a_real_spectrum_is_removed(tmp_path, cu):
    data = _add(cu, cu.iloc[5], material_id="copy")
    frame, _, rep = _run(tmp_path, [_write(tmp_path, data)], **{**OFF, "exact_duplicates": True})
    assert rep["steps"]["exact_duplicates"]["exact_duplicate"] == 1
    assert 150 not in set(frame.input_row) and 5 in set(frame.input_row)


def test_near_duplicate_within_tolerance_removed_beyond_kept(tmp_path, cu):
    rng = np.random.default_rng(2)
    close = cu.mu[7] + rng.uniform(-0.0045, 0.0045, len(cu.mu[7]))           # every point < tol
    far = cu.mu[8].copy()
    far[60:66] += 0.006                                                    # 6 knots beyond tol
    data = _add(_add(cu, cu.iloc[7], mu=close), cu.iloc[8], mu=far)
    frame, _, rep = _run(tmp_path, [_write(tmp_path, data)],
                         **{**OFF, "exact_duplicates": True, "near_duplicates": True})
    kept = set(frame.input_row)
    assert 150 not in kept and 7 in kept            # the copy within tolerance goes, the original stays
    assert 151 in kept and 8 in kept                # one grid point beyond tolerance: both stay
    assert rep["elements"]["Cu"]["removed"].get("near_duplicate", 0) >= 1
    # the removal is exact: every removed spectrum is within tol of a kept one at every point
    full, info, _ = _run(tmp_path, [_write(tmp_path, data)], **OFF)
    X = np.stack(full.set_index("input_row").loc[sorted(full.input_row), "mu"])
    removed = sorted(set(full.input_row) - kept)
    for r in removed:
        assert min(np.max(np.abs(X[r] - X[k])) for k in kept if k < r) <= 0.005


def test_scaled_spectrum_is_a_3_sigma_outlier(tmp_path, cu):
    data = _add(cu, cu.iloc[10], mu=cu.mu[10] * 3)
    frame, _, rep = _run(tmp_path, [_write(tmp_path, data)], **{**OFF, "outliers": True})
    assert 150 not in set(frame.input_row)
    # the rule, recomputed: any point outside mean ± 3 std (population) of the element's spectra
    full, _, _ = _run(tmp_path, [_write(tmp_path, data)], **OFF)
    X = np.stack(full.sort_values("input_row").mu)
    mean, std = X.mean(0), X.std(0)
    out = np.flatnonzero(np.any((X < mean - 3 * std) | (X > mean + 3 * std), axis=1))
    assert set(out) == set(range(151)) - set(frame.input_row)
    assert rep["steps"]["outliers"]["outlier"] == len(out)


def test_element_filtering_and_paper_preset(tmp_path, test_data):
    feff = [test_data / "topology" / "feff10", test_data / "evaluation" / "feff10-ag"]
    frame, _, rep = _run(tmp_path, feff, **{**OFF, "elements": ["Se", "Ag"]})
    assert set(frame.absorbing_element) == {"Se", "Ag"}
    assert rep["steps"]["element_filter"]["element_filtered"] == rep["totals"]["input"] - len(frame)
    frame, _, _ = _run(tmp_path, feff, **{**OFF, "drop_elements": ["Se"]})
    assert "Se" not in set(frame.absorbing_element)
    opts = CurateOptions.preset("paper", **OFF)
    rep = curate(feff, tmp_path / "p.parquet", opts)
    kept = {el for el, e in rep["elements"].items() if e["kept"]}
    assert kept and all(el in ("Ag", "Se", "Sn", "Sb", "S", "O", "Cd", "Cu") for el in kept)
    assert rep["elements"]["Te"]["removed"] == {"element_filtered": rep["elements"]["Te"]["input"]}  # Z = 52
    assert rep["elements"]["Sb"]["kept"] == rep["elements"]["Sb"]["input"]                          # Z = 51


def test_selection_keeps_normalised_and_notes_unknown(tmp_path, cu):
    data = cu.copy()
    data.loc[:9, "source"] = "measured/raw.csv"        # kind "mu" not from FEFF: raw
    data.loc[10:14, "kind"] = None                      # does not say
    data.loc[15:19, "kind"] = "norm"
    frame, _, rep = _run(tmp_path, [_write(tmp_path, data)], **{**OFF, "selection": True})
    assert rep["steps"]["selection"]["not_normalised"] == 10
    assert not set(range(10)) & set(frame.input_row)
    assert rep["elements"]["Cu"]["normalisation_unknown_kept"] == 5 and rep["notes"]
    data["normalized"] = [False] * 3 + [True] * 147     # an explicit column decides
    frame, _, rep = _run(tmp_path, [_write(tmp_path, data)], **{**OFF, "selection": True})
    assert rep["steps"]["selection"]["not_normalised"] == 3


def test_failed_interpolation_is_counted_not_fatal(tmp_path, cu):
    data = cu.iloc[:20].copy()
    bad_mu = cu.mu[0].copy()
    bad_mu[40] = np.nan
    data = _add(data, cu.iloc[0], mu=bad_mu)                                            # NaN
    data = _add(data, cu.iloc[1], energy=cu.energy[1][:40], mu=cu.mu[1][:40])          # ends before the grid
    data = _add(data, cu.iloc[2], energy=cu.energy[2] + 500)                            # starts after it
    data = _add(data, cu.iloc[3], energy=cu.energy[3][:1], mu=cu.mu[3][:1])            # one point
    frame, _, rep = _run(tmp_path, [_write(tmp_path, data)], **OFF)
    assert rep["steps"]["grid"] == {"invalid": 2, "no_overlap": 1, "grid_beyond_end": 1, "grid_below_start": 0}
    assert len(frame) == 20
    frame, _, rep = _run(tmp_path, [_write(tmp_path, cu)], fill_below="none", **OFF)
    starts = np.array([e[0] for e in cu.energy])
    assert rep["steps"]["grid"]["grid_below_start"] == (starts > starts.min()).sum()


def test_counts_add_up_and_streaming_equals_one_batch(tmp_path, test_data, cu):
    data = _add(_add(cu, cu.iloc[3]), cu.iloc[4], mu=cu.mu[4] * 3)
    inputs = [_write(tmp_path, data), test_data / "topology" / "feff10", test_data / "io" / "mp" / "xas_docs.json"]
    a = curate(inputs, tmp_path / "a.parquet", CurateOptions(batch_size=7))
    b = curate(inputs, tmp_path / "b.parquet", CurateOptions())
    for rep in (a, b):
        for el, e in rep["elements"].items():
            assert e["input"] == e["kept"] + sum(e["removed"].values()), el
        t = rep["totals"]
        assert t["input"] == t["kept"] + t["removed"] == sum(e["input"] for e in rep["elements"].values())
        assert t["removed"] == sum(sum(s.values()) for s in rep["steps"].values())
    assert a["elements"] == b["elements"] and a["steps"] == b["steps"]
    fa, _ = read_dataset(tmp_path / "a.parquet")
    fb, _ = read_dataset(tmp_path / "b.parquet")
    assert fa.input_row.tolist() == fb.input_row.tolist()
    np.testing.assert_array_equal(np.stack(fa.mu), np.stack(fb.mu))


def test_each_pass_shows_a_bar_over_every_spectrum(tmp_path, test_data, cu, monkeypatch, capsys):
    import xasml.curate.core as core
    from xasml.utils import progress_bar

    bars = []

    def shown(total, desc=""):  # the bars are hidden when stderr is not a terminal: show them here
        bars.append(progress_bar(total, desc, disable=False))
        return bars[-1]

    monkeypatch.setattr(core, "progress_bar", shown)
    rep = curate([_write(tmp_path, cu)], tmp_path / "a.parquet", CurateOptions(batch_size=7), show_progress=True)
    assert [b.desc for b in bars] == ["curate pass 1/3: groups", "curate pass 2/3: grid", "curate pass 3/3: output"]
    assert all(b.n == b.total == rep["totals"]["input"] for b in bars)
    assert "curate pass 2/3: grid" in capsys.readouterr().err


def test_conversion_of_feff_and_mp_inputs(tmp_path, test_data):
    rep = curate([test_data / "feff", test_data / "io" / "mp" / "xas_docs.json"], tmp_path / "o.parquet",
                 CurateOptions(**OFF))
    conv = {c["format"]: c for c in rep["conversions"]}
    assert conv["feff"]["spectra"] == 3 and conv["mp"]["spectra"] == 2 and conv["feff"]["unreadable"] == 0
    frame, info = read_dataset(tmp_path / "o.parquet")
    assert info["kind"] == "curated" and len(frame) == 5
    assert rep["elements"]["Cu"]["normalisation_unknown"] == 2   # MP documents do not say


def test_unreadable_feff_file_is_reported(tmp_path, test_data):
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(test_data / "feff", root)
    bad = root / "broken" / "FEFF-XANES" / "000_Cu" / "xmu.dat"
    bad.parent.mkdir(parents=True)
    bad.write_text("# Abs Z=29\n1 2 3\n")
    rep = curate([root], tmp_path / "o.parquet", CurateOptions(**OFF))
    assert rep["conversions"][0]["unreadable"] == 1 and "xmu.dat" in rep["conversions"][0]["errors"][0]


# --- CLI ---------------------------------------------------------------------------------------
def test_cli_end_to_end(tmp_path, test_data, cu, capsys):
    from xasml.cli import main

    src = _write(tmp_path, _add(cu, cu.iloc[0]))
    out = tmp_path / "cur.parquet"
    rc = main(["curate", str(src), str(test_data / "topology" / "feff10"), "--out", str(out), "--quiet",
               "--preset", "paper", "--near-duplicate-tol", "0.005", "--sigma", "3"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    rep = json.loads((tmp_path / "cur.report.json").read_text())
    assert printed["kept"] == rep["totals"]["kept"] == len(read_dataset(out)[0])
    assert rep["steps"]["exact_duplicates"]["exact_duplicate"] >= 1
    assert rep["settings"]["near_duplicate_elements"] == ["Cd", "Zn", "Cr", "S"]
    assert (tmp_path / "cur.report.md").read_text().startswith("# xasml curate")
    rc = main(["curate", str(src), "--out", str(tmp_path / "x.parquet"), "--no-outliers", "--no-near-duplicates",
               "--no-exact-duplicates", "--no-selection", "--elements", "Fe", "--quiet"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["kept"] == 0


def test_cli_bad_input_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"absorbing_element": ["Cu"], "mu": [[1.0, 2.0]]}).to_parquet(bad)
    p = subprocess.run([sys.executable, "-m", "xasml.cli", "curate", str(bad), "--out", str(tmp_path / "o.parquet")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert "bad.parquet" in lines[0] and "'energy'" in lines[0]
    assert not (tmp_path / "o.parquet").exists()


def test_cli_config_file_sets_the_run_and_the_command_line_overrides_it(tmp_path, cu, capsys):
    from xasml.cli import main

    src = _write(tmp_path, _add(cu, cu.iloc[0]))
    cfg = tmp_path / "curate.toml"
    cfg.write_text('n_points = 50\nwindow = 20.0\nexact_duplicates = false\nelements = ["Fe"]\n')
    out = tmp_path / "a.parquet"
    assert main(["curate", str(src), "--out", str(out), "--quiet", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] == 0  # only Fe kept: no Cu left
    assert main(["curate", str(src), "--out", str(out), "--quiet", "--config", str(cfg), "--elements", "Cu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rep = json.loads((tmp_path / "a.report.json").read_text())
    s = rep["settings"]
    assert (s["n_points"], s["window"], s["exact_duplicates"], s["elements"]) == (50, 20.0, False, ["Cu"])
    assert printed["kept"] == len(read_dataset(out)[0]) > 0
    assert rep["steps"].get("exact_duplicates", {}).get("exact_duplicate", 0) == 0  # the file switched it off
    assert len(read_dataset(out)[0].mu[0]) == 50


def test_options_are_an_xasml_config():
    from xasml.config import XasmlConfig
    from xasml.errors import DataError

    assert issubclass(CurateOptions, XasmlConfig)
    assert CurateOptions(elements=["cu"]).elements == ["Cu"]
    assert CurateOptions.preset("paper", sigma=2).sigma == 2.0
    with pytest.raises(DataError, match="unknown curate preset"):
        CurateOptions.preset("papr")
    with pytest.raises(DataError, match="'n_points'"):
        CurateOptions.from_dict({"n_points": 1})
    bad = CurateOptions.model_construct(**{**CurateOptions().model_dump(), "sigma": 0.0})
    with pytest.raises(DataError, match="'sigma'"):
        bad.validate()


# --- shared data -------------------------------------------------------------------------------
def test_omnixas_compound_folders(tmp_path, shared_data):
    root = shared_data / "omnixas-cu-feff" / "FEFF" / "Cu"
    folders = sorted(p for p in root.iterdir() if any(p.glob("FEFF-XANES/*/xmu.dat")))[:25]
    rep = curate(folders, tmp_path / "o.parquet", CurateOptions())
    assert rep["totals"]["input"] == sum(len(list(f.glob("FEFF-XANES/*/xmu.dat"))) for f in folders)
    assert rep["steps"]["selection"]["not_normalised"] == 0     # FEFF normalises mu itself
    assert rep["totals"]["kept"] > 0.8 * rep["totals"]["input"]
