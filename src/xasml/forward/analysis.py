"""Which descriptor features the forward model relies on (Rankine & Penfold 2022, §III.C).

* :func:`permutation_importance` — scramble one feature at a time over a data set and measure the
  increase of the prediction error (paper Fig. 8), over the whole spectrum and inside energy
  windows (Fig. 9: −3…+3 eV and +50…+56 eV relative to the edge).
* :func:`select_from_model_curve` — train on the top fraction of features ranked by importance
  and record the validation error against the fraction kept (Fig. 10).
* :func:`forward_selection` — forward sequential feature selection (scikit-learn's
  ``SequentialFeatureSelector``) with a small, fast network; bounded by a candidate pool.

Importance is reported as the relative increase of the mean-squared error, in %:
``100 (MSE_permuted − MSE_baseline) / MSE_baseline``, averaged over ``n_repeats`` permutations.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from xasml.evaluation.spectra_metrics import percentage_error

__all__ = ["permutation_importance", "select_from_model_curve", "forward_selection", "fast_analysis_model"]


def permutation_importance(model, X: np.ndarray, y: np.ndarray, energy: np.ndarray | None = None,
                           windows: Sequence[tuple[float, float]] = (), e0: float | None = None,
                           n_repeats: int = 3, seed: int = 0, features: Sequence[int] | None = None) -> dict:
    """Permutation feature importance, overall and per energy window.

    Parameters
    ----------
    model : estimator with ``predict(X) -> (n, n_points)``
        Fitted forward model (its own feature filter applies inside ``predict``).
    X : ndarray, shape (n, n_features)
        Descriptors of an evaluation set (not used for training).
    y : ndarray, shape (n, n_points)
        Target spectra.
    energy : ndarray, shape (n_points,), optional
        Energy grid, eV (needed for ``windows``).
    windows : sequence of (lo, hi)
        Energy windows in eV relative to ``e0``; windows holding no grid point are skipped.
    e0 : float, optional
        Edge energy, eV (needed for ``windows``).
    n_repeats : int
        Permutations per feature.
    seed : int
        Seed of the permutations.
    features : sequence of int, optional
        Features to test (default: those the model uses, ``feature_mask_``, else all).

    Returns
    -------
    dict
        ``features`` (indices), ``overall`` (% MSE increase, shape (n_tested,)), ``overall_std``,
        ``windows`` (list of dicts with ``window`` and ``importance``), ``baseline_mse``.
    """
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if features is None:
        mask = getattr(model, "feature_mask_", None)
        features = np.flatnonzero(mask) if mask is not None else np.arange(X.shape[1])
    features = np.asarray(features, dtype=int)
    masks = [np.ones(y.shape[1], dtype=bool)]
    kept_windows = []
    for lo, hi in windows:
        if energy is None or e0 is None:
            raise ValueError("windows need energy and e0")
        rel = np.asarray(energy) - e0
        w = (rel >= lo) & (rel <= hi)
        if w.any():                       # windows outside the grid are skipped
            masks.append(w)
            kept_windows.append((lo, hi))
    windows = kept_windows
    base_err = (model.predict(X) - y) ** 2
    base = np.array([base_err[:, m].mean() for m in masks])
    scores = np.zeros((len(features), n_repeats, len(masks)))
    for r in range(n_repeats):
        for a, j in enumerate(features):
            Xp = X.copy()
            Xp[:, j] = X[rng.permutation(len(X)), j]
            err = (model.predict(Xp) - y) ** 2
            scores[a, r] = [err[:, m].mean() for m in masks]
    rel = 100.0 * (scores - base) / base
    out = {"features": features.tolist(), "overall": rel[:, :, 0].mean(axis=1), "overall_std": rel[:, :, 0].std(axis=1),
           "baseline_mse": float(base[0]), "windows": []}
    for k, (lo, hi) in enumerate(windows, start=1):
        out["windows"].append({"window": [float(lo), float(hi)], "importance": rel[:, :, k].mean(axis=1),
                               "baseline_mse": float(base[k])})
    return out


def fast_analysis_model(epochs: int = 40, seed: int = 0, hidden: tuple = (256, 256)):
    """A small, quickly trained XANESNET MLP for the selection experiments (no variance filter)."""
    from xasml.models.xanesnet import XanesnetMLP

    return XanesnetMLP(hidden=hidden, dropout=0.1, lr=3e-3, batch_size=128, epochs=epochs, schedule="onecycle",
                       variance_fraction=0.0, scale_targets=True, seed=seed, n_threads=1)


def _split(n: int, seed: int, val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    p = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(val_fraction * n)))
    return p[k:], p[:k]


def select_from_model_curve(X: np.ndarray, y: np.ndarray, ranking: Sequence[int],
                            fractions: Sequence[float] = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0), epochs: int = 40,
                            seed: int = 0, always: Sequence[int] = (0,)) -> list[dict]:
    """Validation error against the fraction of top-ranked features kept ("select-from-model", Fig. 10).

    Parameters
    ----------
    X, y : ndarray
        Training descriptors (n, n_features) and spectra (n, n_points); split 80:20 internally.
    ranking : sequence of int
        Feature indices, most important first.
    fractions : sequence of float
        Fractions of ``ranking`` kept.
    epochs : int
        Epochs of the fast model.
    seed : int
        Seed of the split and the models.
    always : sequence of int
        Features always included (G1).

    Returns
    -------
    list of dict
        Per fraction: ``fraction``, ``n_features``, ``features``, ``median_delta_mu`` (%), ``seconds``.
    """
    tr, va = _split(len(X), seed)
    ranking = [int(j) for j in ranking]
    out = []
    for f in fractions:
        k = max(1, int(round(f * len(ranking))))
        feats = list(dict.fromkeys([*always, *ranking[:k]]))
        t0 = time.perf_counter()
        m = fast_analysis_model(epochs, seed).fit(X[tr][:, feats], y[tr])
        d = percentage_error(y[va], m.predict(X[va][:, feats]))
        out.append({"fraction": float(f), "n_features": len(feats), "features": feats,
                    "median_delta_mu": float(np.median(d)), "seconds": round(time.perf_counter() - t0, 2)})
    return out


def forward_selection(X: np.ndarray, y: np.ndarray, pool: Sequence[int], n_select: int = 8, epochs: int = 20,
                      seed: int = 0) -> dict:
    """Forward sequential feature selection with a fast network (scikit-learn ``SequentialFeatureSelector``).

    Each candidate is scored by the negative median Δμ on a fixed 80:20 split. The cost is about
    ``n_select × len(pool)`` fits of the fast model, so keep the pool small.

    Parameters
    ----------
    X, y : ndarray
        Training descriptors and spectra.
    pool : sequence of int
        Candidate features (e.g. the most important ones by permutation).
    n_select : int
        Features to select.
    epochs : int
        Epochs of each fast fit.
    seed : int
        Seed.

    Returns
    -------
    dict
        ``selected`` (feature indices in order of the pool), ``median_delta_mu`` of the selected
        set on the validation split, ``seconds``.
    """
    from sklearn.feature_selection import SequentialFeatureSelector

    pool = np.asarray(pool, dtype=int)
    tr, va = _split(len(X), seed)
    t0 = time.perf_counter()
    sfs = SequentialFeatureSelector(fast_analysis_model(epochs, seed, hidden=(128, 128)),
                                    n_features_to_select=min(n_select, len(pool) - 1), direction="forward",
                                    cv=[(tr, va)], n_jobs=1)
    sfs.fit(X[:, pool], y)
    sel = pool[sfs.get_support()]
    m = fast_analysis_model(epochs, seed, hidden=(128, 128)).fit(X[tr][:, sel], y[tr])
    d = percentage_error(y[va], m.predict(X[va][:, sel]))
    return {"selected": sel.tolist(), "median_delta_mu": float(np.median(d)),
            "seconds": round(time.perf_counter() - t0, 2)}
