"""Energy grids and resampling of spectra onto them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.interpolate import CubicSpline

from xasml.errors import SpectrumError


def interpolate_mu(energy: np.ndarray, mu: np.ndarray, new_energy: np.ndarray, kind: str = "linear",
                   fill: str | float = "edge") -> np.ndarray:
    """Resample ``mu(energy)`` at ``new_energy``.

    Parameters
    ----------
    energy : ndarray, shape (n,)
        Strictly increasing energies in eV.
    mu : ndarray, shape (n,) or (n, k)
        Values at ``energy``.
    new_energy : ndarray, shape (m,)
        Energies in eV to evaluate at.
    kind : {"linear", "cubic"}
        Piecewise-linear or cubic-spline (scipy ``CubicSpline``) interpolation.
    fill : "edge", "extrapolate" or float
        Outside ``[energy[0], energy[-1]]``: hold the end values, extrapolate, or use a constant.

    Returns
    -------
    ndarray, shape (m,) or (m, k)
    """
    energy = np.asarray(energy, dtype=float)
    mu = np.asarray(mu, dtype=float)
    x = np.asarray(new_energy, dtype=float)
    if kind == "linear":
        if mu.ndim == 1:
            out = np.interp(x, energy, mu)
        else:
            out = np.stack([np.interp(x, energy, col) for col in mu.T], axis=1)
        if fill == "extrapolate":
            for side, (i, j) in (("lo", (0, 1)), ("hi", (-2, -1))):
                mask = x < energy[0] if side == "lo" else x > energy[-1]
                if np.any(mask):
                    slope = (mu[j] - mu[i]) / (energy[j] - energy[i])
                    out[mask] = mu[i] + np.multiply.outer(x[mask] - energy[i], slope) if mu.ndim > 1 \
                        else mu[i] + slope * (x[mask] - energy[i])
    elif kind == "cubic":
        spline = CubicSpline(energy, mu, axis=0, extrapolate=True)
        out = spline(x)
        if fill == "edge":
            out[x < energy[0]] = mu[0]
            out[x > energy[-1]] = mu[-1]
    else:
        raise ValueError(f"unknown interpolation kind {kind!r}: expected 'linear' or 'cubic'")
    if not isinstance(fill, str):
        out[(x < energy[0]) | (x > energy[-1])] = float(fill)
    elif fill not in ("edge", "extrapolate"):
        raise ValueError(f"unknown fill {fill!r}: expected 'edge', 'extrapolate' or a number")
    return out


@dataclass(frozen=True)
class EnergyGrid:
    """Evenly spaced absolute energies ``start, ..., stop`` (eV), ``n_points`` of them.

    The topology indicator uses 200 points over 56 eV per absorbing element (Andrejevic et al.
    2022, Data Processing); the local-structure classifiers 100 points at about 0.5 eV (Carbone
    et al. 2019, §II.A).
    """

    start: float
    stop: float
    n_points: int

    def __post_init__(self) -> None:
        if not self.stop > self.start:
            raise ValueError(f"EnergyGrid: stop ({self.stop}) must exceed start ({self.start})")
        if self.n_points < 2:
            raise ValueError(f"EnergyGrid: n_points must be >= 2, got {self.n_points}")

    @property
    def energy(self) -> np.ndarray:
        """Grid energies in eV, shape (n_points,)."""
        return np.linspace(self.start, self.stop, self.n_points)

    @property
    def step(self) -> float:
        """Spacing in eV."""
        return (self.stop - self.start) / (self.n_points - 1)

    @classmethod
    def centred(cls, center: float, width: float, n_points: int) -> "EnergyGrid":
        """A grid of ``width`` eV centred at ``center`` eV."""
        return cls(center - width / 2.0, center + width / 2.0, n_points)

    def to_dict(self) -> dict:
        return {"start": float(self.start), "stop": float(self.stop), "n_points": int(self.n_points)}

    @classmethod
    def from_dict(cls, d: dict) -> "EnergyGrid":
        return cls(float(d["start"]), float(d["stop"]), int(d["n_points"]))

    def resample(self, spectra: Sequence, kind: str = "linear", fill: str | float = "edge") -> np.ndarray:
        """Resample spectra onto this grid.

        Parameters
        ----------
        spectra : sequence of Spectrum
        kind, fill : see :func:`interpolate_mu`.

        Returns
        -------
        ndarray, shape (len(spectra), n_points)
        """
        e = self.energy
        return np.stack([interpolate_mu(s.energy, s.mu, e, kind=kind, fill=fill) for s in spectra]) \
            if len(spectra) else np.zeros((0, self.n_points))


def common_grid(spectra: Sequence, width: float, n_points: int, anchor: str = "start") -> EnergyGrid:
    """Choose one grid of ``width`` eV for a set of spectra of one absorbing element.

    The window starts at the median first energy of the spectra (``anchor="start"``) so that
    spectra co-aligned on the absolute energy scale share it, as in Andrejevic et al. (2022).
    Spectra shorter than the window are padded with their end values by :meth:`EnergyGrid.resample`.

    Parameters
    ----------
    spectra : sequence of Spectrum
        Spectra of one absorbing element.
    width : float
        Window width in eV (56 in the paper).
    n_points : int
        Number of points (200 in the paper).
    anchor : {"start", "median-overlap"}
        ``"start"``: window begins at the median start energy. ``"median-overlap"``: centred
        on the middle of the median start and median end energies.

    Raises
    ------
    SpectrumError
        If ``spectra`` is empty.
    """
    if not len(spectra):
        raise SpectrumError("common_grid needs at least one spectrum")
    starts = np.array([s.energy[0] for s in spectra])
    ends = np.array([s.energy[-1] for s in spectra])
    if anchor == "start":
        lo = float(np.median(starts))
        return EnergyGrid(lo, lo + width, n_points)
    if anchor == "median-overlap":
        c = 0.5 * (float(np.median(starts)) + float(np.median(ends)))
        return EnergyGrid.centred(c, width, n_points)
    raise ValueError(f"unknown anchor {anchor!r}: expected 'start' or 'median-overlap'")
