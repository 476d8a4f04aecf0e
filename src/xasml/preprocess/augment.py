"""Resampling with energy shifts, max-normalisation, and training-set augmentation.

Carbone et al., Phys. Rev. Materials 3, 033604 (2019):

* §II.A - spectra are spline-interpolated onto a per-element grid of 100 points (~0.5 eV) and
  scaled so that their maximum is 1 (Figure 2 caption); the training set is augmented with copies
  shifted by +-1 and +-2 eV (5x the base set).
* §III.E - robustness to intensity errors: Gaussian noise of standard deviation sigma added to
  mu(E) at every grid energy; training with sigma = 0.03 noise makes the classifiers robust.

Shifts are applied to the *original* spectrum before it is resampled (a spectrum shifted by
dE is ``mu(E - dE)``), so no information is lost at the grid ends when the raw spectrum is wider
than the window. Augmentation belongs to the training split only; the functions here do not know
about splits, the caller does (see :func:`xasml.datasets.local.LocalDataset.training_arrays`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from xasml.preprocess.grid import interpolate_mu


def shifted_resample(spectra: Sequence, energy: np.ndarray, shift: float = 0.0, kind: str = "cubic",
                     fill: str | float = "edge") -> np.ndarray:
    """Resample spectra onto ``energy`` after shifting them by ``shift`` eV.

    Parameters
    ----------
    spectra : sequence of Spectrum, or of (energy, mu) pairs
        Spectra with absolute energies in eV.
    energy : ndarray, shape (m,)
        Target grid in eV.
    shift : float
        Energy shift in eV applied to every spectrum (positive moves features to higher energy).
    kind : {"cubic", "linear"}
        Spline (the paper) or linear interpolation.
    fill : "edge", "extrapolate" or float
        Value outside a spectrum's range (see :func:`xasml.preprocess.grid.interpolate_mu`).

    Returns
    -------
    ndarray, shape (len(spectra), m)
    """
    energy = np.asarray(energy, dtype=float)
    out = np.empty((len(spectra), energy.size))
    for i, s in enumerate(spectra):
        e, mu = (s.energy, s.mu) if hasattr(s, "energy") else s
        out[i] = interpolate_mu(np.asarray(e, float) + float(shift), np.asarray(mu, float), energy, kind=kind,
                                fill=fill)
    return out


def max_normalize(X: np.ndarray) -> np.ndarray:
    """Divide each row by its maximum (Carbone et al. 2019, Figure 2: maximum scaled to 1).

    Parameters
    ----------
    X : ndarray, shape (n, m)

    Returns
    -------
    ndarray, shape (n, m)

    Raises
    ------
    ValueError
        If a row's maximum is not positive (an empty or negative spectrum).
    """
    X = np.asarray(X, dtype=float)
    m = X.max(axis=1, keepdims=True)
    bad = np.flatnonzero(~(m[:, 0] > 0))
    if bad.size:
        raise ValueError(f"{bad.size} spectrum/spectra have no positive value on the grid (first: row {bad[0]}); "
                         "cannot scale to maximum 1")
    return X / m


def add_gaussian_noise(X: np.ndarray, sigma: float, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Return ``X`` plus independent Gaussian noise of standard deviation ``sigma`` at every point.

    Parameters
    ----------
    X : ndarray, shape (n, m)
        Max-normalised spectra (the paper's sigma is in units of the spectrum maximum).
    sigma : float
        Standard deviation (0.03 for training augmentation in the paper).
    rng : numpy Generator or int seed, optional

    Returns
    -------
    ndarray, same shape as ``X``
    """
    rng = np.random.default_rng(rng)
    X = np.asarray(X, dtype=float)
    if sigma <= 0:
        return X.copy()
    return X + rng.normal(0.0, sigma, size=X.shape)


def augment(spectra: Sequence, energy: np.ndarray, y: np.ndarray | None = None,
            shifts: Sequence[float] = (-2.0, -1.0, 1.0, 2.0), noise_sigma: float = 0.03,
            noise_copies: int = 0, noise_on_shifted: bool = True, kind: str = "cubic",
            seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Build an augmented, max-normalised training matrix from spectra.

    The result stacks: the base set (no shift, no noise); one copy per shift in ``shifts``
    (Carbone et al. 2019, §II.A: +-1, +-2 eV), with Gaussian noise of ``noise_sigma`` added when
    ``noise_on_shifted``; and ``noise_copies`` unshifted copies with noise (§III.E). With the
    defaults the set is 5x the base, every added copy both shifted and noisy.

    Parameters
    ----------
    spectra : sequence of Spectrum or (energy, mu) pairs
        Training spectra (absolute energies, eV).
    energy : ndarray, shape (m,)
        The grid, eV.
    y : ndarray, shape (n,) or (n, k), optional
        Targets, repeated alongside.
    shifts : sequence of float
        Energy shifts in eV; empty for none.
    noise_sigma : float
        Noise standard deviation, in units of the spectrum maximum.
    noise_copies : int
        Extra unshifted noisy copies.
    noise_on_shifted : bool
        Add noise to the shifted copies too.
    kind : {"cubic", "linear"}
        Interpolation.
    seed : int
        Seed of the noise.

    Returns
    -------
    X : ndarray, shape (n * (1 + len(shifts) + noise_copies), m)
    y : ndarray or None
        ``y`` repeated in the same order.
    source_row : ndarray of int
        For each output row, the index of the spectrum it came from (for grouping).
    """
    rng = np.random.default_rng(seed)
    n = len(spectra)
    base = max_normalize(shifted_resample(spectra, energy, 0.0, kind=kind))
    blocks = [base]
    for dE in shifts:
        Xs = max_normalize(shifted_resample(spectra, energy, dE, kind=kind))
        if noise_on_shifted and noise_sigma > 0:
            Xs = add_gaussian_noise(Xs, noise_sigma, rng)
        blocks.append(Xs)
    for _ in range(int(noise_copies)):
        blocks.append(add_gaussian_noise(base, noise_sigma, rng))
    X = np.concatenate(blocks, axis=0)
    rows = np.tile(np.arange(n), len(blocks))
    y_out = None if y is None else np.asarray(y)[rows]
    return X, y_out, rows
