"""Every topology model fits, predicts, saves and loads (pickle-free) on a small real set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xasml.datasets.splits import balanced_split
from xasml.datasets.topology import (
    TopologyFeaturizer,
    compounds_from_frame,
    load_topology_frame,
)
from xasml.errors import DataError
from xasml.models import get_model, load_estimator
from xasml.topology.run import BUNDLED_DATASET

MODELS = ["topology_net", "nn_type", "svm_type", "svm_type_aug", "svm_spectra", "pca_kmeans"]
FAST = {"epochs": 4, "patience": None, "spectral_hidden": 32, "hidden": (32, 16)}


@pytest.fixture(scope="module")
def small():
    """80 real compounds of the bundled FEFF10 set, split 70/15/15 and featurised."""
    import torch

    torch.set_num_threads(1)
    frame, _ = load_topology_frame(BUNDLED_DATASET)
    comps = compounds_from_frame(frame)
    rng = np.random.default_rng(0)
    comps = [comps[i] for i in sorted(rng.choice(len(comps), 80, replace=False))]
    sp = balanced_split([c.elements for c in comps], [c.subclass for c in comps], seed=0)
    feat = TopologyFeaturizer().fit([comps[i] for i in sp["train"]])
    return {k: feat.transform([comps[i] for i in v], max_absorbers=2) for k, v in sp.items()}


def _make(name):
    cls = get_model(name)
    return cls(**FAST) if name in ("topology_net", "nn_type") else cls()


@pytest.mark.parametrize("name", MODELS)
def test_fit_predict_save_load(small, tmp_path, name):
    model = _make(name).fit(small["train"], validation=small["val"])
    proba = model.predict_proba(small["test"])
    assert proba.shape == (len(small["test"]), 2)
    assert np.all((proba >= 0) & (proba <= 1)) and np.allclose(proba.sum(axis=1), 1)
    pred = model.predict(small["test"])
    assert set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (proba[:, 1] >= model.threshold_).astype(int))
    folder = model.save(tmp_path / name)
    assert (folder / "estimator.json").exists() and (folder / "weights.safetensors").exists()
    assert not list(folder.glob("*.pkl"))
    assert json.loads((folder / "estimator.json").read_text())["model"] == name
    back = load_estimator(folder)
    assert type(back) is type(model)
    np.testing.assert_allclose(back.predict_proba(small["test"]), proba, atol=1e-6)
    assert back.threshold_ == pytest.approx(model.threshold_)


def test_network_learns_on_training_data(small):
    """With the paper's architecture the training loss falls and training AUC is high."""
    from sklearn.metrics import roc_auc_score

    net = get_model("topology_net")(epochs=40, patience=None, lr=1e-3, seed=1).fit(small["train"],
                                                                                   validation=small["val"])
    hist = net.history_[0]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    p = net.predict_proba(small["train"])[:, 1]
    assert roc_auc_score(small["train"].y, p) > 0.85
    assert 0 < net.threshold_ < 1


def test_network_missing_edges_and_ensemble(small):
    """Prediction works with some absorbers removed (sum over the present ones)."""
    net = get_model("topology_net")(**FAST, n_ensemble=2).fit(small["train"], validation=small["val"])
    d = small["test"]
    partial = d.subset(range(len(d)))
    partial.mask[:, 1] = False
    partial.X[:, 1] = 0
    p_full, p_part = net.predict_proba(d)[:, 1], net.predict_proba(partial)[:, 1]
    two = d.mask[:, 1]
    assert np.all(np.isfinite(p_part))
    assert not np.allclose(p_full[two], p_part[two])  # the second edge matters
    np.testing.assert_allclose(p_full[~two], p_part[~two], atol=1e-6)
    assert len(net.modules_) == 2


def test_svm_decision_matches_sklearn(small):
    from sklearn.svm import SVC

    m = get_model("svm_spectra")().fit(small["train"])
    F = m._features(small["train"])
    ref = SVC(C=1.0, gamma="scale", class_weight="balanced").fit(F, small["train"].y)
    np.testing.assert_allclose(m.decision_function(small["test"]), ref.decision_function(m._features(small["test"])),
                               atol=1e-8)


def test_augmented_svm_type_equals_plain_with_rbf_scale(small):
    """Copying the one-hot vector 200x leaves an RBF kernel with gamma='scale' unchanged."""
    a = get_model("svm_type")().fit(small["train"])
    b = get_model("svm_type_aug")().fit(small["train"])
    np.testing.assert_allclose(a.decision_function(small["test"]), b.decision_function(small["test"]), atol=1e-8)
    lin = get_model("svm_type_aug")(kernel="linear").fit(small["train"])
    assert lin.predict(small["test"]).shape == (len(small["test"]),)


def test_one_class_training_set_is_refused(small):
    d = small["train"]
    one = d.subset(np.flatnonzero(d.y == 1))
    for name in ("topology_net", "svm_type", "pca_kmeans"):
        with pytest.raises(DataError, match="both classes"):
            _make(name).fit(one)
