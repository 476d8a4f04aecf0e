"""Energy alignment of spectra: tabulated edge energies and cross-correlation shifts.

Measured spectra are often calibrated a few eV (some beamline files tens of eV) away from the
tabulated edge, and computed spectra (FEFF, FDMNES, VASP) carry their own absolute offsets.
Two tools are offered:

* :func:`shift_to_tabulated_edge`: move a spectrum so its e0 sits at the tabulated edge of
  :mod:`xasml.edges` (the one edge table, over xraydb).
* :func:`estimate_shift` / :func:`align_to_reference`: the shift that maximises the
  normalised cross-correlation of the smoothed derivatives dμ/dE of a spectrum and a reference.
  Derivatives are used because they are insensitive to the background and to the edge-step
  normalisation, and are dominated by the rising edge, which is what has to line up.

The area-matching alignment of Andrejevic et al. (2022) is in
:func:`xasml.preprocess.normalize.area_matching_shift`.
"""

from __future__ import annotations

import numpy as np

from xasml.edges import edge_energy
from xasml.errors import SpectrumError

__all__ = ["estimate_shift", "align_to_reference", "shift_to_tabulated_edge"]

def _smoothed_derivative(energy: np.ndarray, mu: np.ndarray, grid: np.ndarray, smooth: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    de = grid[1] - grid[0]
    y = np.interp(grid, energy, mu)
    d = np.gradient(y, de)
    if smooth > 0:
        d = gaussian_filter1d(d, smooth / de, mode="nearest")
    inside = (grid >= energy[0]) & (grid <= energy[-1])
    return np.where(inside, d, 0.0)


def estimate_shift(energy, mu, reference_energy, reference_mu, max_shift: float = 50.0,
                   resolution: float = 0.05, smooth: float = 1.0,
                   window: tuple[float, float] | None = None) -> float:
    """Energy shift (eV) to add to ``energy`` so the spectrum lines up with the reference.

    Both spectra are interpolated onto a uniform grid of step ``resolution``; their
    derivatives dμ/dE are smoothed with a Gaussian of σ = ``smooth`` eV, and the shift s that
    maximises the normalised cross-correlation Σ_E d(E) · d_ref(E + s) / (‖d‖ ‖d_ref‖) over
    |s| ≤ ``max_shift`` is returned, refined to sub-grid precision by a parabola through the
    peak.

    Parameters
    ----------
    energy, mu : array_like, shape (n,)
        The spectrum to align (eV, strictly increasing).
    reference_energy, reference_mu : array_like, shape (m,)
        The reference.
    max_shift : float
        Largest shift considered, eV.
    resolution : float
        Grid step, eV.
    smooth : float
        Gaussian σ of the derivative smoothing, eV.
    window : (float, float), optional
        Absolute energy range of the spectrum (before shifting) used for the correlation;
        default: where it overlaps the reference within ``max_shift``.

    Returns
    -------
    float
        Shift in eV (positive: the spectrum moves to higher energy).

    Raises
    ------
    SpectrumError
        If the spectra cannot overlap within ``max_shift`` or a derivative is identically zero.
    """
    e = np.asarray(energy, dtype=float)
    m = np.asarray(mu, dtype=float)
    re_ = np.asarray(reference_energy, dtype=float)
    rm = np.asarray(reference_mu, dtype=float)
    if window is None:
        lo = max(e[0], re_[0] - max_shift)
        hi = min(e[-1], re_[-1] + max_shift)
    else:
        lo, hi = float(window[0]), float(window[1])
    if not hi - lo > 4 * resolution:
        raise SpectrumError(f"spectrum ({e[0]:.1f}..{e[-1]:.1f} eV) and reference ({re_[0]:.1f}.."
                            f"{re_[-1]:.1f} eV) do not overlap within max_shift = {max_shift} eV")
    grid = np.arange(lo, hi + resolution / 2, resolution)
    d = _smoothed_derivative(e, m, grid, smooth)
    nlag = int(round(max_shift / resolution))
    ref_grid = np.arange(lo - nlag * resolution, hi + (nlag + 0.5) * resolution, resolution)
    dr = _smoothed_derivative(re_, rm, ref_grid, smooth)
    n = grid.size
    if not np.any(d) or not np.any(dr):
        raise SpectrumError("a derivative is zero everywhere in the alignment window")
    # c[k] = sum_i d[i] * dr[i + k], k = 0..2*nlag  <=> shift (k - nlag) * resolution
    c = np.correlate(dr, d, mode="valid")[: 2 * nlag + 1]
    seg_norm = np.sqrt(np.convolve(dr ** 2, np.ones(n), mode="valid")[: 2 * nlag + 1])
    c = c / (np.linalg.norm(d) * np.where(seg_norm > 0, seg_norm, np.inf))
    k = int(np.argmax(c))
    frac = 0.0
    if 0 < k < c.size - 1:
        y0, y1, y2 = c[k - 1], c[k], c[k + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            frac = 0.5 * (y0 - y2) / den
    return float((k - nlag + frac) * resolution)


def align_to_reference(spectrum, reference, **kwargs):
    """Shift a spectrum's energies onto a reference by derivative cross-correlation.

    Parameters
    ----------
    spectrum : Spectrum
        The spectrum to shift.
    reference : Spectrum
        The reference (e.g. a measured foil, or a computed spectrum of the same absorber).
    **kwargs
        Passed to :func:`estimate_shift` (``max_shift``, ``resolution``, ``smooth``, ``window``).

    Returns
    -------
    (Spectrum, float)
        The shifted spectrum (``metadata["alignment"]`` records the method and shift) and the
        shift in eV.
    """
    shift = estimate_shift(spectrum.energy, spectrum.mu, reference.energy, reference.mu, **kwargs)
    meta = dict(spectrum.metadata)
    meta["alignment"] = {"method": "derivative cross-correlation", "shift_eV": shift,
                         "reference": reference.material_id or reference.source}
    return spectrum.replace(energy=spectrum.energy + shift, metadata=meta), shift


def shift_to_tabulated_edge(spectrum, e0: float | None = None):
    """Shift a spectrum so that its edge e0 falls on the tabulated edge energy (xraydb).

    Parameters
    ----------
    spectrum : Spectrum
        The spectrum (its ``absorbing_element`` and ``edge`` select the tabulated energy).
    e0 : float, optional
        The measured edge energy; :func:`xasml.preprocess.normalize.find_e0` when not given.

    Returns
    -------
    (Spectrum, float)
        The shifted spectrum (``metadata["alignment"]`` records e0, the tabulated energy and
        the shift) and the shift in eV.
    """
    from xasml.preprocess.normalize import find_e0

    if e0 is None:
        e0 = find_e0(spectrum.energy, spectrum.mu)
    tab = edge_energy(spectrum.absorbing_element, spectrum.edge)
    shift = tab - float(e0)
    meta = dict(spectrum.metadata)
    meta["alignment"] = {"method": "tabulated edge (xraydb)", "e0": float(e0), "edge_energy": tab,
                         "shift_eV": shift}
    return spectrum.replace(energy=spectrum.energy + shift, metadata=meta), shift
