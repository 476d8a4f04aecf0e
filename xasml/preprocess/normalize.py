"""Normalisation of measured XAS spectra.

Two families of methods live here:

* **Pre-edge / post-edge normalisation** in the way Athena and xraylarch do it (the names
  ``e0``, ``pre1``, ``pre2``, ``norm1``, ``norm2``, ``edge_step``, ``norm``, ``flat`` are theirs):
  a straight line fitted below the edge, a polynomial fitted above it, the edge step is their
  difference at ``e0`` (see :func:`pre_edge`).
* **The arctangent edge-step chain** of Andrejevic et al., "Machine-learning spectral indicators
  of topology", Adv. Mater. 34, 2204113 (2022), Experimental Section: subtract a linear
  pre-edge background, fit ``f(E) = a1 (1 + 2 arctan(a2 (E - a3)) / π) / 2``, divide by ``a1``,
  and shift the energy so that the area under the fitted arctangent equals the area under the
  arctangent fitted to a reference (the mean computed spectrum of the same absorber) over a
  common window (see :func:`preprocess_measured`).

Energies are absolute eV; ``pre1`` ... ``norm2`` and ``pre_edge_range`` are relative to ``e0``
(negative below the edge).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from xasml.errors import SpectrumError

#: Largest energy step (eV) accepted around the edge by :func:`preprocess_measured`.
MAX_EDGE_STEP = 3.0
_A2_BOUNDS = (1e-3, 20.0)  # arctangent steepness bounds, 1/eV

__all__ = ["find_e0", "pre_edge", "NormResult", "ArctanFit", "arctan_step", "fit_arctan_edge",
           "arctan_area", "area_matching_shift", "preprocess_measured"]


def _as_xy(energy, mu, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(energy, dtype=float).ravel()
    m = np.asarray(mu, dtype=float).ravel()
    if e.size != m.size:
        raise SpectrumError(f"length mismatch: {e.size} energies but {m.size} mu values", source=source,
                            field="mu")
    if e.size < 5:
        raise SpectrumError(f"need at least 5 points, got {e.size}", source=source, field="energy")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(m))):
        raise SpectrumError("energy and mu must be finite", source=source)
    if np.any(np.diff(e) <= 0):
        raise SpectrumError("energies must be strictly increasing", source=source, field="energy")
    return e, m


def find_e0(energy, mu, smooth: float = 1.0, margin: int = 3) -> float:
    """Edge energy e0: the maximum of the smoothed derivative dμ/dE.

    μ is interpolated onto a uniform grid (step = the finest 10th-percentile step of the data,
    at least 0.05 eV), differentiated, and smoothed with a Gaussian of width ``smooth`` eV
    (``scipy.ndimage.gaussian_filter1d``) so that single-point glitches do not win; the
    ``margin`` end points of the data are excluded.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energies in eV, strictly increasing.
    mu : array_like, shape (n,)
        Absorption.
    smooth : float
        Gaussian smoothing width (σ) in eV; 0 disables smoothing.
    margin : int
        Number of data points at each end excluded from the search.

    Returns
    -------
    float
        e0 in eV.

    Raises
    ------
    SpectrumError
        If the arrays are invalid (lengths, non-finite, not increasing, fewer than 5 points).
    """
    from scipy.ndimage import gaussian_filter1d

    e, m = _as_xy(energy, mu)
    steps = np.diff(e)
    de = max(float(np.percentile(steps, 10)), 0.05)
    n = int(min((e[-1] - e[0]) / de, 50000)) + 1
    grid = np.linspace(e[0], e[-1], n)
    de = grid[1] - grid[0]
    d = np.gradient(np.interp(grid, e, m), de)
    if smooth > 0:
        d = gaussian_filter1d(d, smooth / de, mode="nearest")
    lo = e[min(margin, e.size - 2)]
    hi = e[max(e.size - 1 - margin, 1)]
    ok = (grid >= lo) & (grid <= hi)
    if not ok.any():
        ok[:] = True
    i = int(np.argmax(np.where(ok, d, -np.inf)))
    return float(grid[i])


@dataclass
class NormResult:
    """Result of :func:`pre_edge` (xraylarch / Athena conventions).

    Attributes
    ----------
    e0 : float
        Edge energy, eV.
    edge_step : float
        post_edge(e0) − pre_edge(e0).
    pre1, pre2 : float
        Pre-edge fit range actually used, eV relative to e0.
    norm1, norm2 : float
        Post-edge fit range actually used, eV relative to e0.
    nnorm : int
        Degree of the post-edge polynomial actually used.
    pre_coefs : tuple of float
        (slope [1/eV], intercept) of the pre-edge line μ = slope·E + intercept (absolute E).
    post_coefs : tuple of float
        Post-edge polynomial coefficients in (E − e0), highest degree first (``numpy.polyval``).
    energy : ndarray, shape (n,)
        The energies, eV.
    pre_edge, post_edge : ndarray, shape (n,)
        The fitted background curves evaluated on ``energy``.
    norm : ndarray, shape (n,)
        (μ − pre_edge) / edge_step.
    flat : ndarray, shape (n,)
        ``norm`` with the post-edge curvature removed above e0: (μ − post_edge)/edge_step + 1.
    """

    e0: float
    edge_step: float
    pre1: float
    pre2: float
    norm1: float
    norm2: float
    nnorm: int
    pre_coefs: tuple[float, float]
    post_coefs: tuple[float, ...]
    energy: np.ndarray = field(repr=False)
    pre_edge: np.ndarray = field(repr=False)
    post_edge: np.ndarray = field(repr=False)
    norm: np.ndarray = field(repr=False)
    flat: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The fitted parameters (no arrays), for storing next to a prediction."""
        d = asdict(self)
        for k in ("energy", "pre_edge", "post_edge", "norm", "flat"):
            d.pop(k)
        d["pre_coefs"] = [float(c) for c in self.pre_coefs]
        d["post_coefs"] = [float(c) for c in self.post_coefs]
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in d.items()}


def _window(e: np.ndarray, lo: float, hi: float, what: str, need: int, source: str | None) -> np.ndarray:
    sel = (e >= lo) & (e <= hi)
    if sel.sum() < need:
        raise SpectrumError(f"{what} range {lo:.1f}..{hi:.1f} eV holds {int(sel.sum())} point(s), need at "
                            f"least {need}; the data span {e[0]:.1f}..{e[-1]:.1f} eV", source=source,
                            field=what)
    return sel


def pre_edge(energy, mu, e0: float | None = None, pre1: float | None = None, pre2: float | None = None,
             norm1: float | None = None, norm2: float | None = None, nnorm: int = 2,
             source: str | None = None) -> NormResult:
    """Pre-edge line / post-edge polynomial normalisation (Athena, xraylarch ``pre_edge``).

    A line is fitted to μ on [e0+pre1, e0+pre2] and a polynomial of degree ``nnorm`` in (E−e0)
    to μ on [e0+norm1, e0+norm2]; ``edge_step`` is their difference at e0 and
    ``norm = (μ − pre_edge)/edge_step``. (Ravel & Newville, J. Synchrotron Rad. 12, 537 (2005).)

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energies in eV, strictly increasing.
    mu : array_like, shape (n,)
        Absorption.
    e0 : float, optional
        Edge energy (eV); :func:`find_e0` when not given.
    pre1, pre2 : float, optional
        Pre-edge range relative to e0 (eV, negative). Defaults: pre1 = second data point
        (the first is often bad), pre2 = min(pre1/3, −5 eV), i.e. the lower two thirds of
        the pre-edge region. Clipped to the data.
    norm1, norm2 : float, optional
        Post-edge range relative to e0 (eV). Defaults: norm2 = last data point,
        norm1 = norm2/6 (at least 2 eV). Clipped to the data.
    nnorm : int
        Degree of the post-edge polynomial (0, 1, 2 or 3); lowered automatically when the
        post-edge range is shorter than 50 eV (to 1) or 15 eV (to 0) or has too few points,
        as a quadratic over a short XANES range would follow the oscillations, and when the
        polynomial extrapolated to e0 gives a non-positive edge step. ``NormResult.nnorm``
        is the degree used.
    source : str, optional
        Name used in error messages.

    Returns
    -------
    NormResult

    Raises
    ------
    SpectrumError
        If the arrays are invalid, a range holds fewer than 2 points, or the edge step is not
        positive (no edge in the data).
    """
    e, m = _as_xy(energy, mu, source)
    if e0 is None:
        e0 = find_e0(e, m)
    e0 = float(e0)
    if not e[0] < e0 < e[-1]:
        raise SpectrumError(f"e0 = {e0:.2f} eV outside the data ({e[0]:.2f}..{e[-1]:.2f} eV)", source=source,
                            field="e0")
    if pre1 is None:
        pre1 = e[1] - e0 if e.size > 10 else e[0] - e0
    pre1 = max(float(pre1), e[0] - e0)
    if pre2 is None:
        pre2 = min(pre1 / 3.0, -5.0)
        if pre2 <= pre1:
            pre2 = pre1 / 3.0
    pre2 = float(pre2)
    if norm2 is None:
        norm2 = e[-1] - e0
    norm2 = min(float(norm2), e[-1] - e0)
    if norm1 is None:
        norm1 = max(norm2 / 6.0, 2.0)
    norm1 = float(norm1)
    if not (pre1 < pre2 and norm1 < norm2):
        raise SpectrumError(f"need pre1 < pre2 and norm1 < norm2, got pre1={pre1:.1f}, pre2={pre2:.1f}, "
                            f"norm1={norm1:.1f}, norm2={norm2:.1f} (eV relative to e0={e0:.1f})",
                            source=source, field="pre1")
    sel_pre = _window(e, e0 + pre1, e0 + pre2, "pre-edge", 2, source)
    sel_post = _window(e, e0 + norm1, e0 + norm2, "post-edge", 2, source)
    slope, intercept = np.polyfit(e[sel_pre], m[sel_pre], 1)
    span = norm2 - norm1
    deg = int(nnorm)
    if not 0 <= deg <= 3:
        raise ValueError(f"nnorm must be 0..3, got {nnorm}")
    if span < 50:
        deg = min(deg, 1)
    if span < 15:
        deg = 0
    deg = min(deg, int(sel_post.sum()) - 1)
    pre_at_e0 = slope * e0 + intercept
    while True:  # a polynomial that extrapolates below the pre-edge line at e0 is lowered in degree
        post_coefs = np.polyfit(e[sel_post] - e0, m[sel_post], deg)
        step = float(np.polyval(post_coefs, 0.0) - pre_at_e0)
        if step > 0 or deg == 0:
            break
        deg -= 1
    pre_curve = slope * e + intercept
    post_curve = np.polyval(post_coefs, e - e0)
    if not step > 0:
        raise SpectrumError(f"edge step {step:.4g} is not positive: no absorption edge between the pre-edge "
                            f"and post-edge ranges (e0={e0:.1f} eV)", source=source, field="edge_step")
    norm = (m - pre_curve) / step
    flat = np.where(e > e0, (m - post_curve) / step + 1.0, norm)
    return NormResult(e0=e0, edge_step=step, pre1=float(pre1), pre2=float(pre2), norm1=float(norm1),
                      norm2=float(norm2), nnorm=deg, pre_coefs=(float(slope), float(intercept)),
                      post_coefs=tuple(float(c) for c in post_coefs), energy=e, pre_edge=pre_curve,
                      post_edge=post_curve, norm=norm, flat=flat)


# --------------------------------------------------------------------------------------------
# Andrejevic et al. (2022): arctangent edge step and area matching
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArctanFit:
    """Parameters of the arctangent edge step f(E) = a1 (1 + 2 arctan(a2 (E − a3)) / π) / 2.

    Attributes
    ----------
    a1 : float
        Step height (units of μ): f → 0 far below and → a1 far above the edge.
    a2 : float
        Steepness, 1/eV (the step rises from 25 % to 75 % of a1 over 2/a2 eV).
    a3 : float
        Edge position (half height), eV.
    window : tuple of float or None
        Energy range (eV) the fit used.
    rmse : float or None
        Root-mean-square residual of the fit, units of μ.
    """

    a1: float
    a2: float
    a3: float
    window: tuple[float, float] | None = None
    rmse: float | None = None

    def __call__(self, energy) -> np.ndarray:
        """Evaluate the fitted step at ``energy`` (eV)."""
        return arctan_step(energy, self.a1, self.a2, self.a3)

    def to_dict(self) -> dict[str, Any]:
        """Parameters as a JSON-friendly dict."""
        return {"a1": self.a1, "a2": self.a2, "a3": self.a3,
                "window": list(self.window) if self.window else None, "rmse": self.rmse}


def arctan_step(energy, a1: float, a2: float, a3: float) -> np.ndarray:
    """Arctangent edge step a1 (1 + 2 arctan(a2 (E − a3)) / π) / 2 (Andrejevic et al. 2022).

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energies, eV.
    a1 : float
        Step height.
    a2 : float
        Steepness, 1/eV.
    a3 : float
        Edge position, eV.

    Returns
    -------
    ndarray, shape (n,)
    """
    e = np.asarray(energy, dtype=float)
    return a1 * (1.0 + 2.0 * np.arctan(a2 * (e - a3)) / np.pi) / 2.0


def fit_arctan_edge(energy, mu, window: tuple[float, float] | None = None,
                    source: str | None = None) -> ArctanFit:
    """Least-squares fit of :func:`arctan_step` to a background-subtracted spectrum.

    Uses ``scipy.optimize.curve_fit`` (trust-region reflective, bounded). Initial guesses:
    a3 = :func:`find_e0`, a1 = median μ of the top quarter of the window, a2 = 0.5 eV⁻¹.
    Bounds: 0 < a1 ≤ 10·max|μ|, 10⁻³ ≤ a2 ≤ 20 eV⁻¹, a3 inside the window.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energies, eV, strictly increasing.
    mu : array_like, shape (n,)
        Absorption with the pre-edge background removed (≈ 0 below the edge).
    window : (float, float), optional
        Absolute energy range (eV) to fit; default the whole spectrum.
    source : str, optional
        Name used in error messages.

    Returns
    -------
    ArctanFit

    Raises
    ------
    SpectrumError
        If the window holds fewer than 5 points, the data have no rising edge, or the fit fails.
    """
    from scipy.optimize import curve_fit

    e, m = _as_xy(energy, mu, source)
    if window is not None:
        lo, hi = float(window[0]), float(window[1])
        sel = _window(e, lo, hi, "arctangent fit", 5, source)
        e, m = e[sel], m[sel]
    lo, hi = float(e[0]), float(e[-1])
    top = m[e >= lo + 0.75 * (hi - lo)]
    a1_0 = float(np.median(top)) if top.size else float(m.max())
    if not a1_0 > 0:
        raise SpectrumError("no rising absorption edge: μ above the edge is not larger than below it",
                            source=source, field="mu")
    a3_0 = find_e0(e, m) if e.size >= 5 else 0.5 * (lo + hi)
    scale = 10.0 * float(np.max(np.abs(m)))
    p0 = [min(a1_0, scale * 0.99), 0.5, min(max(a3_0, lo), hi)]
    try:
        popt, _ = curve_fit(arctan_step, e, m, p0=p0, bounds=([1e-12, _A2_BOUNDS[0], lo], [scale, _A2_BOUNDS[1], hi]),
                            method="trf", maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise SpectrumError(f"arctangent edge fit failed: {exc}", source=source, field="mu") from None
    a1, a2, a3 = (float(p) for p in popt)
    rmse = float(np.sqrt(np.mean((arctan_step(e, a1, a2, a3) - m) ** 2)))
    return ArctanFit(a1=a1, a2=a2, a3=a3, window=(lo, hi), rmse=rmse)


def arctan_area(fit: ArctanFit, window: tuple[float, float], shift: float = 0.0,
                unit_amplitude: bool = True) -> float:
    """Area under the fitted arctangent over ``window`` (eV · μ), after shifting it by ``shift`` eV.

    Closed form: ∫ arctan(a x) dx = x arctan(a x) − ln(1 + a² x²) / (2a).

    Parameters
    ----------
    fit : ArctanFit
    window : (float, float)
        Absolute energy range, eV.
    shift : float
        Energy shift applied to the step (its position becomes a3 + shift), eV.
    unit_amplitude : bool
        Use a1 = 1 (the step after scaling by 1/a1) instead of the fitted a1.
    """
    lo, hi = float(window[0]), float(window[1])
    a = fit.a2
    c = fit.a3 + shift

    def prim(x):
        return x * math.atan(a * x) - math.log1p((a * x) ** 2) / (2.0 * a)

    amp = 1.0 if unit_amplitude else fit.a1
    return amp * 0.5 * ((hi - lo) + (2.0 / math.pi) * (prim(hi - c) - prim(lo - c)))


def area_matching_shift(measured: ArctanFit, reference: ArctanFit, window: tuple[float, float],
                        unit_amplitude: bool = True) -> float:
    """Energy shift (eV) that makes the measured arctangent's area equal the reference's.

    Andrejevic et al. (2022), Experimental Section: the measured spectrum is shifted so that
    the area under its fitted arctangent over a common window equals the area under the
    arctangent fitted to the reference (the mean computed spectrum of the absorber). The area
    decreases monotonically as the step moves to higher energy, so the shift is the unique
    root of A_measured(shift) = A_reference, found with ``scipy.optimize.brentq``. With equal
    steepness (a2) it equals reference.a3 − measured.a3.

    Parameters
    ----------
    measured, reference : ArctanFit
        The two fitted steps.
    window : (float, float)
        Common absolute energy window, eV (e.g. the reference spectrum's energy range).
    unit_amplitude : bool
        Compare steps of unit height (default; both spectra are step-normalised, so the
        shift reflects position only); False uses the fitted a1 of each.

    Returns
    -------
    float
        Shift in eV to add to the measured energies.

    Raises
    ------
    ValueError
        If the window is empty or no shift within ±(2·window width) matches the areas.
    """
    from scipy.optimize import brentq

    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise ValueError(f"empty window {window}")
    target = arctan_area(reference, (lo, hi), unit_amplitude=unit_amplitude)
    width = hi - lo
    bound = 2.0 * width + abs(reference.a3 - measured.a3)

    def f(s):
        return arctan_area(measured, (lo, hi), shift=s, unit_amplitude=unit_amplitude) - target

    a, b = -bound, bound
    fa, fb = f(a), f(b)
    if fa * fb > 0:
        raise ValueError(f"no energy shift within ±{bound:.0f} eV matches the arctangent areas "
                         f"(reference area {target:.3f} over {lo:.1f}..{hi:.1f} eV)")
    return float(brentq(f, a, b, xtol=1e-6))


def preprocess_measured(spectrum, reference_energy, reference_mu,
                        pre_edge_range: tuple[float, float] | None = None,
                        fit_window: tuple[float, float] | None = None):
    """Prepare a measured spectrum for a model trained on computed spectra (Andrejevic et al. 2022).

    Steps (Experimental Section of the paper):

    1. e0 = :func:`find_e0`; a straight line is fitted to μ on ``pre_edge_range`` (relative to
       e0) and subtracted.
    2. :func:`fit_arctan_edge` on the background-subtracted spectrum over ``fit_window``; the
       spectrum is divided by a1, so it goes from ≈0 below to ≈1 above the edge, like
       computed spectra.
    3. An arctangent is fitted to the reference (the mean computed spectrum of the same
       absorber) over its whole range, and the measured energies are shifted by
       :func:`area_matching_shift` over the reference's energy range.

    Parameters
    ----------
    spectrum : Spectrum
        Measured spectrum (raw μ, absolute eV).
    reference_energy : array_like, shape (m,)
        Energies of the reference spectrum, eV.
    reference_mu : array_like, shape (m,)
        Reference absorption (computed spectra start at ≈0 below the edge).
    pre_edge_range : (float, float), optional
        Pre-edge fit range relative to e0 (eV). Default (−150, −30) clipped to the data; when
        that holds fewer than 3 points, the data below e0 − 10 eV.
    fit_window : (float, float), optional
        Absolute energy window of the measured arctangent fit. Default: the same span around
        the measured e0 as the reference covers around its own e0 (clipped to the data), so
        both fits weigh the white line and post-edge alike.

    Returns
    -------
    Spectrum
        Background-subtracted, step-normalised (``kind="norm"``), shifted spectrum on the
        measured points (``energy`` + shift). ``metadata["preprocessing"]`` holds the record.
    dict
        Record of every fitted parameter: ``e0``, ``pre_edge_range``, ``pre_edge_slope``,
        ``pre_edge_intercept``, ``a1``, ``a2``, ``a3``, ``fit_window``, ``fit_rmse``,
        ``reference_fit`` (a1, a2, a3, window, rmse), ``area_window``, ``shift_eV`` and
        ``warnings`` (e.g. a steepness at its bound).

    Raises
    ------
    SpectrumError
        If the edge is sampled more coarsely than :data:`MAX_EDGE_STEP` eV, a fit range holds
        too few points, or a fit or the area matching fails (the file is named).
    """
    src = spectrum.source
    e, m = _as_xy(spectrum.energy, spectrum.mu, src)
    re_, rm = _as_xy(reference_energy, reference_mu, "reference")
    e0 = find_e0(e, m)
    i = int(np.searchsorted(e, e0))
    near = np.diff(e)[max(i - 3, 0): min(i + 2, e.size - 1)]
    if near.size and near.max() > MAX_EDGE_STEP:
        raise SpectrumError(f"the edge region around e0 = {e0:.1f} eV is sampled every {near.max():.1f} eV (more "
                            f"than {MAX_EDGE_STEP} eV): too coarse to fit the edge; the scan's fine region may "
                            "lie elsewhere (energy calibration)", source=src, field="energy")
    if pre_edge_range is None:
        lo_rel, hi_rel = max(-150.0, e[0] - e0), -30.0
        if np.sum((e >= e0 + lo_rel) & (e <= e0 + hi_rel)) < 3:
            lo_rel, hi_rel = e[0] - e0, -10.0
    else:
        lo_rel, hi_rel = (float(x) for x in pre_edge_range)
    sel = _window(e, e0 + lo_rel, e0 + hi_rel, "pre-edge", 2, src)
    slope, intercept = np.polyfit(e[sel], m[sel], 1)
    sub = m - (slope * e + intercept)

    ref_fit = fit_arctan_edge(re_, rm, source="reference")
    ref_e0 = find_e0(re_, rm)
    if fit_window is None:
        fit_window = (max(e[0], e0 + (re_[0] - ref_e0)), min(e[-1], e0 + (re_[-1] - ref_e0)))
    fit = fit_arctan_edge(e, sub, window=fit_window, source=src)
    norm = sub / fit.a1
    area_window = (float(re_[0]), float(re_[-1]))
    try:
        shift = area_matching_shift(fit, ref_fit, area_window)
    except ValueError as exc:
        raise SpectrumError(f"energy alignment failed: {exc}", source=src) from None
    record = {
        "method": "Andrejevic et al. 2022 (linear pre-edge, arctangent step, area matching)",
        "e0": float(e0),
        "pre_edge_range": [float(lo_rel), float(hi_rel)],
        "pre_edge_slope": float(slope),
        "pre_edge_intercept": float(intercept),
        "a1": fit.a1, "a2": fit.a2, "a3": fit.a3,
        "fit_window": [float(fit_window[0]), float(fit_window[1])],
        "fit_rmse": fit.rmse,
        "reference_fit": ref_fit.to_dict(),
        "area_window": list(area_window),
        "shift_eV": float(shift),
        "warnings": [],
    }
    if fit.a2 >= _A2_BOUNDS[1] * 0.999 or fit.a2 <= _A2_BOUNDS[0] * 1.001:
        record["warnings"].append(f"arctangent steepness a2 = {fit.a2:.3g} 1/eV is at its bound: the edge is "
                                  "poorly described by an arctangent; check the spectrum")
    meta = dict(spectrum.metadata)
    meta["preprocessing"] = record
    out = spectrum.replace(energy=e + shift, mu=norm, kind="norm", metadata=meta)
    return out, record
