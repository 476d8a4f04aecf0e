"""NumPy inference of the local-structure network ensembles: prediction without torch or scikit-learn.

Why this exists: ``xasml local predict`` on one file from the shell spent most of its time
importing libraries it did not need for the answer. ``import torch`` took about 1.4 s and
scikit-learn about 0.4 s (its ``sklearn.base`` imports ``scipy.stats``) of a 3.5 s call on the
development machine (``python -X importtime``; ``benchmarks/shell_speed.py``, results in
``benchmarks/results/shell_speed/``), while the shipped models are small MLP ensembles
(Carbone et al., Phys. Rev. Materials 3, 033604 (2019), Figure 1: the spectrum on 100 grid
points and a one-hot element code -> 90 -> 60 -> 20 -> output, 5 members) whose forward pass is
four matrix products per member. A loaded
:class:`~xasml.models.bundle.ModelBundle` therefore predicts with the :class:`EnsemblePredictor`
here, built from the same saved folder (``estimator.json`` + ``weights.safetensors``), and
loads the scikit-learn estimator (and torch) only when its ``estimator`` is asked for.

What it computes is :class:`xasml.models.nets.EnsembleNet` in evaluation mode (dropout off),
in float32 like torch, followed by the estimators' own output steps (:func:`member_probabilities`,
:func:`ensemble_mean_std`, which :mod:`xasml.models.local_nets` uses too): the same numbers as
the torch path to float32 rounding (on the shipped bundles' training spectra: probabilities
within 2e-7, regression outputs within 1e-6 relative; ``tests/test_speed.py`` compares them on
every shipped bundle and on a CNN). Training stays in torch (:mod:`xasml.models.local_nets`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import DataError

__all__ = ["EnsemblePredictor", "ClassifierPredictor", "RegressorPredictor", "ensemble_forward",
           "member_probabilities", "ensemble_mean_std", "load_predictor"]

#: registered names of the estimators this module reproduces (:mod:`xasml.models.local_nets`)
CLASSIFIER = "local_classifier"
REGRESSOR = "local_ensemble_regressor"
#: the constructor parameters of those estimators (``tests/test_speed.py`` checks them against the classes):
#: a saved folder naming any other parameter is left to the estimator's own loading, and its error
PARAMS = {
    CLASSIFIER: frozenset({"arch", "hidden", "dropout", "conv_filters", "kernel_size", "pool_size", "epochs",
                           "batch_size", "learning_rate", "weight_decay", "n_members", "bootstrap", "seed", "device",
                           "n_threads", "class_weight", "lr_schedule", "warm_start"}),
    REGRESSOR: frozenset({"arch", "hidden", "dropout", "conv_filters", "kernel_size", "pool_size", "epochs",
                          "batch_size", "learning_rate", "weight_decay", "n_members", "bootstrap", "seed", "device",
                          "n_threads", "lr_schedule", "warm_start"}),
}
#: the constructor defaults the forward pass depends on (same for both estimators)
_DEFAULTS = {"arch": "mlp", "hidden": (90, 60, 20), "dropout": 0.3, "conv_filters": 8, "kernel_size": 10,
             "pool_size": 2}


def member_probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of every ensemble member from its logits (softmax over the classes).

    Parameters
    ----------
    logits : ndarray, shape (n_members, n, n_classes)
        The members' outputs before the softmax.

    Returns
    -------
    ndarray, shape (n_members, n, n_classes)
        Probabilities summing to 1 over the last axis (computed after subtracting each row's
        maximum, so large logits do not overflow).
    """
    logits = logits - logits.max(axis=2, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=2, keepdims=True)


def ensemble_mean_std(P: np.ndarray, std_scale: float = 1.0, noise_std: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and uncertainty of member predictions ``P`` (n_members, n).

    The uncertainty is the standard deviation across members (ddof 1) times ``std_scale``,
    combined in quadrature with ``noise_std`` when it is set: σ² = noise_std² + (std_scale · spread)²
    (see :meth:`xasml.models.local_nets.SpectrumEnsembleRegressor.predict`).

    Parameters
    ----------
    P : ndarray, shape (n_members, n)
        Each member's prediction (target units, e.g. coordination number or oxidation state).
    std_scale : float
        Factor on the member spread, calibrated on validation data when the model was trained.
    noise_std : float
        Irreducible spread (target units) added in quadrature; 0 adds nothing.

    Returns
    -------
    mean, std : ndarray, shape (n,)
        Ensemble mean and uncertainty, in the target's units.
    """
    mean = P.mean(axis=0)
    spread = P.std(axis=0, ddof=1) * std_scale
    return mean, (np.sqrt(spread ** 2 + noise_std ** 2) if noise_std else spread)


def ensemble_forward(layers: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray,
                     conv: tuple[np.ndarray, np.ndarray] | None = None, pool_size: int = 2) -> np.ndarray:
    """Outputs of every member of an :class:`~xasml.models.nets.EnsembleNet` in evaluation mode.

    Parameters
    ----------
    layers : list of (weight, bias)
        Dense layers: weight of shape (n_members, width_in, width_out), bias (n_members, 1, width_out);
        ReLU after each but the last (dropout is off in evaluation).
    X : ndarray, shape (n, n_inputs), float32
        Standardised spectra; every member sees all of them.
    conv : (weight, bias), optional
        CNN layer: weight (n_members * filters, 1, kernel), bias (n_members * filters,); stride 1,
        then ReLU and max-pooling by ``pool_size`` (torch's ``conv1d`` with ``groups=n_members``
        and ``max_pool1d``); features ordered filter-major within each member, as in torch.
    pool_size : int

    Returns
    -------
    ndarray, shape (n_members, n, n_outputs), float32
    """
    M = layers[0][0].shape[0]
    x = np.asarray(X, dtype=np.float32)[None]  # (1, n, L): broadcast over members
    if conv is not None:
        w, b = conv
        F, K = w.shape[0] // M, w.shape[2]
        win = np.lib.stride_tricks.sliding_window_view(x[0], K, axis=1)  # (n, L-K+1, K)
        z = np.einsum("ntk,mfk->mnft", win, w.reshape(M, F, K)) + b.reshape(M, 1, F, 1)
        z = np.maximum(z, 0)
        P = z.shape[-1] // pool_size
        z = z[..., :P * pool_size].reshape(*z.shape[:3], P, pool_size).max(axis=-1)  # (M, n, F, P)
        x = z.reshape(M, z.shape[1], F * P).astype(np.float32)
    for i, (w, b) in enumerate(layers):
        x = np.matmul(x, w) + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    return x


class EnsemblePredictor:
    """Prediction-only twin of a fitted :class:`~xasml.models.local_nets.SpectrumClassifier` or
    :class:`~xasml.models.local_nets.SpectrumEnsembleRegressor`, built from its saved folder.

    It offers the estimator's prediction methods with the same results (see the module
    docstring) and none of its training: :class:`ClassifierPredictor` has ``predict_proba``,
    ``predict_proba_members`` and ``predict``, :class:`RegressorPredictor` ``predict_members``
    and ``predict(X, return_std)``. :func:`load_predictor` builds the right one.

    Parameters
    ----------
    model : {"local_classifier", "local_ensemble_regressor"}
        Registered name of the estimator saved.
    params, state : dict
        ``params`` and ``state`` of its ``estimator.json``.
    arrays : dict of str to ndarray
        Its ``weights.safetensors``.

    Attributes
    ----------
    n_features_in_ : int
        Input width (grid points, plus the element code of multi-element models).
    classes_ : ndarray, shape (n_classes,)
        Classifiers only: the class labels, in the order of the probabilities.

    Raises
    ------
    ValueError
        If the parameters, state and weights do not describe a network the estimator would run
        (unknown parameter, dropout outside [0, 1], missing, extra or mis-shaped weights).
    """

    def __init__(self, model: str, params: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray]):
        if model not in PARAMS:
            raise ValueError(f"not a local network ensemble: {model!r}")
        unknown = set(params) - PARAMS[model]
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        p = {**_DEFAULTS, **params}
        if p["arch"] not in ("mlp", "cnn"):
            raise ValueError(f"arch must be 'mlp' or 'cnn', got {p['arch']!r}")
        dropout = p["dropout"]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout {dropout!r} is not a probability")
        hidden = list(p["hidden"])
        self.model = model
        self.n_features_in_ = int(state["n_features_in"])
        n_out, M = int(state["n_outputs"]), int(state["n_fitted_members"])
        filters = int(p["conv_filters"]) if p["arch"] == "cnn" else 0
        kernel, self.pool_size = int(p["kernel_size"]), int(p["pool_size"])
        expect: dict[str, tuple[int, ...]] = {}
        width = self.n_features_in_
        if filters:
            pooled = (width - kernel + 1) // self.pool_size if kernel >= 1 and self.pool_size >= 1 else 0
            if pooled < 1:
                raise ValueError(f"input of {width} points is too short for kernel {kernel} and pool {self.pool_size}")
            expect.update({"net.conv_weight": (M * filters, 1, kernel), "net.conv_bias": (M * filters,)})
            width = filters * pooled
        for i, h in enumerate(hidden + [n_out]):
            if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
                raise ValueError(f"layer width {h!r} is not a positive integer")
            expect.update({f"net.weights.{i}": (M, width, int(h)), f"net.biases.{i}": (M, 1, int(h))})
            width = int(h)
        expect.update({"feature_mean": (self.n_features_in_,), "feature_scale": (self.n_features_in_,)})
        got = {k: tuple(v.shape) for k, v in arrays.items()}
        if got != expect:
            bad = sorted(k for k in set(got) | set(expect) if got.get(k) != expect.get(k))
            raise ValueError("weights do not match the parameters: " + ", ".join(
                f"{k} {got.get(k, 'missing')} (expected {expect.get(k, 'none')})" for k in bad[:4]))
        f32 = lambda k: np.asarray(arrays[k], dtype=np.float32)  # noqa: E731 - torch holds float32
        self.feature_mean_, self.feature_scale_ = f32("feature_mean"), f32("feature_scale")
        self._conv = (f32("net.conv_weight"), f32("net.conv_bias")) if filters else None
        self._layers = [(f32(f"net.weights.{i}"), f32(f"net.biases.{i}")) for i in range(len(hidden) + 1)]
        if model == CLASSIFIER:
            self.classes_ = np.array(state["classes"])
            if len(self.classes_) != n_out:
                raise ValueError(f"{len(self.classes_)} classes for {n_out} outputs")
        else:
            self.target_mean_ = float(state["target_mean"])
            self.target_scale_ = float(state["target_scale"])
            self.std_scale_ = float(state.get("std_scale", 1.0))
            self.noise_std_ = float(state.get("noise_std", 0.0))

    def _forward_members(self, X) -> np.ndarray:
        """Raw outputs of every member, shape (n_members, n, n_out) (the estimator's ``_forward_members``)."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_ or not np.isfinite(X).all():
            raise DataError(f"expected finite spectra of shape (n, {self.n_features_in_}), got shape {X.shape}")
        Xs = ((X - self.feature_mean_) / self.feature_scale_).astype(np.float32)
        return ensemble_forward(self._layers, Xs, self._conv, self.pool_size)


class ClassifierPredictor(EnsemblePredictor):
    """:class:`EnsemblePredictor` of a :class:`~xasml.models.local_nets.SpectrumClassifier`."""

    def predict_proba_members(self, X) -> np.ndarray:
        """Class probabilities of each member.

        Parameters
        ----------
        X : array_like, shape (n, n_features_in_)
            Spectra on the model's energy grid, as the estimator was trained on.

        Returns
        -------
        ndarray, shape (n_members, n, n_classes)

        Raises
        ------
        DataError
            When ``X`` has the wrong shape or non-finite values.
        """
        return member_probabilities(self._forward_members(X))

    def predict_proba(self, X) -> np.ndarray:
        """Member-averaged class probabilities.

        Parameters
        ----------
        X : array_like, shape (n, n_features_in_)
            Spectra, as for :meth:`predict_proba_members`.

        Returns
        -------
        ndarray, shape (n, n_classes)
            Columns ordered as ``classes_``.
        """
        return self.predict_proba_members(X).mean(axis=0)

    def predict(self, X) -> np.ndarray:
        """Most probable class of each spectrum: the label of the largest :meth:`predict_proba` column.

        Parameters
        ----------
        X : array_like, shape (n, n_features_in_)

        Returns
        -------
        ndarray, shape (n,)
            Labels from ``classes_``.
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class RegressorPredictor(EnsemblePredictor):
    """:class:`EnsemblePredictor` of a :class:`~xasml.models.local_nets.SpectrumEnsembleRegressor`."""

    def predict_members(self, X) -> np.ndarray:
        """Each member's prediction.

        Parameters
        ----------
        X : array_like, shape (n, n_features_in_)
            Spectra on the model's energy grid.

        Returns
        -------
        ndarray, shape (n_members, n)
            In the target's units (standardisation undone).

        Raises
        ------
        DataError
            When ``X`` has the wrong shape or non-finite values.
        """
        return self._forward_members(X)[:, :, 0] * self.target_scale_ + self.target_mean_

    def predict(self, X, return_std: bool = False):
        """Ensemble mean and, optionally, its uncertainty.

        Parameters
        ----------
        X : array_like, shape (n, n_features_in_)
            Spectra on the model's energy grid.
        return_std : bool
            Also return the uncertainty (:func:`ensemble_mean_std`).

        Returns
        -------
        mean : ndarray, shape (n,)
        std : ndarray, shape (n,)
            Only with ``return_std``; target units.
        """
        mean, std = ensemble_mean_std(self.predict_members(X), self.std_scale_, self.noise_std_)
        return (mean, std) if return_std else mean


def load_predictor(path: str | Path) -> EnsemblePredictor | None:
    """The :class:`EnsemblePredictor` of a saved estimator folder, or None when it holds another model.

    The folder's files are checked first (:func:`xasml.models.validate.check_estimator_folder`).
    None is also returned when the parameters, state and weights do not describe a network the
    estimator would run: the caller then loads the estimator itself
    (:func:`xasml.models.validate.load_checked_estimator`), whose error names what is wrong.

    Parameters
    ----------
    path : str or Path
        Folder with ``estimator.json`` and ``weights.safetensors``.

    Returns
    -------
    ClassifierPredictor, RegressorPredictor or None
        The NumPy predictor, or None (see above).

    Raises
    ------
    DataError
        Naming the file, as :func:`~xasml.models.validate.check_estimator_folder`.
    """
    from xasml.models.validate import check_estimator_folder

    meta, arrays = check_estimator_folder(path)
    cls = {CLASSIFIER: ClassifierPredictor, REGRESSOR: RegressorPredictor}.get(meta.model)
    if cls is None:
        return None
    try:
        return cls(meta.model, dict(meta.params), dict(meta.state), arrays)
    except Exception:  # noqa: BLE001 - anything the estimator's loading should report in its own words
        return None
