"""Per-absorbing-element standardisation of gridded spectra."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from xasml.errors import DataError


class PerElementStandardizer:
    """Centre and scale spectra separately for each absorbing element.

    Follows Andrejevic et al., Adv. Mater. 34, 2204113 (2022), Data Processing: for each absorbing
    element, subtract the mean over training spectra of each spectrum's mean intensity, and
    divide by the mean over training spectra of each spectrum's intensity standard deviation.
    Both are scalars per element, so spectral shape is preserved. Fit on the training split only.

    Attributes
    ----------
    mean_ : dict[str, float]
        Per element, the mean of the spectra's mean intensities.
    scale_ : dict[str, float]
        Per element, the mean of the spectra's standard deviations.
    """

    def fit(self, X: np.ndarray, elements: Iterable[str]) -> "PerElementStandardizer":
        """Learn the per-element mean and scale.

        Parameters
        ----------
        X : ndarray, shape (n_spectra, n_points)
            Gridded spectra.
        elements : sequence of str, length n_spectra
            Absorbing element of each row.
        """
        X = np.asarray(X, dtype=float)
        elements = np.asarray(list(elements))
        if len(elements) != len(X):
            raise DataError(f"{len(X)} spectra but {len(elements)} element labels")
        self.mean_, self.scale_ = {}, {}
        for el in np.unique(elements):
            rows = X[elements == el]
            self.mean_[str(el)] = float(rows.mean(axis=1).mean())
            s = float(rows.std(axis=1).mean())
            self.scale_[str(el)] = s if s > 0 else 1.0
        return self

    def transform(self, X: np.ndarray, elements: Iterable[str]) -> np.ndarray:
        """Standardise rows of ``X`` with the statistics of their element.

        Raises
        ------
        DataError
            If an element was not seen during :meth:`fit`.
        """
        X = np.asarray(X, dtype=float)
        elements = list(elements)
        out = np.empty_like(X)
        for i, el in enumerate(elements):
            if el not in self.mean_:
                raise DataError(f"no standardisation statistics for element {el!r}: it was not in the "
                                f"training data (known: {', '.join(sorted(self.mean_))})")
            out[i] = (X[i] - self.mean_[el]) / self.scale_[el]
        return out

    def fit_transform(self, X: np.ndarray, elements: Iterable[str]) -> np.ndarray:
        elements = list(elements)
        return self.fit(X, elements).transform(X, elements)

    def inverse_transform(self, X: np.ndarray, elements: Iterable[str]) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return np.stack([X[i] * self.scale_[el] + self.mean_[el] for i, el in enumerate(elements)]) \
            if len(X) else X.copy()

    def to_dict(self) -> dict:
        """JSON-serialisable state."""
        return {"mean": self.mean_, "scale": self.scale_}

    @classmethod
    def from_dict(cls, d: dict) -> "PerElementStandardizer":
        self = cls()
        self.mean_ = {k: float(v) for k, v in d["mean"].items()}
        self.scale_ = {k: float(v) for k, v in d["scale"].items()}
        return self
