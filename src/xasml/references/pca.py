"""Principal component analysis of a series of measured spectra, and target transformation of standards.

Factor analysis as XAS uses it for series (time, temperature, position maps; Ressler et al.,
Environ. Sci. Technol. 34, 950 (2000); Wasserman, J. Phys. IV 7, C2-203 (1997)): the matrix of
normalised spectra (energies × spectra, not mean-centred) is decomposed by SVD; the number of
independent components is where Malinowski's indicator function is smallest (IND, Malinowski,
Anal. Chem. 49, 612 (1977)); a standard is a plausible constituent when its spectrum is
reproduced by the first components (target transformation: its projection onto them, with the
residual and Malinowski's SPOIL-like ratio of its residual to the data's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from xasml.errors import DataError

__all__ = ["SeriesPCA", "pca_series", "target_transform", "pca_of_unknowns"]


@dataclass
class SeriesPCA:
    """Result of :func:`pca_series`.

    Attributes
    ----------
    energy : ndarray, shape (n_energy,)
        Energies, eV.
    components : ndarray, shape (n_spectra, n_energy)
        Right singular vectors (unit norm), most important first.
    eigenvalues : ndarray, shape (n_spectra,)
        Squared singular values.
    ind : ndarray, shape (n_spectra - 1,)
        Malinowski's indicator function for 1 … n_spectra − 1 components.
    n_components : int
        The number of components where IND is smallest.
    variance_fraction : ndarray, shape (n_spectra,)
        Cumulative fraction of Σ eigenvalues.
    names : list of str
        The spectra, in order.
    """

    energy: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray
    ind: np.ndarray
    n_components: int
    variance_fraction: np.ndarray
    names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The numbers (no arrays of energies or components)."""
        return {"n_components": self.n_components, "eigenvalues": [float(f"{x:.5g}") for x in self.eigenvalues],
                "ind": [float(f"{x:.4g}") for x in self.ind],
                "variance_fraction": [round(float(x), 6) for x in self.variance_fraction], "spectra": self.names}


def pca_series(energy: np.ndarray, spectra: np.ndarray, names: Sequence[str] | None = None) -> SeriesPCA:
    """PCA of a series of normalised spectra on one energy grid, component count by Malinowski's IND.

    Parameters
    ----------
    energy : ndarray, shape (n_energy,)
        Energies, eV.
    spectra : ndarray, shape (n_spectra, n_energy)
        Normalised μ (``flat``) of each spectrum on ``energy``.
    names : sequence of str, optional
        Names of the spectra.

    Returns
    -------
    SeriesPCA

    Raises
    ------
    DataError
        Fewer than 3 spectra, fewer energies than spectra, or non-finite values.
    """
    X = np.asarray(spectra, float)
    if X.ndim != 2 or X.shape[0] < 3:
        raise DataError(f"PCA of a series needs at least 3 spectra (got {X.shape[0] if X.ndim == 2 else 0})")
    if X.shape[1] < X.shape[0]:
        raise DataError(f"PCA of a series needs more energies ({X.shape[1]}) than spectra ({X.shape[0]})")
    if not np.all(np.isfinite(X)):
        raise DataError("PCA of a series: the spectra hold non-finite values on the common energy grid")
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    lam = s ** 2
    r, c = X.shape[1], X.shape[0]
    ind = []
    for n in range(1, c):
        re = np.sqrt(lam[n:].sum() / (r * (c - n)))
        ind.append(re / (c - n) ** 2)
    ind = np.asarray(ind)
    return SeriesPCA(np.asarray(energy, float), vt, lam, ind, int(np.argmin(ind)) + 1, np.cumsum(lam) / lam.sum(),
                     list(names) if names is not None else [str(i) for i in range(c)])


def target_transform(pca: SeriesPCA, target: np.ndarray, n_components: int | None = None) -> dict[str, Any]:
    """How well the first components reproduce a standard's spectrum (target transformation).

    Parameters
    ----------
    pca : SeriesPCA
    target : ndarray, shape (n_energy,)
        The standard's ``flat`` on ``pca.energy``.
    n_components : int, optional
        Components used (default ``pca.n_components``).

    Returns
    -------
    dict
        ``fit`` (ndarray, the projection), ``r_factor`` (Σ(t − fit)²/Σt²), ``chi2`` (Σ(t − fit)²)
        and ``spoil`` (the target's RMS residual over the data's real error, the RMS residual the
        discarded components leave; ≲ 3 acceptable, ≳ 6 unacceptable, after Malinowski's SPOIL).
    """
    n = pca.n_components if n_components is None else int(n_components)
    t = np.asarray(target, float)
    V = pca.components[:n]
    fit = (t @ V.T) @ V
    res = t - fit
    c, r = len(pca.eigenvalues), len(pca.energy)
    real_error = np.sqrt(pca.eigenvalues[n:].sum() / (r * (c - n))) if c > n else np.nan
    rms = float(np.sqrt(np.mean(res ** 2)))
    return {"fit": fit, "r_factor": float(np.sum(res ** 2) / np.sum(t ** 2)), "chi2": float(np.sum(res ** 2)),
            "spoil": float(rms / real_error) if real_error and np.isfinite(real_error) and real_error > 0 else None}


def pca_of_unknowns(unknowns: Sequence, library=None, window: tuple[float, float] = (-20.0, 60.0),
                    step: float = 0.25) -> dict[str, Any]:
    """PCA of measured spectra of one element and edge, and target transformation of the library's standards.

    Parameters
    ----------
    unknowns : sequence of xasml.references.evidence.Unknown
        The series (same element and edge), e.g. a map or a film's spectra.
    library : pandas.DataFrame, optional
        Reference library; its standards of the element and edge are target-transformed.
    window : (float, float)
        Energy window, eV relative to the series' median e0.
    step : float
        Grid step, eV.

    Returns
    -------
    dict
        ``pca`` (:meth:`SeriesPCA.to_dict`), ``energy_range`` (eV) and ``targets`` (per standard:
        ``id``, ``compound``, ``valence``, ``r_factor``, ``spoil``; best first).

    Raises
    ------
    DataError
        Mixed elements or edges, or what :func:`pca_series` raises.
    """
    from xasml.references.evidence import standards_for
    from xasml.references.library import entry_flat

    kinds = {(u.element, u.edge) for u in unknowns}
    if len(kinds) != 1:
        raise DataError(f"PCA of a series needs one element and edge, got {sorted(kinds)}")
    el, ed = kinds.pop()
    e0 = float(np.median([u.e0 for u in unknowns]))
    e = e0 + np.arange(window[0], window[1] + step / 2, step)
    X = np.array([np.interp(e, u.energy[np.isfinite(u.flat)], u.flat[np.isfinite(u.flat)]) for u in unknowns])
    p = pca_series(e, X, [u.name for u in unknowns])
    targets = []
    if library is not None:
        df = standards_for(library, el, ed)
        for _, row in df.iterrows():
            tt = target_transform(p, entry_flat(row, e))
            targets.append({"id": row["id"], "compound": row["compound"],
                            "valence": None if not np.isfinite(row["valence"]) else float(row["valence"]),
                            "r_factor": round(tt["r_factor"], 5),
                            "spoil": None if tt["spoil"] is None else round(tt["spoil"], 2)})
        targets.sort(key=lambda t: t["r_factor"])
    return {"element": el, "edge": ed, "pca": p.to_dict(), "energy_range": [float(e[0]), float(e[-1])],
            "targets": targets}
