"""Tests of xasml.evaluation: metrics against scikit-learn and hand-computed values, and the
per-element PCA + k-means exploration on real FEFF10 spectra."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from xasml.errors import DataError, MissingExtraError
from xasml.evaluation.exploration import (
    match_clusters,
    n_components_for_variance,
    pca_kmeans,
    pca_kmeans_by_element,
    summarize_pca_kmeans,
    umap_embed,
)
from xasml.evaluation.metrics import (
    binary_metrics,
    bootstrap,
    bootstrap_many,
    grouped_binary_metrics,
    multiclass_metrics,
    one_vs_rest_roc,
    per_class_rows,
    regression_metrics,
    threshold_from_roc,
)


def _json_ok(obj) -> None:
    json.dumps(obj, allow_nan=False)  # strict JSON: no NaN / inf, only native types


# ---------------------------------------------------------------------------------------------
# real spectra: Ag K-edge of 9 compounds shipped in tests/data/evaluation
# ---------------------------------------------------------------------------------------------

def _element_matrix(compound_dirs, element: str, width: float = 56.0, n_points: int = 200):
    """Element-averaged spectra of one element on a common grid, and the 0/1 labels."""
    from xasml.io.feff import read_feff_compound
    from xasml.preprocess.grid import common_grid
    from xasml.spectrum import element_average

    avgs, labels, keys = [], [], []
    for d in compound_dirs:
        d = Path(d)
        sites = [s for s in read_feff_compound(d) if s.absorbing_element == element]
        if not sites:
            continue
        avgs.append(element_average(sites))
        labels.append(int(json.loads((d / "material.json").read_text())["topological"]))
        keys.append(d.name)
    grid = common_grid(avgs, width, n_points)
    return grid.energy, grid.resample(avgs), np.array(labels), keys


@pytest.fixture(scope="module")
def ag(test_data):
    dirs = sorted((test_data / "evaluation" / "feff10-ag").glob("amcsd-*"))
    return _element_matrix(dirs, "Ag")


# ---------------------------------------------------------------------------------------------
# binary metrics
# ---------------------------------------------------------------------------------------------

def test_binary_metrics_hand_computed():
    y = [0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.4, 0.8, 0.3, 0.6, 0.7, 0.9]
    m = binary_metrics(y, s, threshold=0.5)
    # predictions: 0 0 1 0 1 1 1 -> tn=2 fp=1 fn=1 tp=3
    assert m["confusion"] == [[2, 1], [1, 3]]
    top, triv = m["per_class"]["topological"], m["per_class"]["trivial"]
    # Eq. 1 of Andrejevic et al. with topological as the positive class
    assert top["recall"] == pytest.approx(3 / 4)
    assert top["precision"] == pytest.approx(3 / 4)
    assert top["f1"] == pytest.approx(0.75)
    # and with trivial as the positive class: tp=2, fn=1, fp=1
    assert triv["recall"] == pytest.approx(2 / 3)
    assert triv["precision"] == pytest.approx(2 / 3)
    assert (triv["support"], top["support"]) == (3, 4)
    assert m["accuracy"] == pytest.approx(5 / 7)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    # AUC: of the 12 (positive, negative) pairs the positive scores higher in 1 + 2 + 2 + 3
    assert m["auc"] == pytest.approx(8 / 12)
    assert m["n"] == 7 and m["n_pos"] == 4 and m["threshold"] == 0.5
    _json_ok(m)


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = np.clip(0.35 * y + rng.normal(0.35, 0.25, 300), 0, 1)
    for thr in (0.3, 0.5, 0.62):
        m = binary_metrics(y, s, threshold=thr)
        p = (s >= thr).astype(int)
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
        assert m["auc"] == pytest.approx(skm.roc_auc_score(y, s))
        assert m["confusion"] == skm.confusion_matrix(y, p).tolist()
        for label, name in ((0, "trivial"), (1, "topological")):
            pc = m["per_class"][name]
            assert pc["f1"] == pytest.approx(skm.f1_score(y, p, pos_label=label))
            assert pc["precision"] == pytest.approx(skm.precision_score(y, p, pos_label=label))
            assert pc["recall"] == pytest.approx(skm.recall_score(y, p, pos_label=label))
        assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    fpr, tpr, _ = skm.roc_curve(y, s)
    np.testing.assert_allclose(m["roc"]["fpr"], fpr)
    np.testing.assert_allclose(m["roc"]["tpr"], tpr)
    assert np.isfinite(m["roc"]["thresholds"]).all()
    _json_ok(m)


def test_binary_metrics_one_class_and_bad_input():
    m = binary_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    assert m["auc"] is None and m["roc"]["fpr"] == []
    assert m["per_class"]["trivial"]["support"] == 0
    assert m["per_class"]["topological"]["recall"] == pytest.approx(2 / 3)
    # macro F1 over the classes that occur: trivial is predicted once (F1 0), topological F1 0.8
    assert m["macro_f1"] == pytest.approx(0.4)
    assert binary_metrics([1, 1], [0.9, 0.8])["macro_f1"] == 1.0  # trivial absent everywhere
    _json_ok(m)
    with pytest.raises(DataError, match="y_true.*index 1"):
        binary_metrics([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="length mismatch"):
        binary_metrics([0, 1, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="y_score.*non-finite"):
        binary_metrics([0, 1], [0.1, np.nan])
    with pytest.raises(DataError, match="empty"):
        binary_metrics([], [])
    # booleans and custom class names
    m = binary_metrics(np.array([False, True]), [0.2, 0.8], class_names=("metal", "insulator"))
    assert set(m["per_class"]) == {"metal", "insulator"}


# ---------------------------------------------------------------------------------------------
# thresholds from the ROC curve
# ---------------------------------------------------------------------------------------------

def _brute_force(y, s, crit):
    best = -np.inf
    for t in np.r_[np.unique(s), np.inf]:
        p = (s >= t).astype(int)
        if crit == "youden":
            v = skm.recall_score(y, p) - (1 - skm.recall_score(y, p, pos_label=0))
        else:
            v = skm.f1_score(y, p, zero_division=0)
        best = max(best, v)
    return best


@pytest.mark.parametrize("method", ["youden", "f1"])
def test_threshold_from_roc_is_optimal(method):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 120)
    s = 1 / (1 + np.exp(-(1.2 * y + rng.normal(0, 1, 120))))
    t = threshold_from_roc(y, s, method=method)
    p = (s >= t).astype(int)
    got = (skm.recall_score(y, p) - (1 - skm.recall_score(y, p, pos_label=0)) if method == "youden"
           else skm.f1_score(y, p))
    assert got == pytest.approx(_brute_force(y, s, method))
    assert not np.any(s == t), "threshold should lie between scores, not on one"


def test_threshold_from_roc_small_example_and_errors():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.6, 0.7, 0.9, 0.3, 0.5]
    # J = 2/3 at t=0.7 and t=0.5; the higher threshold wins -> midpoint of 0.7 and 0.6
    assert threshold_from_roc(y, s) == pytest.approx(0.65)
    # F1 of class 1 is 6/7 at t=0.5 (tp=3, fp=1) -> midpoint of 0.5 and 0.3
    assert threshold_from_roc(y, s, method="f1") == pytest.approx(0.4)
    with pytest.raises(DataError, match="both classes"):
        threshold_from_roc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="method"):
        threshold_from_roc(y, s, method="gmean")


# ---------------------------------------------------------------------------------------------
# multi-class, grouped
# ---------------------------------------------------------------------------------------------

def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    classes = ["T4", "S5", "O6"]
    y = rng.choice(classes, 200, p=[0.2, 0.1, 0.7])
    p = np.where(rng.random(200) < 0.75, y, rng.choice(classes, 200))
    m = multiclass_metrics(y, p, classes)
    assert m["classes"] == classes
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, p, labels=classes, average="macro"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["confusion"] == skm.confusion_matrix(y, p, labels=classes).tolist()
    f1s = skm.f1_score(y, p, labels=classes, average=None)
    for c, f in zip(classes, f1s):
        assert m["per_class"][c]["f1"] == pytest.approx(f)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p))
    _json_ok(m)


def test_multiclass_metrics_absent_class_proba_and_errors():
    m = multiclass_metrics([1, 2, 1, 3], [1, 1, 1, 3], classes=[1, 2, 3, 4],
                           y_proba=[[.8, .1, .1, 0], [.6, .05, .35, 0], [.9, 0, .1, 0], [.1, .1, .8, 0]])
    assert m["per_class"][4]["f1"] is None and m["per_class"][4]["support"] == 0
    # macro over classes 1, 2, 3: F1 = 0.8, 0, 1
    assert m["macro_f1"] == pytest.approx((0.8 + 0.0 + 1.0) / 3)
    # one-vs-rest AUC of classes 1, 2, 3 (class 2: 0.05 beats only the 0 of the 3 negatives)
    assert m["auc_ovr"] == pytest.approx(np.mean([1.0, 1 / 3, 1.0]))
    assert m["log_loss"] > 0
    _json_ok(m)
    with pytest.raises(DataError, match="y_pred: label 'X' at index 1"):
        multiclass_metrics(["a", "b"], ["a", "X"], ["a", "b"])
    with pytest.raises(DataError, match="y_proba"):
        multiclass_metrics(["a", "b"], ["a", "b"], ["a", "b"], y_proba=[[1.0], [1.0]])


def test_grouped_binary_metrics_counts_each_element():
    y = [1, 0, 1, 0, 1]
    p = [1, 0, 0, 1, 1]
    groups = [("Bi", "Se"), ("Se",), {"Bi", "Te"}, "Te", ["Bi", "Bi"]]
    g = grouped_binary_metrics(y, p, groups)
    assert list(g) == ["Bi", "Se", "Te"]
    assert g["Bi"]["n"] == 3 and g["Bi"]["n_pos"] == 3  # duplicates within a compound count once
    assert g["Bi"]["per_class"]["topological"]["recall"] == pytest.approx(2 / 3)
    assert g["Te"]["n"] == 2  # the string "Te" is one name, not the characters "T" and "e"
    assert g["Te"]["accuracy"] == 0.0
    assert g["Se"]["accuracy"] == 1.0
    # equal to binary_metrics on the member rows
    rows = [0, 2, 4]
    ref = binary_metrics(np.take(y, rows), np.take(p, rows))
    assert g["Bi"]["per_class"] == ref["per_class"]
    # scores are thresholded; min_count drops small groups
    g2 = grouped_binary_metrics(y, [0.9, 0.1, 0.4, 0.7, 0.8], groups, min_count=3)
    assert list(g2) == ["Bi"] and g2["Bi"]["accuracy"] == pytest.approx(2 / 3)
    _json_ok(g)
    with pytest.raises(DataError, match="length mismatch"):
        grouped_binary_metrics(y, p, groups[:3])


# ---------------------------------------------------------------------------------------------
# bootstrap, regression
# ---------------------------------------------------------------------------------------------

def test_bootstrap_reproducible_and_stratified():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    s = np.clip(0.4 * y + rng.normal(0.3, 0.2, 80), 0, 1)

    def f1(a, b):
        return binary_metrics(a, b)["per_class"]["topological"]["f1"]

    a = bootstrap(f1, y, s, n_boot=10, seed=5)
    b = bootstrap(f1, y, s, n_boot=10, seed=5)
    assert a == b and len(a["values"]) == 10
    assert a["mean"] == pytest.approx(np.mean(a["values"]))
    assert a["std"] == pytest.approx(np.std(a["values"], ddof=1))
    assert 0 < a["std"] < 0.2
    assert bootstrap(f1, y, s, n_boot=10, seed=6)["values"] != a["values"]
    # stratified resamples keep the class counts
    counts = bootstrap(lambda yy: float(np.sum(yy)), y, n_boot=5, seed=1, stratify=y)["values"]
    assert counts == [float(y.sum())] * 5
    # lists are resampled too; undefined values are skipped
    r = bootstrap(lambda yy: binary_metrics(yy, yy)["auc"], [1, 1, 1, 0], n_boot=20, seed=0)
    assert r["mean"] == 1.0 and None in r["values"]
    with pytest.raises(DataError):
        bootstrap(f1, y, s[:-1])


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    yt = rng.normal(size=(40, 30)).cumsum(axis=1)
    yp = yt + rng.normal(0, 0.3, yt.shape)
    m = regression_metrics(yt, yp)
    assert m["n"] == 40
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yt, yp)))
    assert m["r2"] == pytest.approx(skm.r2_score(yt, yp, multioutput="variance_weighted"))
    m1 = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.0, 4.0], y_std=[0.2, 0.1, 0.4, 0.1])
    assert m1["mae"] == pytest.approx(0.375)
    assert m1["coverage_2sigma"] == pytest.approx(0.5)  # |err| = .5 > .4, 0 <= .2, 1 > .8, 0 <= .2
    assert m1["r2"] == pytest.approx(skm.r2_score([1, 2, 3, 4], [1.5, 2, 2, 4]))
    _json_ok(m1)
    with pytest.raises(DataError, match="shape"):
        regression_metrics([1, 2], [1, 2, 3])
    with pytest.raises(DataError, match="y_std"):
        regression_metrics([1, 2], [1, 2], y_std=[-1, 1])


# ---------------------------------------------------------------------------------------------
# PCA + k-means exploration
# ---------------------------------------------------------------------------------------------

def test_n_components_for_variance():
    assert n_components_for_variance([0.5, 0.3, 0.1, 0.1], 0.8) == 2  # exactly 80 % counts
    assert n_components_for_variance([0.85, 0.1, 0.05], 0.8) == 1
    assert n_components_for_variance([0.4, 0.3, 0.2], 0.99) == 3
    with pytest.raises(ValueError):
        n_components_for_variance([1.0], 0)


def test_match_clusters_corrects_for_class_imbalance():
    # cluster 0: 50 trivial + 9 topological; cluster 1: 40 trivial + 1 topological.
    cluster = np.r_[np.zeros(59), np.ones(41)].astype(int)
    y = np.r_[np.zeros(50), np.ones(9), np.zeros(40), np.ones(1)].astype(int)
    # raw counts prefer cluster 0 -> trivial (51 correct against 49) ...
    assert match_clusters(cluster, y, balanced=False) == {0: 0, 1: 1}
    # ... but per-class rates prefer cluster 0 -> topological (9/10 + 40/90 against 50/90 + 1/10)
    assert match_clusters(cluster, y) == {0: 1, 1: 0}
    # more clusters than classes: each cluster takes its heaviest class
    assert match_clusters([0, 0, 1, 2, 2], [0, 0, 1, 1, 0], n_clusters=3) == {0: 0, 1: 1, 2: 1}


def _check_result(res, X, y):
    from sklearn.decomposition import PCA

    evr = PCA().fit(X[res.fit_mask]).explained_variance_ratio_
    cum = np.cumsum(evr)
    k = res.n_components
    assert cum[k - 1] >= 0.8 - 1e-9 and (k == 1 or cum[k - 2] < 0.8)
    assert res.Z.shape == (len(X), k) and res.Z_plot.shape == (len(X), 2)
    # the mapping maximises the balanced accuracy over all one-to-one pairings
    best = max(skm.balanced_accuracy_score(y[res.fit_mask], np.array(perm)[res.cluster[res.fit_mask]])
               for perm in itertools.permutations([0, 1]))
    assert res.metrics["balanced_accuracy"] == pytest.approx(best) or not res.fit_mask.all()
    np.testing.assert_array_equal(res.predict(X), res.y_pred)
    assert ((res.score > 0.5) == (res.y_pred == 1)).all()
    np.testing.assert_allclose(res.decision_score(X), res.score)
    ref = binary_metrics(y, res.y_pred)
    assert res.metrics["per_class"] == ref["per_class"]
    _json_ok(res.summary())


def test_pca_kmeans_on_real_ag_spectra(ag):
    energy, X, y, _keys = ag
    assert X.shape == (9, 200) and y.tolist().count(1) == 5
    assert energy[-1] - energy[0] == pytest.approx(56.0)
    res = pca_kmeans(X, y, seed=0)
    _check_result(res, X, y)
    # Ag halides (trivial) and Ag intermetallics (topological semimetals / TCI) separate cleanly
    assert res.metrics["per_class"]["topological"]["f1"] == pytest.approx(1.0)
    assert res.metrics["per_class"]["trivial"]["f1"] == pytest.approx(1.0)
    assert res.metrics["auc"] == pytest.approx(1.0)
    # seeded: identical on a rerun
    res2 = pca_kmeans(X, y, seed=0)
    np.testing.assert_array_equal(res.cluster, res2.cluster)
    np.testing.assert_allclose(res.Z, res2.Z)


def test_pca_kmeans_fit_mask_and_errors(ag):
    _, X, y, _ = ag
    mask = np.ones(len(y), bool)
    mask[[0, 4]] = False  # hold out one trivial and one topological compound
    res = pca_kmeans(X, y, fit_mask=mask)
    assert res.fit_mask.sum() == 7 and res.metrics["n"] == 9
    np.testing.assert_array_equal(res.predict(X[~mask]), res.y_pred[~mask])
    with pytest.raises(DataError, match="one label per row"):
        pca_kmeans(X, y[:-1])
    with pytest.raises(DataError, match="energy points"):
        res.predict(X[:, :100])
    with pytest.raises(DataError, match="non-finite"):
        bad = X.copy()
        bad[2, 3] = np.nan
        pca_kmeans(bad, y)


def test_pca_kmeans_per_element_on_shared_feff10(shared_data):
    import pandas as pd

    root = shared_data / "feff10-topology-v0"
    if not root.is_dir():
        pytest.skip("feff10-topology-v0 not in the shared data")
    table = pd.read_csv(root / "materials.csv")
    data = {}
    for el in ("O", "S", "Se", "Te", "Sb"):
        dirs = [root / "FEFF10" / k for k in table["key"]
                if any(p.name.endswith(f"_{el}") for p in (root / "FEFF10" / k / "FEFF-XANES").iterdir())]
        _, X, y, _ = _element_matrix(dirs, el)
        data[el] = (X, y)
    results = pca_kmeans_by_element(data, min_count=6)
    assert set(results) == set(data)
    for el, res in results.items():
        _check_result(res, *data[el])
    summary = summarize_pca_kmeans(results)
    assert [r["element"] for r in summary["rows"]] == list(results)
    for c in ("trivial", "topological"):
        mean_f1 = summary["mean"][c]["f1"]
        assert mean_f1 == pytest.approx(np.mean([r[f"f1_{c}"] for r in summary["rows"]]))
        assert 0.0 <= mean_f1 <= 1.0


# ---------------------------------------------------------------------------------------------
# UMAP
# ---------------------------------------------------------------------------------------------

def test_umap_embed_missing_extra(monkeypatch, ag):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    with pytest.raises(MissingExtraError, match=r"xasml\[umap\]"):
        umap_embed(ag[1])


def test_umap_embed_real_spectra(ag):
    pytest.importorskip("umap")
    _, X, _y, _ = ag
    Z = umap_embed(X, n_neighbors=15, seed=0)  # n_neighbors is clipped to n - 1
    assert Z.shape == (9, 2) and np.isfinite(Z).all()
    np.testing.assert_allclose(umap_embed(X, seed=0), Z)
    with pytest.raises(DataError, match="at least 3"):
        umap_embed(X[:2])


def test_bootstrap_many_and_per_class_rows():
    rng = np.random.default_rng(4)
    classes = ["T4", "S5", "O6"]
    y = rng.choice(classes, 90)
    p = np.where(rng.random(90) < 0.7, y, rng.choice(classes, 90))

    def classwise(a, b):
        return {c: v["f1"] for c, v in multiclass_metrics(a, b, classes)["per_class"].items()}

    many = bootstrap_many(classwise, y, p, n_boot=8, seed=2)
    assert list(many) == classes
    # each metric equals a single-metric bootstrap on the same resamples
    one = bootstrap(lambda a, b: classwise(a, b)["S5"], y, p, n_boot=8, seed=2)
    assert many["S5"] == one
    rows = per_class_rows(multiclass_metrics(y, p, classes), model="MLP")
    assert [r["class"] for r in rows] == classes and rows[0]["model"] == "MLP"
    assert sum(r["support"] for r in rows) == 90


def test_one_vs_rest_roc():
    rng = np.random.default_rng(5)
    classes = ["T4", "S5", "O6"]
    y = rng.choice(classes, 60)
    proba = rng.dirichlet(np.ones(3), 60)
    proba[np.arange(60), [classes.index(v) for v in y]] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    curves = one_vs_rest_roc(y, proba, classes)
    assert list(curves) == classes
    for j, c in enumerate(classes):
        assert curves[c]["auc"] == pytest.approx(skm.roc_auc_score(y == c, proba[:, j]))
        assert curves[c]["fpr"][0] == 0.0 and curves[c]["tpr"][-1] == 1.0
    # macro average equals multiclass_metrics' auc_ovr
    m = multiclass_metrics(y, np.array(classes)[proba.argmax(axis=1)], classes, y_proba=proba)
    assert m["auc_ovr"] == pytest.approx(np.mean([curves[c]["auc"] for c in classes]))
    # log loss with the columns in the (unsorted) order of classes
    order = np.argsort(classes)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba[:, order], labels=sorted(classes)))
    assert one_vs_rest_roc(["T4", "T4"], [[1, 0, 0], [0.5, 0.5, 0]], classes)["S5"]["auc"] is None
    _json_ok(curves)
