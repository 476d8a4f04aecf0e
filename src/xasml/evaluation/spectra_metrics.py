"""Accuracy of predicted spectra: percentage error Δμ and peak positions (XANESNET Tables I and II).

Rankine & Penfold, J. Chem. Phys. 156, 164102 (2022), §III.D:

* per-spectrum percentage error ``Δμ = 100 Σ_E |μ_pred − μ_true| / Σ_E |μ_true|`` over the
  energy grid; summarised by its median, lower and upper quartiles and skewness (Table I);
* positions of the prominent peaks of target and prediction, matched one-to-one; summarised
  by the mean and maximum of ``|ΔE|``, the standard deviation of ``ΔE``, the coefficient of
  determination R² of ``E_pred`` against ``E_true`` and the hit rate (Table II, Fig. 12).

**How peaks are found.** :func:`find_spectrum_peaks` uses ``scipy.signal.find_peaks`` on μ with
a minimum prominence of ``prominence`` × (max μ − min μ) of that spectrum (default 0.05, i.e.
5 % of the spectrum's intensity range), so shoulders and ripples below that are ignored; the
position of each maximum is refined to sub-grid precision by the vertex of the parabola through
the maximum and its two neighbours.

**How peaks are matched.** :func:`match_peaks` pairs target and predicted peaks one-to-one by
minimum total ``|ΔE|`` (``scipy.optimize.linear_sum_assignment``), and only pairs closer than
``max_shift`` eV (default 5 eV) count. The hit rate is matched target peaks / all target peaks.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "error_summary",
    "find_spectrum_peaks",
    "match_peaks",
    "peak_metrics",
    "percentage_error",
    "spectra_report",
]


def percentage_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-spectrum percentage error Δμ = 100 Σ|μ_pred − μ_true| / Σ|μ_true|.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n_spectra, n_points) or (n_points,)
        Target and predicted spectra on the same grid.

    Returns
    -------
    ndarray, shape (n_spectra,) (a float for 1-D input)

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must have the same shape")
    num = np.abs(p - t).sum(axis=-1)
    den = np.abs(t).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * num / den


def error_summary(delta: np.ndarray) -> dict:
    """Median, quartiles, mean and skewness of a Δμ distribution (paper Table I).

    Parameters
    ----------
    delta : ndarray, shape (n,)
        Per-spectrum errors, %.

    Returns
    -------
    dict
        ``median``, ``lower_quartile``, ``upper_quartile``, ``mean``, ``p95``, ``skewness``
        (Fisher-Pearson moment coefficient, ``scipy.stats.skew``), ``n``.
    """
    from scipy.stats import skew

    d = np.asarray(delta, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"n": 0}
    q1, q2, q3, p95 = np.percentile(d, [25, 50, 75, 95])
    return {"n": int(d.size), "median": float(q2), "lower_quartile": float(q1), "upper_quartile": float(q3),
            "mean": float(d.mean()), "p95": float(p95), "skewness": float(skew(d)) if d.size > 2 else float("nan")}


def find_spectrum_peaks(energy: np.ndarray, mu: np.ndarray, prominence: float = 0.05) -> np.ndarray:
    """Energies of the prominent maxima of one spectrum.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Energies in eV.
    mu : ndarray, shape (n,)
        The spectrum.
    prominence : float
        Minimum peak prominence as a fraction of the spectrum's range ``max(mu) - min(mu)``.

    Returns
    -------
    ndarray, shape (n_peaks,)
        Peak energies in eV (sub-grid, parabolic refinement), increasing.
    """
    from scipy.signal import find_peaks

    e = np.asarray(energy, dtype=float)
    y = np.asarray(mu, dtype=float)
    span = float(y.max() - y.min())
    if span <= 0:
        return np.zeros(0)
    idx, _ = find_peaks(y, prominence=prominence * span)
    out = []
    for i in idx:
        if 0 < i < len(y) - 1:
            y0, y1, y2 = y[i - 1], y[i], y[i + 1]
            den = y0 - 2 * y1 + y2
            off = 0.5 * (y0 - y2) / den if den != 0 else 0.0
            off = float(np.clip(off, -0.5, 0.5))
            step = (e[i + 1] - e[i - 1]) / 2
            out.append(e[i] + off * step)
        else:
            out.append(e[i])
    return np.asarray(out)


def match_peaks(e_true: np.ndarray, e_pred: np.ndarray, max_shift: float = 5.0) -> list[tuple[int, int]]:
    """Match target and predicted peaks one-to-one by minimum total |ΔE|.

    Parameters
    ----------
    e_true, e_pred : ndarray
        Peak energies (eV) of the target and of the prediction.
    max_shift : float
        Pairs further apart than this (eV) are not matched.

    Returns
    -------
    list of (int, int)
        Index pairs (target, predicted), sorted by target index.
    """
    from scipy.optimize import linear_sum_assignment

    a = np.asarray(e_true, dtype=float)
    b = np.asarray(e_pred, dtype=float)
    if a.size == 0 or b.size == 0:
        return []
    cost = np.abs(a[:, None] - b[None, :])
    big = max_shift * 10 + cost.max() + 1.0
    rows, cols = linear_sum_assignment(np.where(cost <= max_shift, cost, big))
    return sorted((int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= max_shift)


def peak_metrics(energy: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, prominence: float = 0.05,
                 max_shift: float = 5.0) -> dict:
    """Peak-position accuracy over many spectra (paper Table II and Fig. 12).

    Parameters
    ----------
    energy : ndarray, shape (n_points,)
        Common energy grid, eV.
    y_true, y_pred : ndarray, shape (n_spectra, n_points)
        Target and predicted spectra.
    prominence, max_shift : float
        See :func:`find_spectrum_peaks` and :func:`match_peaks`.

    Returns
    -------
    dict
        ``n_target_peaks``, ``n_predicted_peaks``, ``n_matched``, ``hit_rate`` (matched / target),
        ``precision`` (matched / predicted: low when the prediction has spurious peaks),
        ``mean_abs_dE``, ``max_abs_dE``, ``sigma_dE`` (standard deviation of the signed
        ``E_pred − E_true``), ``mean_dE``, ``r2`` (of ``E_pred`` against ``E_true``), and
        ``pairs``: array (n_matched, 3) of (spectrum index, E_true, E_pred) for parity plots.
    """
    from sklearn.metrics import r2_score

    Yt = np.atleast_2d(np.asarray(y_true, dtype=float))
    Yp = np.atleast_2d(np.asarray(y_pred, dtype=float))
    n_true = n_pred = 0
    pairs = []
    for s, (t, p) in enumerate(zip(Yt, Yp)):
        et = find_spectrum_peaks(energy, t, prominence)
        ep = find_spectrum_peaks(energy, p, prominence)
        n_true += et.size
        n_pred += ep.size
        pairs += [(s, et[i], ep[j]) for i, j in match_peaks(et, ep, max_shift)]
    arr = np.asarray(pairs, dtype=float).reshape(-1, 3)
    out = {"n_target_peaks": int(n_true), "n_predicted_peaks": int(n_pred), "n_matched": len(arr),
           "hit_rate": float(len(arr) / n_true) if n_true else float("nan"),
           "precision": float(len(arr) / n_pred) if n_pred else float("nan"),
           "prominence": prominence, "max_shift_eV": max_shift}
    if len(arr):
        de = arr[:, 2] - arr[:, 1]
        out.update({"mean_abs_dE": float(np.abs(de).mean()), "max_abs_dE": float(np.abs(de).max()),
                    "sigma_dE": float(de.std(ddof=1)) if len(de) > 1 else 0.0, "mean_dE": float(de.mean()),
                    "r2": float(r2_score(arr[:, 1], arr[:, 2])) if len(arr) > 1 else float("nan")})
    out["pairs"] = arr
    return out


def spectra_report(energy: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, prominence: float = 0.05,
                   max_shift: float = 5.0) -> dict:
    """Table I and Table II metrics together, JSON-ready (``pairs`` dropped).

    Returns
    -------
    dict
        ``delta_mu`` (see :func:`error_summary`) and ``peaks`` (see :func:`peak_metrics`), plus
        ``mse``.
    """
    delta = percentage_error(y_true, y_pred)
    peaks = peak_metrics(energy, y_true, y_pred, prominence, max_shift)
    peaks.pop("pairs")
    return {"delta_mu": error_summary(delta), "peaks": peaks,
            "mse": float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))}
