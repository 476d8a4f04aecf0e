"""Energy alignment of spectra: tabulated edge energies and cross-correlation shifts.

Measured spectra are often calibrated a few eV (some beamline files tens of eV) away from the
tabulated edge, and computed spectra (FEFF, FDMNES, VASP) carry their own absolute offsets.
Two tools are offered:

* :func:`edge_energy` / :func:`identify_edge`: the tabulated edge energies of xraydb
  (Elam, Ravel & Sieber, Radiat. Phys. Chem. 63, 121 (2002)), to check or correct a
  calibration (:func:`shift_to_tabulated_edge`).
* :func:`estimate_shift` / :func:`align_to_reference`: the shift that maximises the
  normalised cross-correlation of the smoothed derivatives dμ/dE of a spectrum and a reference.
  Derivatives are used because they are insensitive to the background and to the edge-step
  normalisation, and are dominated by the rising edge, which is what has to line up.

The area-matching alignment of Andrejevic et al. (2022) is in
:func:`xasml.preprocess.normalize.area_matching_shift`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from xasml.errors import SpectrumError

__all__ = ["edge_energy", "identify_edge", "estimate_shift", "align_to_reference", "shift_to_tabulated_edge"]

_MAIN_EDGES = ("K", "L3")
_ALL_EDGES = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")


def edge_energy(element: str, edge: str = "K") -> float:
    """Tabulated absorption-edge energy (eV) from xraydb.

    Parameters
    ----------
    element : str
        Chemical symbol, e.g. ``"Cu"``.
    edge : str
        Edge name, e.g. ``"K"``, ``"L3"``.

    Returns
    -------
    float
        Edge energy in eV (Cu K: 8979.0).

    Raises
    ------
    SpectrumError
        If the element or edge is unknown to xraydb.
    """
    import xraydb

    from xasml.spectrum import normalize_element

    el = normalize_element(element)
    edges = xraydb.xray_edges(el)
    key = str(edge).strip().upper()
    if key not in edges:
        raise SpectrumError(f"xraydb has no {key} edge for {el}; known: {', '.join(edges)}", field="edge")
    return float(edges[key].energy)


@lru_cache(maxsize=1)
def _edge_table() -> tuple[tuple[str, str, float], ...]:
    import xraydb

    rows = []
    for z in range(3, 99):
        sym = xraydb.atomic_symbol(z)
        for name, e in xraydb.xray_edges(sym).items():
            if name in _ALL_EDGES and e.energy > 0:
                rows.append((sym, name, float(e.energy)))
    return tuple(rows)


def identify_edge(e0: float, element: str | None = None, edge: str | None = None,
                  tolerance: float = 100.0) -> tuple[str, str, float]:
    """The tabulated absorption edge of an observed edge energy.

    Without constraints this is ``xraydb.guess_edge`` (which prefers the K and L3 edges that are
    usually measured); with ``element`` and/or ``edge`` given, the nearest tabulated edge among
    those allowed.

    Parameters
    ----------
    e0 : float
        Observed edge energy, eV.
    element : str, optional
        Restrict to this element.
    edge : str, optional
        Restrict to this edge (``"L"`` means L3, ``"M"`` means M5).
    tolerance : float
        Largest accepted distance (eV) between ``e0`` and the tabulated edge.

    Returns
    -------
    (element, edge, energy)
        Symbol, edge name and tabulated energy (eV).

    Raises
    ------
    ValueError
        If no tabulated edge lies within ``tolerance`` of ``e0``.
    """
    generic = {"L": "L3", "M": "M5"}
    if edge is not None:
        edge = generic.get(edge.upper(), edge.upper())
    if element is None and edge is None:
        # xraydb's heuristic (K and L3 first, then other edges) names 271 of the 274 edges of the XAS
        # Data Library files right from their larch e0, where nearest-K/L3-first named 264
        import xraydb

        el, ed = xraydb.guess_edge(float(e0))
        best = (el, ed, edge_energy(el, ed))
        if abs(best[2] - e0) > tolerance:
            raise ValueError(f"nearest tabulated edge {el} {ed} ({best[2]:.1f} eV) is {abs(best[2] - e0):.1f} eV "
                             f"from e0 = {e0:.1f} eV (tolerance {tolerance} eV)")
        return best
    table = _edge_table()
    cands = [r for r in table if (element is None or r[0] == element) and (edge is None or r[1] == edge)]
    if element is None and edge is None:
        main = [r for r in cands if r[1] in _MAIN_EDGES and abs(r[2] - e0) <= tolerance]
        if main:
            cands = main
    if not cands:
        raise ValueError(f"no tabulated edge for element={element}, edge={edge}")
    best = min(cands, key=lambda r: abs(r[2] - e0))
    if abs(best[2] - e0) > tolerance:
        raise ValueError(f"nearest tabulated edge {best[0]} {best[1]} ({best[2]:.1f} eV) is "
                         f"{abs(best[2] - e0):.1f} eV from e0 = {e0:.1f} eV (tolerance {tolerance} eV)")
    return best


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
