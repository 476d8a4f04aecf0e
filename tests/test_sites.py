"""Multi-element labelled site tables (``xasml local sites``) on real FEFF data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np

from xasml.datasets.format import read_dataset
from xasml.datasets.sites import build_site_table, simulation_tag, write_site_table


def test_site_table_keeps_absolute_energies_and_records_the_simulation(tmp_path, test_data):
    frame, report = build_site_table([test_data / "local"], ["Cu"], cache=tmp_path / "labels.parquet")
    assert report["sites"] == len(frame) > 0 and set(frame["absorbing_element"]) == {"Cu"}
    assert frame["environment"].notna().all() and frame["coordination_number"].notna().all()
    # OmniXAS spectra are FEFF9: tagged from the xmu.dat header; energies stay absolute (Cu K edge ~8979 eV)
    assert set(frame["simulation"]) == {"FEFF 9.9.1"}
    assert all(8900 < float(np.asarray(e)[0]) < 9100 for e in frame["energy"])
    write_site_table(tmp_path / "s.parquet", frame, report)
    back, info = read_dataset(tmp_path / "s.parquet", kind="sites")
    assert len(back) == len(frame) and info["metadata"]["build"]["sites"] == len(frame)
    # the cache makes a second build free and identical
    again, _ = build_site_table([test_data / "local"], ["Cu"], cache=tmp_path / "labels.parquet")
    assert list(again["environment"]) == list(frame["environment"])


def test_simulation_tag():
    assert simulation_tag({"settings": {"SCF": "3.0 0 30 0.2 1", "FMS": "5.0 0"}}, None) == "FEFF10 v0"
    assert simulation_tag({"settings": {"preset": "mp"}}, None) == "FEFF10 mp"
    assert simulation_tag(None, "9.9.1") == "FEFF 9.9.1"


def test_site_table_over_several_sets_and_elements(tmp_path, shared_data):
    src = tmp_path / "local-v0"
    keys = ["amcsd-74-V", "amcsd-143-Fe"]
    for k in keys:
        shutil.copytree(shared_data / "feff10-local-v0" / "FEFF10" / k, src / "FEFF10" / k)
    res = subprocess.run([sys.executable, "-m", "xasml.cli", "local", "sites", "--data", str(src),
                          str(shared_data.parent / "data" / "omnixas-cu-feff" / "FEFF" / "Cu" / "mp-1692"),
                          "--elements", "V,Fe,Cu", "--out", str(tmp_path / "s.parquet")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["by_element"]["V"] == 1 and rep["by_element"]["Fe"] == 1
    frame, _ = read_dataset(tmp_path / "s.parquet", kind="sites")
    v = frame[frame["absorbing_element"] == "V"].iloc[0]
    assert v["simulation"] == "FEFF10 v0" and v["oxidation_state"] == 4 and v["coordination_number"] == 6  # VO2
    fe = frame[frame["absorbing_element"] == "Fe"].iloc[0]
    assert fe["oxidation_state"] == 3 and fe["environment"] == "O:6"  # hematite
