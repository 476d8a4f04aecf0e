"""Baselines of the topology indicator (Andrejevic et al., Adv. Mater. 34, 2204113 (2022)).

* :class:`AtomTypeSVM` (``"svm_type"``): support-vector machine on the one-hot (multi-hot)
  atom types of a compound; :class:`AugmentedAtomTypeSVM` (``"svm_type_aug"``) copies that
  vector 200 times, "to maintain the same number of neurons" as the spectral SVM (paper §3.3,
  Figure S5a).
* :class:`SpectraSVM` (``"svm_spectra"``): SVM on the concatenated standardised spectra of all
  elements of the training vocabulary, zeros where an element is absent (paper §3.3).
* :class:`PCAKMeansClassifier` (``"pca_kmeans"``): per absorbing element, PCA keeping >= 80 %
  explained variance and 2-cluster k-means, clusters matched to classes with the
  imbalance-corrected optimal matching (paper §3.1, Figure 1); a compound's score is the mean
  of its elements' scores.

All are pickle-free: the SVMs store support vectors, dual coefficients, intercept and kernel
parameters and evaluate the decision function themselves; probabilities come from a Platt
sigmoid fitted on the training decision values. Note that with the RBF kernel and
``gamma="scale"`` (scikit-learn's default) copying the features k times leaves the kernel
matrix unchanged (both the squared distances and ``1 / (n_features * var)`` scale by k), so
the augmented SVM-type equals the plain one unless ``gamma`` is a number or the kernel linear.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

from xasml.datasets.topology import TopologyData
from xasml.errors import DataError
from xasml.models.base import XasmlEstimator, register_model


def _labels(data: TopologyData, y) -> np.ndarray:
    y = np.asarray(data.y if y is None else y).astype(int)
    if np.any((y != 0) & (y != 1)):
        raise DataError("labels must be 0 (trivial) or 1 (topological)")
    if len(np.unique(y)) < 2:
        raise DataError("the training set needs both classes")
    return y


class _KernelSVM(ClassifierMixin, XasmlEstimator):
    """Shared machinery: scikit-learn SVC training, pickle-free decision function and Platt sigmoid.

    Scikit-learn classifiers of :class:`~xasml.datasets.topology.TopologyData` (labels 0 and 1 in
    ``classes_``, accuracy ``score``, :class:`sklearn.exceptions.NotFittedError` before fit).
    """

    def _features(self, data: TopologyData) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_features(self, data: TopologyData) -> None:
        """Learn anything the features need (e.g. the element vocabulary)."""

    def fit(self, X: TopologyData, y=None, validation: TopologyData | None = None) -> _KernelSVM:
        """Fit the SVM (``validation`` is accepted for a uniform interface and unused)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import SVC

        y = _labels(X, y)
        self.classes_ = np.array([0, 1])
        self._fit_features(X)
        F = self._features(X)
        # The Gram matrix is computed with BLAS and handed to libsvm as a precomputed kernel: same
        # solution as SVC(kernel=...), but libsvm's own dense kernel loop is ~100x slower on these
        # 10^4-dimensional features.
        self.gamma_ = self._resolve_gamma(F) if self.kernel == "rbf" else 0.0
        svc = SVC(C=self.C, kernel="precomputed", class_weight=self.class_weight,
                  random_state=self.seed).fit(self._kernel(F, F), y)
        self.support_vectors_ = np.asarray(F[svc.support_], dtype=np.float64)
        self.dual_coef_ = np.asarray(svc.dual_coef_, dtype=np.float64).ravel()
        self.intercept_ = float(np.asarray(svc.intercept_).ravel()[0])
        f = self.decision_function(X)
        lr = LogisticRegression(C=1e6).fit(f.reshape(-1, 1), y)
        self.platt_ = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))
        # threshold on the probability that reproduces the SVM's own decision (f >= 0)
        self.threshold_ = float(1.0 / (1.0 + np.exp(-self.platt_[1])))
        return self

    def _resolve_gamma(self, F: np.ndarray) -> float:
        """The RBF width: a number as given, or scikit-learn's "scale" (1 / (n_features var F)) / "auto"."""
        if self.gamma == "scale":
            var = float(F.var())
            return 1.0 / (F.shape[1] * var) if var > 0 else 1.0
        if self.gamma == "auto":
            return 1.0 / F.shape[1]
        return float(self.gamma)

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        from sklearn.metrics.pairwise import linear_kernel, rbf_kernel

        if self.kernel == "rbf":
            return rbf_kernel(A, B, gamma=self.gamma_)
        if self.kernel == "linear":
            return linear_kernel(A, B)
        raise DataError(f"kernel {self.kernel!r} not supported: use 'rbf' or 'linear'")

    def decision_function(self, X: TopologyData) -> np.ndarray:
        """Signed distance to the separating surface, shape (n,); > 0 means topological."""
        self._check_fitted("support_vectors_")
        return self._kernel(self._features(X), self.support_vectors_) @ self.dual_coef_ + self.intercept_

    def predict_proba(self, X: TopologyData) -> np.ndarray:
        """Platt-scaled probabilities, shape (n, 2): trivial, topological."""
        f = self.decision_function(X)
        a, b = self.platt_
        p = 1.0 / (1.0 + np.exp(-(a * f + b)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: TopologyData) -> np.ndarray:
        """The SVM's decision: 1 where the decision function is >= 0."""
        return (self.decision_function(X) >= 0).astype(int)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_}
        return arrays, {"intercept": self.intercept_, "gamma": self.gamma_, "platt": list(self.platt_),
                        "threshold": self.threshold_, **self._extra_state()}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.classes_ = np.array([0, 1])
        self.support_vectors_ = np.asarray(arrays["support_vectors"], dtype=np.float64)
        self.dual_coef_ = np.asarray(arrays["dual_coef"], dtype=np.float64)
        self.intercept_ = float(state["intercept"])
        self.gamma_ = float(state["gamma"])
        self.platt_ = tuple(float(v) for v in state["platt"])
        self.threshold_ = float(state["threshold"])
        self._load_extra_state(state)

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass


@register_model("svm_type")
class AtomTypeSVM(_KernelSVM):
    """SVM on the atom types of a compound (paper: "SVM-type").

    Features: a multi-hot vector of length ``n_types`` with a one at each present atomic
    number, repeated ``copies`` times.

    Parameters
    ----------
    copies : int
        Number of copies of the atom-type vector (1; the paper's augmented model uses 200).
    n_types : int
        Length of the one-hot vector (93).
    C, kernel, gamma, class_weight : see :class:`sklearn.svm.SVC` (kernel ``"rbf"`` or ``"linear"``).
    seed : int
        Random state.
    """

    def __init__(self, copies: int = 1, n_types: int = 93, C: float = 1.0, kernel: str = "rbf",
                 gamma: str | float = "scale", class_weight: str | None = "balanced", seed: int = 0):
        self.copies = copies
        self.n_types = n_types
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.class_weight = class_weight
        self.seed = seed

    def _features(self, data: TopologyData) -> np.ndarray:
        F = np.zeros((len(data), int(self.n_types)))
        for i, (z, m) in enumerate(zip(data.Z, data.mask)):
            F[i, z[m]] = 1.0
        return np.tile(F, (1, int(self.copies))) if int(self.copies) > 1 else F


@register_model("svm_type_aug")
class AugmentedAtomTypeSVM(AtomTypeSVM):
    """SVM-type with the atom-type vector copied 200 times (paper Figure S5a, "SVM-aug.")."""

    def __init__(self, copies: int = 200, n_types: int = 93, C: float = 1.0, kernel: str = "rbf",
                 gamma: str | float = "scale", class_weight: str | None = "balanced", seed: int = 0):
        super().__init__(copies, n_types, C, kernel, gamma, class_weight, seed)


@register_model("svm_spectra")
class SpectraSVM(_KernelSVM):
    """SVM on the concatenated spectra of all elements (paper: "SVM").

    Features: for every element of the training vocabulary (sorted by atomic number) its
    standardised spectrum, zeros when the compound lacks that element; elements unseen in
    training are ignored at prediction.

    Parameters
    ----------
    C, kernel, gamma, class_weight : see :class:`sklearn.svm.SVC`.
    seed : int
        Random state.

    Attributes
    ----------
    vocabulary_ : list of int
        Atomic numbers with a block in the feature vector.
    """

    def __init__(self, C: float = 1.0, kernel: str = "rbf", gamma: str | float = "scale",
                 class_weight: str | None = "balanced", seed: int = 0):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.class_weight = class_weight
        self.seed = seed

    def _fit_features(self, data: TopologyData) -> None:
        self.vocabulary_ = sorted({int(z) for z in data.Z[data.mask]})
        self.n_points_ = data.n_points

    def _features(self, data: TopologyData) -> np.ndarray:
        if data.n_points != self.n_points_:
            raise DataError(f"spectra have {data.n_points} points, the model expects {self.n_points_}")
        pos = {z: k for k, z in enumerate(self.vocabulary_)}
        F = np.zeros((len(data), len(self.vocabulary_), self.n_points_))
        for i in range(len(data)):
            for a in np.flatnonzero(data.mask[i]):
                k = pos.get(int(data.Z[i, a]))
                if k is not None:
                    F[i, k] = data.X[i, a]
        return F.reshape(len(data), -1)

    def _extra_state(self) -> dict:
        return {"vocabulary": self.vocabulary_, "n_points": self.n_points_}

    def _load_extra_state(self, state: dict) -> None:
        self.vocabulary_ = [int(z) for z in state["vocabulary"]]
        self.n_points_ = int(state["n_points"])


@register_model("pca_kmeans")
class PCAKMeansClassifier(ClassifierMixin, XasmlEstimator):
    """Per-element PCA + 2-cluster k-means with imbalance-corrected cluster matching (paper §3.1).

    For each absorbing element with at least ``min_count`` training compounds (both classes
    present), :func:`xasml.evaluation.exploration.pca_kmeans` is fitted on the element's
    training spectra. An element spectrum's score is ``d0 / (d0 + d1)`` (distances to the
    centres of the clusters mapped to trivial and topological); a compound's probability of
    being topological is the mean score of its modelled elements (the training prevalence when
    none is modelled).

    Parameters
    ----------
    variance : float
        Explained variance the retained components must reach (0.8).
    n_clusters : int
        k-means clusters (2).
    min_count : int
        Minimum training compounds per element.
    seed : int
        Random state.

    Attributes
    ----------
    classes_ : ndarray, [0, 1]
        Class labels (trivial, topological).
    prior_ : float
        Training prevalence of the topological class.
    elements_ : dict[int, dict]
        Per atomic number: PCA mean and components, cluster centres, mapping.
    results_ : dict[str, PCAKMeansResult]
        The full exploration results of the last :meth:`fit` (not saved; for figures).
    """

    def __init__(self, variance: float = 0.8, n_clusters: int = 2, min_count: int = 4, seed: int = 0):
        self.variance = variance
        self.n_clusters = n_clusters
        self.min_count = min_count
        self.seed = seed

    def fit(self, X: TopologyData, y=None, validation: TopologyData | None = None) -> PCAKMeansClassifier:
        """Fit one PCA + k-means per element on the training compounds (``validation`` unused)."""
        from pymatgen.core.periodic_table import Element

        from xasml.evaluation.exploration import pca_kmeans

        y = _labels(X, y)
        self.classes_ = np.array([0, 1])
        self.prior_ = float(y.mean())
        self.elements_, self.results_ = {}, {}
        for z in sorted({int(v) for v in X.Z[X.mask]}):
            rows, cols = np.nonzero((X.Z == z) & X.mask)
            if len(rows) < self.min_count or len(np.unique(y[rows])) < 2:
                continue
            res = pca_kmeans(X.X[rows, cols].astype(float), y[rows], variance=self.variance,
                             n_clusters=self.n_clusters, seed=self.seed)
            if res.score is None:
                continue
            c_of = {int(v): int(k) for k, v in res.mapping.items()}
            self.elements_[z] = {
                "mean": np.asarray(res.pca.mean_, dtype=float),
                "components": np.asarray(res.pca.components_[:res.n_components], dtype=float),
                "centres": np.asarray(res.kmeans.cluster_centers_, dtype=float),
                "trivial_cluster": c_of[0], "topological_cluster": c_of[1],
            }
            self.results_[Element.from_Z(z).symbol] = res
        return self

    def element_scores(self, X: TopologyData) -> np.ndarray:
        """Score of every absorber, shape (n, max_absorbers); NaN where the element is not modelled."""
        self._check_fitted("elements_")
        S = np.full(X.Z.shape, np.nan)
        for z, p in self.elements_.items():
            rows, cols = np.nonzero((X.Z == z) & X.mask)
            if not len(rows):
                continue
            T = (X.X[rows, cols].astype(float) - p["mean"]) @ p["components"].T
            d = np.linalg.norm(T[:, None, :] - p["centres"][None], axis=2)
            d0, d1 = d[:, p["trivial_cluster"]], d[:, p["topological_cluster"]]
            tot = d0 + d1
            S[rows, cols] = np.divide(d0, tot, out=np.full_like(tot, 0.5), where=tot > 0)
        return S

    def predict_proba(self, X: TopologyData) -> np.ndarray:
        """Mean element score per compound, shape (n, 2): trivial, topological."""
        S = self.element_scores(X)
        have = ~np.isnan(S)
        p = np.where(have.any(axis=1), np.nansum(S, axis=1) / np.maximum(have.sum(axis=1), 1), self.prior_)
        return np.column_stack([1.0 - p, p])

    @property
    def threshold_(self) -> float:
        """Decision threshold on the probability (always 0.5)."""
        return 0.5

    def predict(self, X: TopologyData) -> np.ndarray:
        """1 where the mean element score is >= 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = {}, {}
        for z, p in self.elements_.items():
            for k in ("mean", "components", "centres"):
                arrays[f"Z{z}.{k}"] = p[k]
            meta[str(z)] = {"trivial_cluster": p["trivial_cluster"], "topological_cluster": p["topological_cluster"]}
        return arrays, {"prior": self.prior_, "elements": meta}

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.classes_ = np.array([0, 1])
        self.prior_ = float(state["prior"])
        self.elements_ = {}
        for zs, m in state["elements"].items():
            z = int(zs)
            self.elements_[z] = {k: np.asarray(arrays[f"Z{z}.{k}"], dtype=float)
                                 for k in ("mean", "components", "centres")}
            self.elements_[z].update({k: int(v) for k, v in m.items()})
        self.results_ = {}
