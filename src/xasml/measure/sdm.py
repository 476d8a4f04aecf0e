"""Spectral domain mapping (SDM): measured spectra made simulation-like for a model trained on simulation.

Method: the Lu-group perspective on AI-driven XAS analysis (seed paper 002), §II.D, built on the
cluster blind-signal-separation (cBSS) of its Ref. 9. In the paper's notation (columns are
spectra, all on one energy grid of N points):

* measured spectra ``T`` (N x m) are non-negative mixtures of n spectral motifs ``S`` (N x n),
  ``T = S C`` with weights ``C`` (n x m), ``C >= 0`` and every column of ``C`` summing to 1
  (eq. 1);
* the initial guess ``Ŝ`` is the k-means centroids of the simulated training spectra
  (simulated motifs);
* for given weights the motifs are the least-squares ones, ``S = T C⁺`` with the Moore-Penrose
  pseudoinverse ``C⁺ = Cᵀ (C Cᵀ)⁻¹``, and the weights are optimised so that this ``S`` stays
  close to ``Ŝ``: ``L = ‖Ŝ − T C⁺‖`` (eq. 2);
* the mapped spectra keep the fitted weights but take the **simulated** motifs,
  ``T̃ = Ŝ C`` (eq. 3): they are what the model trained on simulation is given.

Implementation (:func:`cbss_fit`). Eq. 2 alone leaves the fit of eq. 1 free (weights whose row
space misses part of T give a ``T C⁺`` near ``Ŝ`` but a poor ``S C``), so motifs and weights
minimise, per restart,

``J(S, C) = ‖T − S C‖² / ‖T‖²  +  anchor · ‖S − Ŝ‖² / ‖Ŝ‖²``,   every column of C on the simplex,

the fit of eq. 1 plus the distance of eq. 2 to the simulated motifs; for fixed C the best motifs
are ``S = (T Cᵀ + λ Ŝ)(C Cᵀ + λ I)⁻¹`` (λ = anchor · ‖T‖²/‖Ŝ‖²), which is the paper's
``T C⁺`` at anchor 0. Block-coordinate descent: simplex-constrained least squares for C
(accelerated projected gradient, the Euclidean projection onto the simplex), closed form for S,
every restart at once as stacked numpy arrays. Each restart starts from random weights
(Dirichlet(1) columns, seeded); the paper averages 100 random initialisations of C. Restarts'
motifs are matched to the simulated motifs (Hungarian assignment on the distance to ``Ŝ``)
before motifs and weights are averaged; the spread across restarts is reported, and so is the
paper's eq. 2 loss ``‖Ŝ − T C⁺‖²/‖Ŝ‖²`` of every restart.

Array conventions of the public functions: spectra are **rows** (``T`` is m x N, as model
inputs are), motifs are **columns** (``basis_*`` is N x n) and weights are n x m, as in the
paper.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xasml.errors import DataError

__all__ = [
    "SDMResult",
    "cbss_fit",
    "cbss_losses",
    "kmeans_basis",
    "map_with_bundle",
    "project_simplex",
    "spectral_domain_map",
]

_EPS = 1e-10  # ridge on C Cᵀ (relative to its trace): keeps the pseudoinverse finite for a degenerate C


@dataclass
class SDMResult:
    """Result of :func:`spectral_domain_map` (shapes: m spectra, N grid points, n motifs, R restarts).

    Attributes
    ----------
    basis_simulated : ndarray, shape (N, n)
        ``Ŝ``: k-means centroids of the simulated training spectra (the initial guess, and the
        basis of the mapped spectra), ordered by edge position (first crossing of half the
        maximum), same units as the training spectra (max-normalised model input).
    basis_fitted : ndarray, shape (N, n)
        ``S = T C⁺`` averaged over the restarts: the optimised, experimental motifs.
    weights : ndarray, shape (n, m)
        ``C`` averaged over the restarts; each column is non-negative and sums to 1.
    mapped : ndarray, shape (m, N)
        ``T̃ = Ŝ C`` (eq. 3) as rows: the simulation-like spectra.
    residual : ndarray, shape (m,)
        RMS of ``T − S C`` per measured spectrum (averaged motifs and weights), units of T.
    weights_std, basis_std : ndarray, shapes (n, m) and (N, n)
        Standard deviation across restarts (after motif matching).
    loss_pinv, loss_anchor, loss_fit : ndarray, shape (R,)
        Per restart at the end: ``‖Ŝ − T C⁺‖² / ‖Ŝ‖²`` (eq. 2), ``‖Ŝ − S‖² / ‖Ŝ‖²`` and
        ``‖T − S C‖² / ‖T‖²`` (eq. 1).
    cluster_sizes : ndarray, shape (n,)
        Training spectra per k-means cluster.
    energy : ndarray, shape (N,) or None
        The grid (eV), when given.
    n_restarts, seed, n_iter, anchor, seconds : run parameters and wall time.
    """

    basis_simulated: np.ndarray
    basis_fitted: np.ndarray
    weights: np.ndarray
    mapped: np.ndarray
    residual: np.ndarray
    weights_std: np.ndarray
    basis_std: np.ndarray
    loss_pinv: np.ndarray
    loss_anchor: np.ndarray
    loss_fit: np.ndarray
    cluster_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    energy: np.ndarray | None = None
    n_restarts: int = 0
    seed: int = 0
    n_iter: int = 0
    anchor: float = 1.0
    seconds: float = 0.0

    @property
    def n_motifs(self) -> int:
        return int(self.basis_simulated.shape[1])

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: sizes, losses, residuals and the restarts' spread."""
        return {
            "method": "cBSS spectral domain mapping (Lu-group perspective, paper 002 §II.D, eqs. 1-3)",
            "n_spectra": int(self.weights.shape[1]), "n_points": int(self.basis_simulated.shape[0]),
            "n_motifs": self.n_motifs, "n_restarts": int(self.n_restarts), "seed": int(self.seed),
            "n_iter": int(self.n_iter), "anchor": float(self.anchor),
            "cluster_sizes": [int(v) for v in self.cluster_sizes],
            "loss_pinv_eq2_mean": float(np.mean(self.loss_pinv)), "loss_pinv_eq2_std": float(np.std(self.loss_pinv)),
            "loss_anchor_mean": float(np.mean(self.loss_anchor)),
            "loss_fit_mean": float(np.mean(self.loss_fit)), "loss_fit_std": float(np.std(self.loss_fit)),
            "residual_rms_mean": float(np.mean(self.residual)), "residual_rms_max": float(np.max(self.residual)),
            "weights_std_mean": float(np.mean(self.weights_std)), "weights_std_max": float(np.max(self.weights_std)),
            "basis_std_max": float(np.max(self.basis_std)),
            "mean_weights": [round(float(v), 4) for v in self.weights.mean(axis=1)],
            "seconds": round(float(self.seconds), 3),
            "restarts_per_second": round(float(self.n_restarts / self.seconds), 1) if self.seconds > 0 else None,
        }


# -- building blocks -------------------------------------------------------------------------
def project_simplex(V: np.ndarray, axis: int = -2) -> np.ndarray:
    """Euclidean projection of every vector along ``axis`` onto the probability simplex.

    Sort-based algorithm (Held, Wolfe & Crowder 1974; Duchi et al. 2008), vectorised over all
    other axes: the result is non-negative and sums to 1 along ``axis``.

    Parameters
    ----------
    V : ndarray
    axis : int
        The axis holding the vectors (default: second to last, the motif axis of (..., n, m)).

    Returns
    -------
    ndarray, same shape as ``V``
    """
    X = np.moveaxis(np.asarray(V, dtype=float), axis, -1)
    n = X.shape[-1]
    U = -np.sort(-X, axis=-1)
    css = np.cumsum(U, axis=-1) - 1.0
    k = np.arange(1, n + 1)
    cond = U - css / k > 0
    rho = n - 1 - np.argmax(cond[..., ::-1], axis=-1)  # last index where cond holds
    theta = np.take_along_axis(css, rho[..., None], axis=-1) / (rho[..., None] + 1.0)
    return np.moveaxis(np.maximum(X - theta, 0.0), -1, axis)


def kmeans_basis(training_spectra: np.ndarray, n_motifs: int, seed: int = 0,
                 energy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Simulated motifs ``Ŝ``: k-means centroids of the training spectra (scikit-learn, seeded).

    Parameters
    ----------
    training_spectra : ndarray, shape (n_train, N)
        Simulated spectra, one per row, on the grid of the measured ones.
    n_motifs : int
        Number of clusters ``n``.
    seed : int
        ``KMeans(random_state=seed, n_init=10)``.
    energy : ndarray, shape (N,), optional
        Only used to order the centroids (otherwise grid index).

    Returns
    -------
    basis : ndarray, shape (N, n)
        Centroids as columns, ordered by edge position (first point where the centroid reaches
        half its maximum), ties by cluster size.
    sizes : ndarray, shape (n,)
        Training spectra per cluster, same order.

    Raises
    ------
    DataError
        If there are fewer distinct training spectra than motifs.
    """
    from sklearn.cluster import KMeans

    X = np.asarray(training_spectra, dtype=float)
    n_distinct = len(np.unique(X.round(8), axis=0))
    if n_distinct < n_motifs:
        raise DataError(f"n_motifs is {n_motifs} but the model's training spectra hold {n_distinct} distinct "
                        f"spectra; expected at least as many as motifs")
    km = KMeans(n_clusters=int(n_motifs), random_state=int(seed), n_init=10).fit(X)
    centres = km.cluster_centers_
    sizes = np.bincount(km.labels_, minlength=n_motifs)
    half = np.argmax(centres >= 0.5 * centres.max(axis=1, keepdims=True), axis=1)
    order = np.lexsort((-sizes, half))
    return centres[order].T.copy(), sizes[order]


def cbss_losses(C: np.ndarray, S: np.ndarray, Tp: np.ndarray, S0: np.ndarray) -> tuple[np.ndarray, ...]:
    """Diagnostics per restart (paper's column layout; R restarts stacked).

    Parameters
    ----------
    C : ndarray, shape (R, n, m)
    S : ndarray, shape (R, N, n)
    Tp : ndarray, shape (N, m)
        Measured spectra as columns.
    S0 : ndarray, shape (N, n)

    Returns
    -------
    loss_pinv : ndarray, shape (R,)
        Eq. 2, ``‖Ŝ − T C⁺‖² / ‖Ŝ‖²``.
    loss_anchor : ndarray, shape (R,)
        ``‖Ŝ − S‖² / ‖Ŝ‖²``.
    loss_fit : ndarray, shape (R,)
        ``‖T − S C‖² / ‖T‖²`` (eq. 1).
    """
    n = C.shape[1]
    G = C @ np.swapaxes(C, 1, 2)
    G = G + (_EPS * np.trace(G, axis1=1, axis2=2))[:, None, None] * np.eye(n)
    S_pinv = Tp @ (np.swapaxes(C, 1, 2) @ np.linalg.inv(G))
    a0, f0 = float(np.sum(S0 ** 2)), float(np.sum(Tp ** 2))
    return (np.sum((S_pinv - S0) ** 2, axis=(1, 2)) / a0, np.sum((S - S0) ** 2, axis=(1, 2)) / a0,
            np.sum((Tp - S @ C) ** 2, axis=(1, 2)) / f0)


def _weights_step(C: np.ndarray, S: np.ndarray, Tp: np.ndarray, n_inner: int) -> np.ndarray:
    """Simplex-constrained least squares of T on S for every column and restart (FISTA, warm start)."""
    StS = np.swapaxes(S, 1, 2) @ S                     # (R, n, n)
    StT = np.swapaxes(S, 1, 2) @ Tp                    # (R, n, m)
    L = np.linalg.eigvalsh(StS)[:, -1][:, None, None] + 1e-12
    Y, C_prev, t = C, C, 1.0
    for _ in range(n_inner):
        C_new = project_simplex(Y - (StS @ Y - StT) / L)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Y = C_new + ((t - 1.0) / t_new) * (C_new - C_prev)
        C_prev, t = C_new, t_new
    return C_prev


def _basis_step(C: np.ndarray, Tp: np.ndarray, S0: np.ndarray, lam: float) -> np.ndarray:
    """Motifs minimising ``‖T − S C‖² + lam ‖S − Ŝ‖²`` for each restart (closed form)."""
    n = C.shape[1]
    G = C @ np.swapaxes(C, 1, 2)
    G = G + (lam + _EPS * np.trace(G, axis1=1, axis2=2))[:, None, None] * np.eye(n)
    rhs = Tp @ np.swapaxes(C, 1, 2) + lam * S0        # (R, N, n)
    return np.swapaxes(np.linalg.solve(G, np.swapaxes(rhs, 1, 2)), 1, 2)


def cbss_fit(T: np.ndarray, basis: np.ndarray, n_restarts: int = 100, seed: int = 0, n_iter: int = 200,
             anchor: float = 1.0, n_inner: int = 10, init: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fit cBSS motifs and weights for R restarts at once (alternating, all restarts stacked).

    Minimises ``‖T − S C‖² / ‖T‖² + anchor · ‖S − Ŝ‖² / ‖Ŝ‖²`` with every column of C on the
    probability simplex, alternating (1) the weights: simplex-constrained least squares of T on
    S, ``n_inner`` accelerated projected-gradient (FISTA) steps, warm-started, and (2) the motifs,
    in closed form, ``S = (T Cᵀ + λ Ŝ)(C Cᵀ + λ I)⁻¹`` with ``λ = anchor · ‖T‖² / ‖Ŝ‖²``; with
    ``anchor = 0`` this is ``S = T C⁺``, the pseudoinverse step of paper 002 eq. 2. Each step
    lowers the objective.

    Parameters
    ----------
    T : ndarray, shape (m, N)
        Measured spectra as rows, on the grid of ``basis``.
    basis : ndarray, shape (N, n)
        Simulated motifs ``Ŝ`` (columns); n <= m.
    n_restarts : int
        R random initialisations of C (Dirichlet(1) columns from ``numpy.random.default_rng(seed)``).
    seed : int
    n_iter : int
        Alternations.
    anchor : float
        Weight of the distance to the simulated motifs (relative to the fit, both normalised).
    n_inner : int
        FISTA steps per weights update.
    init : ndarray, shape (R, n, m), optional
        Start from these weights instead (projected onto the simplex first).

    Returns
    -------
    dict
        ``C`` (R, n, m), ``S`` (R, N, n), ``loss_pinv``, ``loss_anchor``, ``loss_fit`` (R,)
        (see :func:`cbss_losses`).
    """
    Tp = np.asarray(T, dtype=float).T
    S0 = np.asarray(basis, dtype=float)
    m, n = Tp.shape[1], S0.shape[1]
    if init is not None:
        C = project_simplex(np.asarray(init, dtype=float))
    else:
        rng = np.random.default_rng(seed)
        C = np.moveaxis(rng.dirichlet(np.ones(n), size=(n_restarts, m)), 2, 1)
    lam = float(anchor) * float(np.sum(Tp ** 2)) / max(float(np.sum(S0 ** 2)), 1e-300)
    S = _basis_step(C, Tp, S0, lam)
    for _ in range(int(n_iter)):
        C = _weights_step(C, S, Tp, n_inner)
        S = _basis_step(C, Tp, S0, lam)
    lp, la, lf = cbss_losses(C, S, Tp, S0)
    return {"C": C, "S": S, "loss_pinv": lp, "loss_anchor": la, "loss_fit": lf}


def _match_motifs(S: np.ndarray, S0: np.ndarray) -> np.ndarray:
    """Permutation per restart (R, n) putting restart motifs in the order of ``S0`` (Hungarian, squared distance)."""
    from scipy.optimize import linear_sum_assignment

    cost = np.sum((S[:, :, :, None] - S0[None, :, None, :]) ** 2, axis=1)  # (R, n_fit, n_sim)
    perms = np.empty(cost.shape[:2], dtype=int)
    for r, c in enumerate(cost):
        rows, cols = linear_sum_assignment(c)
        perms[r, cols] = rows
    return perms


def spectral_domain_map(T: np.ndarray, training_spectra: np.ndarray | None, n_motifs: int, n_restarts: int = 100,
                        seed: int = 0, n_iter: int = 200, anchor: float = 1.0, n_inner: int = 10,
                        energy: np.ndarray | None = None, basis: np.ndarray | None = None) -> SDMResult:
    """Map measured spectra onto the simulated domain by cBSS (paper 002 §II.D, eqs. 1-3).

    Parameters
    ----------
    T : ndarray, shape (m, N)
        Measured spectra as rows, prepared as the model's input (same grid and normalisation as
        ``training_spectra``; :func:`map_with_bundle` does that for a model bundle).
    training_spectra : ndarray, shape (n_train, N) or None
        The model's simulated training spectra; their k-means centroids are ``Ŝ``
        (:func:`kmeans_basis`). May be None when ``basis`` is given.
    n_motifs : int
        n, the number of motifs (the paper uses 4 for the Ti K edge of the zinc titanate film);
        ``1 <= n <= m``.
    n_restarts : int
        Random initialisations of the weights, averaged (paper: 100).
    seed : int
        Seeds k-means and the initial weights.
    n_iter, anchor, n_inner :
        Optimiser settings, see :func:`cbss_fit`.
    energy : ndarray, shape (N,), optional
        Grid in eV (stored in the result, used to order the motifs).
    basis : ndarray, shape (N, n), optional
        Use these simulated motifs instead of k-means centroids.

    Returns
    -------
    SDMResult

    Raises
    ------
    DataError
        Naming the field: shapes that do not fit, non-finite values, ``n_motifs`` outside
        1..m, fewer distinct training spectra than motifs, ``n_restarts`` < 1.
    """
    t0 = time.perf_counter()
    T = np.asarray(T, dtype=float)
    if T.ndim != 2 or T.shape[0] < 1 or T.shape[1] < 2:
        raise DataError(f"measured spectra have shape {T.shape}; expected (m spectra, N grid points)")
    if not np.isfinite(T).all():
        raise DataError("measured spectra contain non-finite values")
    m, N = T.shape
    if not 1 <= int(n_motifs) <= m:
        raise DataError(f"n_motifs is {n_motifs}; expected 1 to {m} (the number of measured spectra)")
    if int(n_restarts) < 1:
        raise DataError(f"n_restarts is {n_restarts}; expected at least 1")
    if basis is None:
        if training_spectra is None:
            raise DataError("no training spectra: the model bundle carries no training_spectra.npz, which spectral "
                            "domain mapping needs (its k-means centroids are the simulated motifs)")
        X = np.asarray(training_spectra, dtype=float)
        if X.ndim != 2 or X.shape[1] != N:
            raise DataError(f"training spectra have shape {X.shape}; expected (n_train, {N}) on the grid of the "
                            "measured spectra")
        basis, sizes = kmeans_basis(X, int(n_motifs), seed, energy)
    else:
        basis = np.asarray(basis, dtype=float)
        if basis.shape != (N, int(n_motifs)):
            raise DataError(f"basis has shape {basis.shape}; expected ({N}, {n_motifs})")
        sizes = np.zeros(int(n_motifs), dtype=int)
    fit = cbss_fit(T, basis, int(n_restarts), int(seed), int(n_iter), anchor, int(n_inner))
    C, S = fit["C"], fit["S"]
    perms = _match_motifs(S, basis)
    C = np.take_along_axis(C, perms[:, :, None], axis=1)
    S = np.take_along_axis(S, perms[:, None, :], axis=2)
    Cm, Sm = C.mean(axis=0), S.mean(axis=0)
    residual = np.sqrt(np.mean((T.T - Sm @ Cm) ** 2, axis=0))
    return SDMResult(basis_simulated=basis, basis_fitted=Sm, weights=Cm, mapped=(basis @ Cm).T, residual=residual,
                     weights_std=C.std(axis=0), basis_std=S.std(axis=0), loss_pinv=fit["loss_pinv"],
                     loss_anchor=fit["loss_anchor"], loss_fit=fit["loss_fit"], cluster_sizes=sizes,
                     energy=None if energy is None else np.asarray(energy, dtype=float),
                     n_restarts=int(n_restarts), seed=int(seed), n_iter=int(n_iter), anchor=float(anchor),
                     seconds=time.perf_counter() - t0)


# -- with a local-structure model bundle ------------------------------------------------------
def map_with_bundle(bundle, spectra: Sequence, n_motifs: int, n_restarts: int = 100, seed: int = 0,
                    predict: bool = True, calibration: dict[str, Any] | None = None,
                    **options: Any) -> dict[str, Any]:
    """Spectral domain mapping of measured spectra for one local-structure model bundle.

    The measured spectra are prepared as the bundle prepares measured input
    (:meth:`xasml.models.bundle.ModelBundle.prepare_full`: calibrated and flattened, or
    area-aligned for the first Cu bundles; cubic resampling on the bundle grid, maximum 1), on
    the full grid of the bundle, where its ``training_spectra`` live. The mapped spectra ``Ŝ C`` are scaled to
    maximum 1 again (the model's input convention) before the model's feature window is taken.

    Parameters
    ----------
    bundle : xasml.models.bundle.ModelBundle
        Must carry ``training_spectra`` (n_train, n_points).
    spectra : sequence of Spectrum
        Measured spectra of the bundle's element and edge (m of them, m >= n_motifs).
    n_motifs, n_restarts, seed, **options :
        See :func:`spectral_domain_map`.
    predict : bool
        Also predict with the bundle's estimator, without and with SDM.
    calibration : dict, optional
        ``calibrate`` / ``reference`` for calibrated bundles (see ``ModelBundle.prepare_full``).

    Returns
    -------
    dict
        ``result`` (SDMResult), ``measured`` (m, n_points: T), ``records`` (preprocessing per
        spectrum) and, with ``predict``, ``predictions`` and ``predictions_sdm`` (one dict per
        spectrum, see :meth:`xasml.models.bundle.ModelBundle.predict_prepared`).

    Raises
    ------
    DataError
        If the bundle has no training spectra or they do not fit its grid.
    SpectrumError
        If a spectrum is of another element or its preprocessing fails (the file is named).
    """
    from xasml.preprocess.augment import max_normalize

    calibration = calibration or {}
    where = f"{bundle.path}: " if bundle.path is not None else ""
    if bundle.training_spectra is None:
        raise DataError(f"{where}the model bundle has no training_spectra.npz; spectral domain mapping needs the "
                        "model's simulated training spectra (their k-means centroids are the simulated motifs)")
    energy = bundle.grid.energy
    if bundle.training_spectra.shape[1] != energy.size:
        raise DataError(f"{where}training_spectra.npz holds spectra of {bundle.training_spectra.shape[1]} points; "
                        f"expected {energy.size}, one per grid point of bundle.json")
    T, records = bundle.prepare_full(spectra, [True] * len(spectra), **calibration)
    result = spectral_domain_map(T, bundle.training_spectra, n_motifs, n_restarts=n_restarts, seed=seed,
                                 energy=energy, **options)
    out: dict[str, Any] = {"result": result, "measured": T, "records": records}
    if predict:
        out["predictions"] = bundle.predict_prepared(T)
        out["predictions_sdm"] = bundle.predict_prepared(max_normalize(result.mapped))
    return out


# -- outputs ------------------------------------------------------------------------------
def plot_basis(result: SDMResult, path, title: str = "") -> Any:
    """Simulated (black) against optimised (red, ±1 std across restarts shaded) motifs, one panel
    per motif: paper 002, Figure 6a. Written atomically as PNG."""
    from xasml.report.figures import _new_figure, _save

    n = result.n_motifs
    E = result.energy if result.energy is not None else np.arange(result.basis_simulated.shape[0])
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig = _new_figure((3.0 * cols, 2.6 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for j in range(rows * cols):
        ax = axes[j // cols][j % cols]
        if j >= n:
            ax.set_visible(False)
            continue
        s, sd = result.basis_fitted[:, j], result.basis_std[:, j]
        ax.fill_between(E, s - sd, s + sd, color="tab:red", alpha=0.25, lw=0)
        ax.plot(E, result.basis_simulated[:, j], color="black", lw=1.4, label="simulated Ŝ (k-means)")
        ax.plot(E, s, color="tab:red", lw=1.2, label="optimised S")
        size = f", {int(result.cluster_sizes[j])} sites" if result.cluster_sizes.size and result.cluster_sizes[j] else ""
        ax.set_title(f"motif {j + 1} (mean weight {result.weights[j].mean():.2f}{size})", fontsize=9)
        ax.grid(alpha=0.3)
        if j % cols == 0:
            ax.set_ylabel("μ (max-normalised)")
        if j // cols == rows - 1:
            ax.set_xlabel("Energy (eV)" if result.energy is not None else "grid point")
        if j == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _csv(header: Sequence[str], columns: Sequence[np.ndarray], fmt: str = "{:.6g}") -> str:
    lines = [",".join(_csv_field(h) for h in header)]
    for row in zip(*columns):
        lines.append(",".join(v if isinstance(v, str) else fmt.format(float(v)) for v in row))
    return "\n".join(lines) + "\n"


def _csv_field(s: str) -> str:
    s = str(s)
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def write_outputs(out, mapping: dict[str, Any], labels: Sequence[str], bundle) -> dict[str, Any]:
    """Write what ``xasml measure map`` writes to ``out`` (each file atomically) and return the summary.

    Files: ``basis.csv`` (energy in eV; simulated, fitted and fitted-std motifs),
    ``weights.csv`` (one row per spectrum: label, weights, RMS residual),
    ``measured.csv`` and ``mapped.csv`` (energy in eV, one column per spectrum: the prepared
    measured spectra T and the mapped ``Ŝ C``), ``basis.png`` (:func:`plot_basis`),
    ``predictions.csv`` (with and without SDM, when predicted) and ``sdm.json`` (summary).
    """
    from pathlib import Path

    from xasml.utils import atomic_write_json, atomic_write_text

    out = Path(out)
    r: SDMResult = mapping["result"]
    E = r.energy
    n = r.n_motifs
    motifs = [f"motif_{j + 1}" for j in range(n)]
    atomic_write_text(out / "basis.csv", _csv(
        ["energy_eV", *(f"simulated_{k}" for k in motifs), *(f"fitted_{k}" for k in motifs),
         *(f"fitted_std_{k}" for k in motifs)],
        [E, *r.basis_simulated.T, *r.basis_fitted.T, *r.basis_std.T]))
    atomic_write_text(out / "weights.csv", _csv(
        ["spectrum", *motifs, *(f"std_{k}" for k in motifs), "residual_rms"],
        [list(labels), *r.weights, *r.weights_std, r.residual]))
    atomic_write_text(out / "measured.csv", _csv(["energy_eV", *labels], [E, *mapping["measured"]]))
    atomic_write_text(out / "mapped.csv", _csv(["energy_eV", *labels], [E, *r.mapped]))
    plot_basis(r, out / "basis.png", title=f"{bundle.element} {bundle.edge}: simulated vs optimised motifs")
    summary: dict[str, Any] = {
        "model": {"path": str(bundle.path) if bundle.path is not None else None, "task": bundle.task,
                  "element": bundle.element, "edge": bundle.edge, "grid": bundle.grid.to_dict(),
                  "n_training_spectra": int(bundle.training_spectra.shape[0])},
        **r.summary(),
        "spectra": [{"spectrum": lab, "weights": [round(float(v), 4) for v in r.weights[:, i]],
                     "residual_rms": round(float(r.residual[i]), 5),
                     "alignment_shift_eV": round(float(mapping["records"][i].get("shift_eV", 0.0)), 3)}
                    for i, lab in enumerate(labels)],
    }
    if "predictions" in mapping:
        rows = []
        for lab, p0, p1 in zip(labels, mapping["predictions"], mapping["predictions_sdm"]):
            rows.append({"spectrum": lab, "without_sdm": p0, "with_sdm": p1})
        summary["predictions"] = rows
        if bundle.is_classifier:
            text = _csv(["spectrum", "prediction", "prediction_sdm"],
                        [list(labels), [p["prediction"] for p in mapping["predictions"]],
                         [p["prediction"] for p in mapping["predictions_sdm"]]])
        else:
            text = _csv(["spectrum", "prediction", "std", "prediction_sdm", "std_sdm"],
                        [list(labels), [p["prediction"] for p in mapping["predictions"]],
                         [p["std"] for p in mapping["predictions"]],
                         [p["prediction"] for p in mapping["predictions_sdm"]],
                         [p["std"] for p in mapping["predictions_sdm"]]])
        atomic_write_text(out / "predictions.csv", text)
    atomic_write_json(out / "sdm.json", summary)
    return summary
