"""Lorentzian broadening of computed spectra: fixed width, or energy-dependent (arctangent).

Computed cross-sections (FDMNES without its convolution step, for instance) lack the core-hole
lifetime broadening. XANESNET (Rankine & Penfold, J. Chem. Phys. 156, 164102, 2022, §II.C)
convolutes them with a fixed-width Lorentzian whose width is the edge's core-hole width, and
optionally applies an energy-dependent arctangent broadening (their Table I, values in
parentheses), the form used by FDMNES (Bunău & Joly, J. Phys.: Condens. Matter 21, 345501, 2009):

    Γ(E) = Γ_hole + Γ_max (1/2 + 1/π arctan(π/3 Γ_max/E_large (e - 1/e²))),  e = (E - E_F)/E_center

for ``E > E_F`` and ``Γ(E) = Γ_hole`` below the Fermi energy ``E_F``.

The convolution is done exactly for a piecewise-constant spectrum: each output point ``E_i``
receives from each input cell ``[a_j, b_j]`` (bounded by the mid-points between grid energies)
the Lorentzian's weight over the cell, ``(1/π)[atan(2(b_j-E_i)/Γ_i) - atan(2(a_j-E_i)/Γ_i)]``;
the first and last cells extend to ∓∞ (the spectrum is continued with its end values), so every
row of the kernel sums to exactly one and no intensity is lost at the window edges. Works on
non-uniform grids and with a width per output energy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xasml.errors import DataError
from xasml.edges import edge_energy

__all__ = ["core_hole_width", "lorentzian_kernel", "lorentzian_broaden", "arctan_width",
           "arctan_broaden", "arctan_postbroaden", "Broadening"]


def core_hole_width(element: str, edge: str = "K") -> float:
    """Core-hole lifetime width (FWHM, eV) of an absorption edge, from xraydb (Keski-Rahkonen & Krause).

    Parameters
    ----------
    element : str
        Chemical symbol, e.g. ``"Fe"``.
    edge : str
        Edge, e.g. ``"K"``.

    Returns
    -------
    float
        Width in eV (Fe K: 1.25 eV).

    Raises
    ------
    DataError
        If xraydb has no width for this element and edge.
    """
    import xraydb

    try:
        w = xraydb.core_width(element, edge)
    except Exception as exc:  # xraydb raises ValueError / KeyError for unknown input
        raise DataError(f"no core-hole width for {element} {edge} in xraydb ({exc})") from None
    if w is None or (isinstance(w, (list, tuple)) and not w):
        raise DataError(f"no core-hole width for {element} {edge} in xraydb")
    return float(w)


def lorentzian_kernel(energy: np.ndarray, fwhm: float | np.ndarray) -> np.ndarray:
    """Row-stochastic Lorentzian convolution matrix on a (possibly non-uniform) grid.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Strictly increasing energies, eV.
    fwhm : float or ndarray, shape (n,)
        Full width at half maximum (eV) of the Lorentzian at each output energy.

    Returns
    -------
    ndarray, shape (n, n)
        ``K`` such that ``mu_broadened = K @ mu``; each row sums to 1.

    Raises
    ------
    ValueError
        If the energies are not strictly increasing or a width is not positive.
    """
    e = np.asarray(energy, dtype=float)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("energy must be a strictly increasing 1-D array of at least 2 points")
    g = np.broadcast_to(np.asarray(fwhm, dtype=float), e.shape)
    if np.any(~(g > 0)):
        raise ValueError(f"Lorentzian FWHM must be positive, got min {g.min()}")
    edges = np.concatenate([[-np.inf], 0.5 * (e[1:] + e[:-1]), [np.inf]])
    half = 0.5 * g[:, None]
    cdf = np.arctan((edges[None, :] - e[:, None]) / half) / np.pi   # (n, n+1), -1/2 .. 1/2
    return np.diff(cdf, axis=1)


def lorentzian_broaden(energy: np.ndarray, mu: np.ndarray, fwhm: float | np.ndarray) -> np.ndarray:
    """Convolute spectra with a Lorentzian of fixed (or per-point) width.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Energies in eV.
    mu : ndarray, shape (n,) or (k, n)
        One spectrum or a stack on ``energy``.
    fwhm : float or ndarray, shape (n,)
        Lorentzian FWHM in eV (e.g. :func:`core_hole_width`).

    Returns
    -------
    ndarray, same shape as ``mu``
    """
    K = lorentzian_kernel(energy, fwhm)
    mu = np.asarray(mu, dtype=float)
    return mu @ K.T


def arctan_width(energy: np.ndarray, e_fermi: float, gamma_hole: float, gamma_max: float = 15.0,
                 e_center: float = 30.0, e_large: float = 30.0) -> np.ndarray:
    """Energy-dependent Lorentzian width of the arctangent model (FDMNES; Bunău & Joly 2009).

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Absolute energies, eV.
    e_fermi : float
        Fermi energy (onset of the broadening), absolute eV.
    gamma_hole : float
        Core-hole width, eV (the width at and below ``e_fermi``).
    gamma_max : float
        Asymptotic additional width, eV (FDMNES default 15).
    e_center : float
        Centre of the arctangent, eV above ``e_fermi`` (FDMNES default 30).
    e_large : float
        Steepness parameter of the arctangent, eV (FDMNES default 30).

    Returns
    -------
    ndarray, shape (n,)
        FWHM in eV at each energy.
    """
    e = (np.asarray(energy, dtype=float) - e_fermi) / e_center
    out = np.full(e.shape, float(gamma_hole))
    pos = e > 0
    ep = e[pos]
    out[pos] = gamma_hole + gamma_max * (0.5 + np.arctan(np.pi / 3.0 * gamma_max / e_large * (ep - 1.0 / ep ** 2)) / np.pi)
    return out


def arctan_broaden(energy: np.ndarray, mu: np.ndarray, e_fermi: float, gamma_hole: float,
                   gamma_max: float = 15.0, e_center: float = 30.0, e_large: float = 30.0) -> np.ndarray:
    """Convolute spectra with the energy-dependent (arctangent) Lorentzian, see :func:`arctan_width`.

    Returns
    -------
    ndarray, same shape as ``mu``
    """
    width = arctan_width(energy, e_fermi, gamma_hole, gamma_max, e_center, e_large)
    return lorentzian_broaden(energy, mu, width)


def arctan_postbroaden(energy: np.ndarray, mu: np.ndarray, e_fermi: float, gamma_hole: float,
                       gamma_max: float = 15.0, e_center: float = 30.0, e_large: float = 30.0) -> np.ndarray:
    """Add the energy-dependent part of the arctangent broadening to already core-hole-broadened spectra.

    Lorentzian widths add under convolution, so spectra convoluted with ``gamma_hole`` are
    brought to (approximately, since the width varies with energy) the full arctangent
    broadening by a further Lorentzian of width ``Γ(E) − Γ_hole`` (clamped at 1 meV where it
    vanishes, below ``e_fermi``). This is the optional post-processing of XANESNET predictions
    (Rankine & Penfold 2022, Table I values in parentheses).

    Returns
    -------
    ndarray, same shape as ``mu``
    """
    width = arctan_width(energy, e_fermi, gamma_hole, gamma_max, e_center, e_large) - gamma_hole
    return lorentzian_broaden(energy, mu, np.maximum(width, 1e-3))


@dataclass
class Broadening:
    """The post-processing broadening applied to spectra, recorded with every model and run.

    Parameters
    ----------
    kind : {"none", "lorentzian", "arctan"}
        No broadening; fixed-width Lorentzian (XANESNET paper); energy-dependent arctangent.
    fwhm : float, optional
        Lorentzian FWHM or core-hole width in eV; default: xraydb's core-hole width of
        ``element``/``edge``.
    element : str, optional
        Absorbing element (needed when ``fwhm`` or ``e_fermi`` are not given).
    edge : str
        Edge.
    e_fermi : float, optional
        Arctangent onset, absolute eV; default: the tabulated edge energy (xraydb).
    gamma_max, e_center, e_large : float
        Arctangent parameters (FDMNES defaults 15, 30, 30 eV).
    """

    kind: str = "none"
    fwhm: float | None = None
    element: str | None = None
    edge: str = "K"
    e_fermi: float | None = None
    gamma_max: float = 15.0
    e_center: float = 30.0
    e_large: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in ("none", "lorentzian", "arctan"):
            raise DataError(f"broadening kind {self.kind!r}: expected 'none', 'lorentzian' or 'arctan'")

    def resolved(self) -> "Broadening":
        """A copy with ``fwhm`` and ``e_fermi`` filled from xraydb where they were not given."""
        d = asdict(self)
        if self.kind != "none" and d["fwhm"] is None:
            if not self.element:
                raise DataError("broadening: give 'fwhm' or 'element' (for xraydb's core-hole width)")
            d["fwhm"] = core_hole_width(self.element, self.edge)
        if self.kind == "arctan" and d["e_fermi"] is None:
            if not self.element:
                raise DataError("arctan broadening: give 'e_fermi' or 'element' (for the edge energy)")
            d["e_fermi"] = edge_energy(self.element, self.edge)
        return Broadening(**d)

    def apply(self, energy: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Broaden ``mu`` (shape (n,) or (k, n)) on ``energy`` (eV); returns the same shape."""
        if self.kind == "none":
            return np.asarray(mu, dtype=float).copy()
        b = self.resolved()
        if b.kind == "lorentzian":
            return lorentzian_broaden(energy, mu, b.fwhm)
        return arctan_broaden(energy, mu, b.e_fermi, b.fwhm, b.gamma_max, b.e_center, b.e_large)

    def to_dict(self) -> dict:
        """JSON-ready description (resolved values included when they can be resolved)."""
        try:
            return asdict(self.resolved())
        except DataError:
            return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Broadening":
        """Inverse of :meth:`to_dict` (``None`` means no broadening)."""
        if not d:
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise DataError(f"broadening: unknown field(s) {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)
