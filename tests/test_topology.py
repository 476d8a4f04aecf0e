"""Topology catalogues, dataset builder, featuriser and splits, on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xasml.datasets.splits import balanced_split, check_disjoint, split_summary
from xasml.datasets.topology import (
    TopologyFeaturizer,
    average_over_intervals,
    build_topology_frame,
    compounds_from_frame,
    load_topology_frame,
    write_topology_dataset,
)
from xasml.errors import DataError
from xasml.labels.topology import (
    TopologyCatalogue,
    TopologyLabeler,
    formula_key,
    normalize_subclass,
)
from xasml.topology.run import BUNDLED_DATASET

TINY = "topology/feff10"


# ---- catalogues -----------------------------------------------------------------------------------
def test_normalize_subclass_and_formula_key():
    assert normalize_subclass("Triv_Ins") == "trivial"
    assert normalize_subclass("HSL_SM") == normalize_subclass("case3") == "SM"
    assert normalize_subclass("Unknown") is None
    with pytest.raises(DataError, match="unknown topological class"):
        normalize_subclass("weird")
    assert formula_key("Al1Cl7Se1") == formula_key("SeAlCl7") == "AlCl7Se"
    assert formula_key("Bi4Se6") == formula_key("Bi2Se3")


def test_materiae_and_arsenal_real_files(shared_data):
    root = shared_data / "topology-labels"
    mat = TopologyCatalogue.from_materiae(root / "materiae")
    ars = TopologyCatalogue.from_arsenal(root / "arsenal")
    # 28,605 Materiae lines of which 2,855 are "Unknown"; 6,098 + 3,371 + 519 + 824 Arsenal lines
    assert len(mat) == 28605 - 2855
    assert len(ars) == 6098 + 3371 + 519 + 824
    si = mat.lookup(["mp-149"])
    assert [e.subclass for e in si] == ["trivial"]
    # Bi2Se3 (R-3m, 166) is the textbook TI in both catalogues
    assert {e.subclass for e in ars.lookup(formula="Bi2Se3", sg=166)} == {"TI"}
    assert {e.subclass for e in mat.lookup(formula="Bi2Se3", sg=166)} == {"TI"}


def test_labeler_reproduces_materials_csv_and_drops_conflicts(shared_data):
    d = pd.read_csv(shared_data / "feff10-topology-v0" / "materials.csv")
    lab = TopologyLabeler.from_folder(shared_data / "topology-labels", ambiguous_catalogue="abstain")
    out = lab.label_frame(d)
    assert (out["label_status"] == "labelled").all()
    assert (out["label_subclass"] == out["subclass"]).all()
    strict = TopologyLabeler.from_folder(shared_data / "topology-labels").label_frame(d)
    conflicts = strict[strict["label_status"] == "conflict"]
    # e.g. Ge (Fd-3m): Materiae semimetal, Arsenal lists it as both trivial and semimetal
    assert len(conflicts) == 8
    assert "Ge" in set(conflicts["formula"])


def test_csv_catalogue_and_cross_catalogue_conflict(tmp_path, test_data):
    csv = tmp_path / "cat.csv"
    csv.write_text("mp_id,formula,sg,class\nmp-149,Si,227,trivial\nmp-1883,SnTe,225,TCI\n,Bi2Se3,166,TI\n"
                   "mp-x,Foo,1,Unknown\n")
    cat = TopologyCatalogue.from_csv(csv)
    assert len(cat) == 3
    other = TopologyCatalogue.from_csv(test_data / TINY / "materials.csv", class_column="subclass",
                                       mp_id_column="mp_ids")
    lab = TopologyLabeler([cat, other])
    assert lab.label(["mp-1883"]).subclass == "TCI"
    assert lab.label(["mp-1883"]).by_catalogue == {"cat": ["TCI"], "materials": ["TCI"]}
    conflict = TopologyLabeler([cat, TopologyCatalogue.from_csv(
        _write(tmp_path / "b.csv", "mp_id,class\nmp-149,TI\n"))]).label(["mp-149"])
    assert conflict.status == "conflict"
    bad = _write(tmp_path / "bad.csv", "mp_id,klass\nmp-1,TI\n")
    with pytest.raises(DataError, match="missing column 'class'"):
        TopologyCatalogue.from_csv(bad)


def _write(p, text):
    p.write_text(text)
    return p


# ---- dataset ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_frame(test_data):
    frame, report = build_topology_frame(test_data / TINY, show_progress=False)
    return frame, report


def test_build_tiny_dataset(tiny_frame, tmp_path):
    frame, report = tiny_frame
    assert report["labelled"] == 10 and report["compounds_read"] == 10
    comps = compounds_from_frame(frame)
    by_id = {c.material_id: c for c in comps}
    pbo = by_id["amcsd-10011"]
    assert pbo.elements == ["O", "Pb"] and pbo.topological == 0 and pbo.subclass == "trivial"
    assert pbo.sites["Pb"][0].multiplicity == 4
    assert by_id["amcsd-11404"].subclass == "TCI" and by_id["amcsd-11404"].topological == 1
    path = write_topology_dataset(tmp_path / "t.parquet", frame, report)
    back, info = load_topology_frame(path)
    assert len(back) == len(frame) and info["kind"] == "parquet"
    np.testing.assert_allclose(back["mu"][0], frame["mu"][0])


def test_featurizer_grid_standardisation_roundtrip(tiny_frame):
    comps = compounds_from_frame(tiny_frame[0])
    feat = TopologyFeaturizer().fit(comps)
    g = feat.grids_["Se"]
    assert g.n_points == 200 and g.stop - g.start == pytest.approx(56.0)
    data = feat.transform(comps)
    assert data.X.shape == (10, 2, 200) and data.mask.sum() == 16
    se_rows = data.X[(data.Z == 34) & data.mask]
    # per-element standardisation: mean of the spectra's means 0, mean of their stds 1 (training set)
    assert se_rows.mean(axis=1).mean() == pytest.approx(0.0, abs=1e-5)
    assert se_rows.std(axis=1).mean() == pytest.approx(1.0, abs=1e-4)
    again = TopologyFeaturizer.from_dict(feat.to_dict()).transform(comps)
    np.testing.assert_allclose(again.X, data.X, atol=1e-6)
    # a compound with an unknown element keeps its known ones
    assert feat.transform(comps[:1]).elements == [comps[0].elements]


def test_average_over_intervals():
    X = np.arange(10.0)[None]
    out = average_over_intervals(X, step_ev=0.5, delta_e=1.0)
    np.testing.assert_allclose(out[0, :4], [0.5, 0.5, 2.5, 2.5])
    assert out.shape == X.shape
    np.testing.assert_allclose(average_over_intervals(X, 0.28, 0.28), X)


# ---- splits ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled_compounds():
    frame, _ = load_topology_frame(BUNDLED_DATASET)
    return compounds_from_frame(frame)


def test_split_deterministic_disjoint_balanced(bundled_compounds):
    els = [c.elements for c in bundled_compounds]
    sub = [c.subclass for c in bundled_compounds]
    a = balanced_split(els, sub, seed=3)
    b = balanced_split(els, sub, seed=3)
    c = balanced_split(els, sub, seed=4)
    assert a == b and a != c
    check_disjoint(a, len(els))
    n = len(els)
    assert abs(len(a["train"]) / n - 0.70) < 0.06
    assert abs(len(a["val"]) / n - 0.15) < 0.04 and abs(len(a["test"]) / n - 0.15) < 0.04
    # the topological fraction of each split is close to the overall one
    top = np.array([s != "trivial" for s in sub])
    for k in ("val", "test"):
        assert abs(top[a[k]].mean() - top.mean()) < 0.12
    # every element with >= 7 compounds appears in training and in at least one of val/test
    summ = split_summary(a, els, sub)
    counts = pd.Series([e for es in els for e in es]).value_counts()
    for el in counts[counts >= 7].index:
        assert el in summ["train"]["elements"]
        assert el in summ["val"]["elements"] or el in summ["test"]["elements"]


def test_check_disjoint_raises():
    with pytest.raises(DataError, match="both"):
        check_disjoint({"train": [0, 1], "test": [1]})


def test_split_compounds_fixed_and_balanced():
    from xasml.datasets.topology import compounds_from_frame, load_topology_frame
    from xasml.errors import DataError
    from xasml.topology.config import load_config
    from xasml.topology.run import BUNDLED_DATASET, split_compounds

    frame, _ = load_topology_frame(BUNDLED_DATASET, show_progress=False)
    compounds = compounds_from_frame(frame)
    cfg = load_config(None)
    idx, method = split_compounds(compounds, cfg, seed=0)
    assert method.startswith("balanced_split") and [len(idx[k]) for k in ("train", "val", "test")] == [177, 32, 31]
    ids = [c.material_id for c in compounds]
    cfg["split"]["fixed"] = {"val": [ids[i] for i in idx["val"]], "test": [ids[i] for i in idx["test"]]}
    again, method = split_compounds(compounds, cfg, seed=5)  # the seed no longer matters
    assert method.startswith("fixed") and {k: sorted(v) for k, v in again.items()} == \
        {k: sorted(v) for k, v in idx.items()}
    cfg["split"]["fixed"] = {"val": ["no-such-compound"], "test": []}
    with pytest.raises(DataError, match="no-such-compound"):
        split_compounds(compounds, cfg, seed=0)
