"""``xasml simulate``: FEFF10 on Dask reproduces the shared v0 spectra, resumes, records failures, packs.

The FEFF runs here are real (feff10-rs): VO2 of the shared ``feff10-local-v0`` set (about 14 CPU-s)
and two one-site elemental structures of ``feff10-topology-v0`` (Li, La; 3-5 CPU-s each), shipped
in ``tests/data/simulate`` with the ``feff.inp``/``xmu.dat`` of those sets.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xasml.errors import DataError
from xasml.io.feff import read_feff_xmu

pytest.importorskip("feff10")
pytest.importorskip("dask.distributed")

from xasml.simulate.engine import plan, simulate  # noqa: E402
from xasml.simulate.feff import FeffSettings, feff_input_text, inequivalent_sites  # noqa: E402
from xasml.simulate.sources import from_amcsd, from_files  # noqa: E402


@pytest.fixture
def sim_data(test_data) -> Path:
    return test_data / "simulate"


def _inputs(tmp_path: Path, sim_data: Path, keys=("amcsd-11150",)) -> Path:
    """Copy the structures only (no spectra) into an input folder."""
    d = tmp_path / "in"
    for k in keys:
        (d / k).mkdir(parents=True)
        shutil.copy(sim_data / k / "structure.cif", d / k / "structure.cif")
    return d


def _cards(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] in ("EDGE", "COREHOLE", "SCF", "FMS", "XANES", "EXCHANGE", "S02", "LDOS", "CONTROL"):
            out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def test_v0_preset_writes_the_shared_sets_cards(sim_data):
    from pymatgen.core import Structure

    s = Structure.from_file(sim_data / "amcsd-11150" / "structure.cif")
    mine = _cards(feff_input_text(s, 0, FeffSettings.from_preset("v0")))
    ref = _cards((sim_data / "amcsd-11150" / "FEFF-XANES" / "000_Li" / "feff.inp").read_text())
    assert mine == ref
    assert "LDOS" not in mine and mine["SCF"] == "3.0 0 30 0.2 1" and mine["FMS"] == "5.0 0"
    mp = _cards(feff_input_text(s, 0, FeffSettings.from_preset("mp")))
    assert "LDOS" in mp and mp["FMS"] != "5.0 0"  # the Materials Project set differs
    over = FeffSettings.from_preset("v0", radius=7.0, tags={"FMS": "6.0 0"})
    assert over.radius == 7.0 and over.tags["FMS"] == "6.0 0" and over.to_dict()["preset"] == "v0"
    with pytest.raises(DataError, match="preset"):
        FeffSettings.from_preset("nope")


def test_inequivalent_sites_match_the_shared_multiplicities(test_data):
    from pymatgen.core import Structure

    folder = test_data / "feff" / "amcsd-10177"  # TaS2
    s = Structure.from_file(folder / "structure.cif")
    meta = json.loads((folder / "material.json").read_text())
    assert [x.to_dict() for x in inequivalent_sites(s, "all")] == meta["sites"]
    assert [x.element for x in inequivalent_sites(s, ["S"])] == ["S"]
    with pytest.raises(DataError, match="not in the structure"):
        inequivalent_sites(s, ["Fe"])
    dis = s.copy()
    dis.replace(0, {"Ta": 0.5, "Nb": 0.5})
    with pytest.raises(DataError, match="disordered"):
        inequivalent_sites(dis, "all")


def test_simulate_reproduces_v0_on_dask(tmp_path, sim_data):
    """VO2 of feff10-local-v0 (amcsd-74-V): same grid, Pearson r >= 0.999 on mu."""
    inp = tmp_path / "in" / "amcsd-74"  # the set's key is <AMCSD key>-<absorber>
    inp.mkdir(parents=True)
    shutil.copy(sim_data / "amcsd-74-V" / "structure.cif", inp / "structure.cif")
    out = tmp_path / "out"
    summary = simulate(from_files([tmp_path / "in"]), out, ["V"], workers=1, show_progress=False)
    assert summary["finished"] and summary["this_run"]["done"] == 1 and summary["this_run"]["failed"] == 0
    new = read_feff_xmu(out / "FEFF10" / "amcsd-74-V" / "FEFF-XANES" / "000_V" / "xmu.dat")
    ref = read_feff_xmu(sim_data / "amcsd-74-V" / "FEFF-XANES" / "000_V" / "xmu.dat")
    assert len(new.energy) == len(ref.energy)
    assert np.max(np.abs(new.energy - ref.energy)) <= 0.01
    assert np.corrcoef(new.mu, ref.mu)[0, 1] >= 0.999
    meta = json.loads((out / "FEFF10" / "amcsd-74-V" / "material.json").read_text())
    ref_meta = json.loads((sim_data / "amcsd-74-V" / "material.json").read_text())
    assert meta["sites"] == ref_meta["sites"] and meta["element"] == "V"
    assert meta["settings"]["preset"] == "v0" and meta["settings"]["radius"] == 6.0 and "feff10-rs" in meta["feff"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["total"]["sites_done"] == 1 and on_disk["total"]["core_seconds"] > 0
    assert on_disk["versions"]["feff10-rs"] and on_disk["settings"]["FMS"] == "5.0 0"
    rows = list(csv.DictReader(open(out / "sites.csv")))
    assert [(r["key"], r["status"]) for r in rows] == [("amcsd-74-V", "done")]
    assert not (out / ".scratch").exists()
    # every reader takes the layout
    from xasml.datasets.local import discover_sites
    from xasml.datasets.topology import read_topology_compound

    spectra, m = read_topology_compound(out / "FEFF10" / "amcsd-74-V")
    assert [s.absorbing_element for s in spectra] == ["V"] and m["elements"] == ["V"]
    assert list(discover_sites(out, "V")["material_id"]) == ["amcsd-74-V"]
    # rerun: nothing to do
    again = simulate(from_files([tmp_path / "in"]), out, ["V"], workers=1, show_progress=False)
    assert again["this_run"]["sites_submitted"] == 0 and again["this_run"]["skipped_existing"] == 1


def test_interrupted_run_resumes_without_recomputing(tmp_path, sim_data):
    inp = _inputs(tmp_path, sim_data, ("amcsd-11150", "amcsd-11149"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "xasml.cli", "simulate", "feff", str(inp), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.time()
    try:
        while time.time() - t0 < 240 and not list(out.glob("FEFF10/*/FEFF-XANES/*/xmu.dat")):
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the harshest interruption: the whole process group
        proc.wait()
    first = list(out.glob("FEFF10/*/FEFF-XANES/*/xmu.dat"))
    assert len(first) >= 1
    for f in first:  # only complete spectra in the layout
        read_feff_xmu(f)
    assert not [p for p in out.glob("FEFF10/**/*") if p.name.startswith((".", "tmp"))]
    stamps = {f: f.stat().st_mtime_ns for f in first}
    res = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["this_run"]["skipped_existing"] == len(first)
    assert summary["this_run"]["done"] == 2 - len(first) and summary["total"]["sites_done"] == 2
    assert {f: f.stat().st_mtime_ns for f in first} == stamps  # nothing recomputed
    assert not (out / ".scratch").exists()


def test_sigterm_to_the_run_stops_its_feff_processes(tmp_path, sim_data):
    # `kill PID` of the run alone (not its process group): the run records what it has and stops its
    # Dask workers and the FEFF stage processes under them; none outlives it
    import psutil

    inp = _inputs(tmp_path, sim_data, ("amcsd-11150", "amcsd-11149"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "xasml.cli", "simulate", "feff", str(inp), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    me = psutil.Process(proc.pid)

    def is_feff(p):
        try:
            return "feff10._worker" in " ".join(p.cmdline())
        except psutil.Error:  # ended (or a zombie) between the listing and the look
            return False

    t0 = time.time()
    feff = []
    try:
        while time.time() - t0 < 120 and not feff:
            feff = [c for c in me.children(recursive=True) if is_feff(c)]
            time.sleep(0.1)
        assert feff, "no FEFF process started"
        kids = me.children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err
    _, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert json.loads((out / "summary.json").read_text())["finished"] is False


def test_cli_shows_a_progress_bar_of_sites_and_core_seconds(tmp_path, sim_data):
    # the one-site La structure (3-5 CPU-s); stderr is a pipe here, as in a log file
    inp = _inputs(tmp_path, sim_data, ("amcsd-11149",))
    cmd = [sys.executable, "-m", "xasml.cli", "simulate", "feff", str(inp), "--out", str(tmp_path / "out"),
           "--workers", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    bars = [part for part in res.stderr.replace("\r", "\n").splitlines() if part.startswith("FEFF sites:")]
    assert bars and "1/1" in bars[-1] and "done 1, failed 0, core-s" in bars[-1], res.stderr
    core_s = float(bars[-1].split("core-s ")[1].rstrip("]"))
    assert abs(core_s - json.loads((tmp_path / "out" / "summary.json").read_text())["this_run"]["core_seconds"]) <= 1
    assert " done   1/1 amcsd-11149 000_La " in res.stderr  # the per-site line of a log file
    assert "1 sites done, 0 failed" in res.stdout
    # --no-progress: nothing on stderr (a rerun with nothing left to compute)
    res = subprocess.run(cmd + ["--no-progress"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "FEFF sites" not in res.stderr and "0 sites done" in res.stdout


def test_failing_site_is_recorded_and_never_stops_the_run(tmp_path, sim_data):
    out = tmp_path / "out"
    # a per-stage time limit far below FEFF's cost makes the site fail inside FEFF's pipeline
    s = simulate(from_files([_inputs(tmp_path, sim_data)]), out, "all", workers=1, timeout=0.05,
                 show_progress=False)
    assert s["finished"] and s["this_run"]["failed"] == 1 and s["total"]["sites_failed"] == 1
    rows = list(csv.DictReader(open(out / "failures.csv")))
    assert rows[0]["key"] == "amcsd-11150" and rows[0]["message"]
    assert not list(out.glob("FEFF10/*/FEFF-XANES/*"))  # no empty or partial site folder
    # a rerun does not retry it unless told to
    p = plan(from_files([tmp_path / "in"]), out, "all")
    assert (len(p.tasks), p.skipped_failed) == (0, 1)
    p = plan(from_files([tmp_path / "in"]), out, "all", retry_failed=True)
    assert len(p.tasks) == 1


def test_plan_refuses_other_settings_and_rejects_bad_structures(tmp_path, sim_data, test_data):
    inp = _inputs(tmp_path, sim_data)
    out = tmp_path / "out"
    plan(from_files([inp]), out, "all")
    with pytest.raises(DataError, match="other FEFF settings"):
        plan(from_files([inp]), out, "all", FeffSettings.from_preset("mp"))
    p = plan(from_files([inp]), tmp_path / "o2", ["Fe"])
    assert p.tasks == [] and "not in the structure" in p.rejected[0]["reason"]
    # one element: the key gets the element, as in feff10-local-v0
    p = plan(from_files([inp]), tmp_path / "o3", ["Li"])
    assert p.tasks[0]["key"] == "amcsd-11150-Li"
    bad = tmp_path / "bad" / "x.cif"
    bad.parent.mkdir()
    bad.write_text("data_x\n_cell_length_a nan\n")
    with pytest.raises(DataError, match="x.cif"):
        list(from_files([bad]))


def test_amcsd_source_gives_primitive_ordered_structures():
    recs = list(from_amcsd(ids=[74]))
    assert [r.key for r in recs] == ["amcsd-74"]
    assert recs[0].meta["reduced_formula"] == "VO2" and recs[0].meta["amcsd_id"] == 74
    assert recs[0].structure.is_ordered
    some = list(from_amcsd(contains=["Ti", "O"], max_elements=2, limit=2))
    assert len(some) == 2 and all({e.symbol for e in r.structure.composition.elements} == {"Ti", "O"} for r in some)


def test_materials_project_source_on_a_recorded_document(tmp_path, test_data, monkeypatch):
    from pymatgen.core import Structure

    doc = json.loads((test_data / "io" / "mp" / "mp-1022728_xas_Cu_K.json").read_text())
    recorded = Structure.from_dict(doc["structure"])

    class FakeMPRester:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def get_structure_by_material_id(self, mid):
            assert mid == "mp-1022728"
            return recorded

    import xasml.io.fetch_cli as fetch_cli

    monkeypatch.setattr(fetch_cli, "_mprester_class", lambda: FakeMPRester)
    from xasml.simulate.sources import from_materials_project

    p = plan(from_materials_project(["mp-1022728"], api_key="x"), tmp_path / "o", ["Cu"])
    meta = json.loads((tmp_path / "o" / "FEFF10" / "mp-1022728-Cu" / "material.json").read_text())
    assert meta["mp_id"] == "mp-1022728" and meta["reduced_formula"] == "Cu3O2"
    assert [t["absorbing_index"] for t in p.tasks] == [s["absorbing_index"] for s in meta["sites"]]
    assert sum(s["multiplicity"] for s in meta["sites"]) == 3  # Cu3O2: three Cu sites
    with pytest.raises(DataError, match="Materials Project id"):
        list(from_materials_project(["1022728"], api_key="x"))


def test_pack_roundtrip_and_builders_read_it(tmp_path, sim_data, test_data):
    from xasml.datasets.format import read_dataset
    from xasml.datasets.topology import build_topology_frame
    from xasml.simulate.pack import feff_root, is_packed, pack_feff_folder, unpack_feff_dataset

    src = tmp_path / "sims" / "FEFF10"
    for k in ("amcsd-11150", "amcsd-11149"):
        shutil.copytree(sim_data / k, src / k)
    shutil.copytree(test_data / "feff" / "amcsd-10177", src / "amcsd-10177")
    info = pack_feff_folder(tmp_path / "sims", tmp_path / "p.parquet", attribution="AMCSD")
    assert info["n_sites"] == 4 and info["n_structures"] == 3 and info["by_element"]["S"] == 1
    assert is_packed(tmp_path / "p.parquet")
    frame, meta = read_dataset(tmp_path / "p.parquet", kind="feff-sites")
    assert {"structure_cif", "xmu_dat", "feff_inp", "material_json"} <= set(frame.columns)
    back = unpack_feff_dataset(tmp_path / "p.parquet", tmp_path / "back")
    for f in src.rglob("*"):
        if f.is_file():
            assert (back / "FEFF10" / f.relative_to(src)).read_bytes() == f.read_bytes()
    monkeypatch_cache = tmp_path / "cache"
    os.environ["XASML_CACHE"] = str(monkeypatch_cache)
    try:
        root = feff_root(tmp_path / "p.parquet")
        assert root.is_relative_to(monkeypatch_cache) and feff_root(tmp_path / "p.parquet") == root
        a, _ = build_topology_frame(tmp_path / "p.parquet", show_progress=False)
        b, _ = build_topology_frame(tmp_path / "sims", show_progress=False)
        assert sorted(a["material_id"]) == sorted(b["material_id"])
        both, rep = build_topology_frame([tmp_path / "sims", tmp_path / "p.parquet"], show_progress=False)
        assert len(both) == len(b)  # a key found twice is read once
    finally:
        del os.environ["XASML_CACHE"]


def test_cli_errors_are_one_line(tmp_path):
    from xasml.cli import main

    for argv, msg in ((["simulate", "feff", str(tmp_path / "nope.cif"), "--out", str(tmp_path / "o")], "nope.cif"),
                      (["simulate", "feff", "--out", str(tmp_path / "o")], "nothing to simulate"),
                      (["simulate", "feff", "--amcsd-ids", "74", "--tag", "FMS", "--out", str(tmp_path / "o")],
                       "CARD=VALUE")):
        res = subprocess.run([sys.executable, "-m", "xasml.cli", *argv], capture_output=True, text=True, timeout=120)
        assert res.returncode != 0 and msg in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert main(["simulate"]) == 2


def test_pack_adds_topology_and_site_labels(tmp_path, sim_data, test_data, shared_data):
    import pandas as pd

    from xasml.datasets.format import read_dataset
    from xasml.simulate.pack import pack_feff_folder

    src = tmp_path / "sims" / "FEFF10"
    shutil.copytree(sim_data / "amcsd-11150", src / "amcsd-11150")  # Li, SM in the Arsenal
    shutil.copytree(test_data / "feff" / "amcsd-10177", src / "amcsd-10177")  # TaS2
    pack_feff_folder(tmp_path / "sims", tmp_path / "p.parquet", topology_labels=shared_data / "topology-labels",
                     site_labels=True)
    frame, _ = read_dataset(tmp_path / "p.parquet", kind="feff-sites")
    li = frame[frame["material_id"] == "amcsd-11150"].iloc[0]
    assert li["subclass"] == "SM" and li["topological"] == 1
    assert json.loads(li["material_json"])["subclass"] == "SM"
    # Li here is fcc (Fm-3m, sg 225): 12 nearest neighbours; TaS2: Ta in a trigonal prism of S
    assert li["coordination_number"] == 12
    ta = frame[(frame["material_id"] == "amcsd-10177") & (frame["absorbing_element"] == "Ta")].iloc[0]
    assert ta["coordination_number"] == 6 and isinstance(ta["environment"], str)
    assert pd.notna(frame["environment"]).all()


def test_forward_builder_reads_the_simulate_layout_and_packed_files(tmp_path, sim_data):
    from xasml.forward.data import load_forward_data
    from xasml.simulate.pack import pack_feff_folder

    src = tmp_path / "sims" / "FEFF10"
    for k in ("amcsd-11150", "amcsd-11149"):
        shutil.copytree(sim_data / k, src / k)
    a = load_forward_data(tmp_path / "sims", element="Li")
    assert a.ids == ["amcsd-11150_000"] and a.X.shape[0] == 1 and np.isfinite(a.y).all()
    pack_feff_folder(tmp_path / "sims", tmp_path / "p.parquet")
    os.environ["XASML_CACHE"] = str(tmp_path / "cache")
    try:
        b = load_forward_data(tmp_path / "p.parquet", element="La")
    finally:
        del os.environ["XASML_CACHE"]
    assert b.ids == ["amcsd-11149_000"]


def test_one_run_per_output_folder(tmp_path, sim_data):
    from xasml.simulate.engine import _folder_lock

    out = tmp_path / "out"
    out.mkdir()
    with _folder_lock(out):
        with pytest.raises(DataError, match="another 'xasml simulate' run"):
            simulate(from_files([_inputs(tmp_path, sim_data)]), out, "all", workers=1, show_progress=False)


def test_unknown_amcsd_id_is_named_and_larixite_keeps_our_warnings():
    import warnings

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        recs = list(from_amcsd(ids=[999999999, 74]))
        warnings.warn("after larixite", UserWarning)
    assert [r.key for r in recs] == ["amcsd-74"]
    text = [str(w.message) for w in got]
    assert any("amcsd-999999999" in t for t in text) and "after larixite" in text


def test_expected_cost_orders_sites(sim_data):
    from xasml.simulate.feff import expected_cost

    vo2 = expected_cost((sim_data / "amcsd-74-V" / "FEFF-XANES" / "000_V" / "feff.inp").read_text())
    li = expected_cost((sim_data / "amcsd-11150" / "FEFF-XANES" / "000_Li" / "feff.inp").read_text())
    assert vo2 > li > 1  # 3 potentials x 82 atoms against 2 x 43


def test_pack_include_incomplete_keeps_the_finished_sites(tmp_path, test_data, capsys):
    # a structure with one site failed (or never run): left out by default (a compound average would be
    # biased), kept with --include-incomplete (each site stands alone in a local-structure set)
    from xasml.cli import main
    from xasml.datasets.format import read_dataset

    mdir = tmp_path / "sims" / "FEFF10" / "amcsd-10177"
    shutil.copytree(test_data / "feff" / "amcsd-10177", mdir)
    shutil.rmtree(mdir / "FEFF-XANES" / "002_S")
    assert main(["simulate", "pack", str(tmp_path / "sims"), "--to", str(tmp_path / "a.parquet")]) == 2
    assert "no structure with every site computed" in capsys.readouterr().err
    assert main(["simulate", "pack", str(tmp_path / "sims"), "--to", str(tmp_path / "b.parquet"),
                 "--include-incomplete", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_element"] == {"Ta": 1}
    frame, _ = read_dataset(tmp_path / "b.parquet", kind="feff-sites")
    assert list(frame["absorbing_element"]) == ["Ta"]
