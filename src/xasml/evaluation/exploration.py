"""Unsupervised exploration of spectra: per-element PCA + k-means, and UMAP embeddings.

The PCA + k-means analysis is the exploratory study of Andrejevic et al., "Machine-learning
spectral indicators of topology", Adv. Mater. 34, 2204113 (2022), Sec. 3.1 and Figure 1:

1. For one absorbing element, fit a PCA to its spectra and keep the smallest number of leading
   components whose cumulative explained-variance ratio is at least 80 %.
2. Cluster the spectra in that subspace with k-means (2 clusters).
3. k-means does not see the labels, so each cluster is assigned a class afterwards by an
   optimal matching that "minimizes the number of misclassified examples, corrected for class
   imbalance". We implement the correction by weighting every example by the inverse frequency
   of its true class, ``w_i = 1 / n_{y_i}``: the matching then minimises the sum of the per-class
   error rates, i.e. maximises the balanced accuracy ``(r_trivial + r_topological) / 2``. Without
   the correction a cluster would simply be given the majority class of the whole set. The
   one-to-one pairing is solved with the Hungarian algorithm
   (``scipy.optimize.linear_sum_assignment``); with more clusters than classes each cluster gets
   the class of largest weight in it (several clusters may share a class).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xasml.errors import DataError, MissingExtraError
from xasml.evaluation.metrics import _binary_labels, binary_metrics

__all__ = [
    "PCAKMeansResult",
    "match_clusters",
    "n_components_for_variance",
    "pca_kmeans",
    "pca_kmeans_by_element",
    "summarize_pca_kmeans",
    "umap_embed",
]


def n_components_for_variance(explained_variance_ratio, variance: float = 0.8) -> int:
    """Smallest number of leading principal components explaining at least ``variance``.

    Parameters
    ----------
    explained_variance_ratio : array_like, shape (k,)
        Explained-variance ratios of the components, in decreasing order (sklearn ``PCA``).
    variance : float
        Target fraction in (0, 1].

    Returns
    -------
    int
        Between 1 and k (k when the target is not reached, e.g. through rounding).
    """
    if not 0 < variance <= 1:
        raise ValueError(f"variance must be in (0, 1], got {variance}")
    cum = np.cumsum(np.asarray(explained_variance_ratio, dtype=float))
    k = int(np.searchsorted(cum, variance - 1e-12, side="left")) + 1
    return int(min(max(k, 1), cum.size))


def match_clusters(cluster, y, n_clusters: int | None = None, classes: Sequence[int] = (0, 1),
                   balanced: bool = True) -> dict[int, int]:
    """Assign a class to every cluster by optimal, class-imbalance-corrected matching.

    Each example is weighted by ``1 / n_c`` (``n_c`` = number of examples of its true class ``c``)
    when ``balanced``, else by 1; the assignment maximises the total weight of correctly
    classified examples (Andrejevic et al. 2022, Sec. 3.1). With as many clusters as classes this
    is a one-to-one pairing found by the Hungarian algorithm; otherwise each cluster takes its
    heaviest class.

    Parameters
    ----------
    cluster : array_like of int, shape (n,)
        Cluster index of each example, in ``0 .. n_clusters-1``.
    y : array_like of int, shape (n,)
        True class of each example, one of ``classes``.
    n_clusters : int, optional
        Number of clusters (default: ``max(cluster) + 1``).
    classes : sequence of int
        The classes to assign.
    balanced : bool
        Apply the class-imbalance correction (True reproduces the paper).

    Returns
    -------
    dict
        cluster index -> class.
    """
    from scipy.optimize import linear_sum_assignment

    cluster = np.asarray(cluster, dtype=int)
    y = np.asarray(y)
    n_clusters = int(cluster.max()) + 1 if n_clusters is None else int(n_clusters)
    classes = list(classes)
    counts = np.array([(y == c).sum() for c in classes], dtype=float)
    w_class = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0) if balanced else np.ones(len(classes))
    W = np.zeros((n_clusters, len(classes)))
    for j, c in enumerate(classes):
        W[:, j] = np.bincount(cluster[y == c], minlength=n_clusters)[:n_clusters] * w_class[j]
    if n_clusters == len(classes):
        rows, cols = linear_sum_assignment(-W)
        return {int(r): int(classes[c]) for r, c in zip(rows, cols)}
    return {k: int(classes[int(np.argmax(W[k]))]) for k in range(n_clusters)}


@dataclass
class PCAKMeansResult:
    """Outcome of :func:`pca_kmeans` for one absorbing element.

    Attributes
    ----------
    pca : sklearn.decomposition.PCA
        Fitted PCA with ``max(n_components, 2)`` components (the second one, when not used for
        clustering, is kept for plotting the PC1-PC2 plane).
    kmeans : sklearn.cluster.KMeans
        k-means fitted on the first ``n_components`` principal components.
    n_components : int
        Number of principal components used for clustering (>= ``variance`` explained).
    explained_variance_ratio : ndarray, shape (n_components,)
        Explained-variance ratio of each retained component.
    Z : ndarray, shape (n, n_components)
        Projected input spectra.
    cluster : ndarray of int, shape (n,)
        k-means cluster of each input spectrum.
    mapping : dict
        cluster index -> class (0 trivial, 1 topological) from :func:`match_clusters`.
    y_pred : ndarray of int, shape (n,)
        Class assigned to each input spectrum through its cluster.
    score : ndarray, shape (n,) or None
        For two clusters mapped to two different classes: ``d0 / (d0 + d1)``, where ``d_c`` is the
        distance to the centre of the cluster of class ``c`` (> 0.5 exactly when ``y_pred`` is 1);
        gives the ROC curve and AUC in ``metrics``. None otherwise.
    metrics : dict
        :func:`xasml.evaluation.metrics.binary_metrics` of ``y_pred`` (or of ``score`` at 0.5)
        against the labels, on all input rows.
    fit_mask : ndarray of bool, shape (n,)
        Rows used to fit PCA, k-means and the matching.
    variance : float
        The requested explained-variance fraction.
    """

    pca: object
    kmeans: object
    n_components: int
    explained_variance_ratio: np.ndarray
    Z: np.ndarray
    cluster: np.ndarray
    mapping: dict
    y_pred: np.ndarray
    score: np.ndarray | None
    metrics: dict
    fit_mask: np.ndarray
    variance: float = 0.8
    Z_plot: np.ndarray = field(default=None, repr=False)

    def transform(self, X) -> np.ndarray:
        """Project spectra onto the retained principal components.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Spectra on the same energy grid as the fitted data.

        Returns
        -------
        ndarray, shape (n, n_components)
        """
        return self.pca.transform(_check_X(X, self.pca.n_features_in_))[:, : self.n_components]

    def predict_cluster(self, X) -> np.ndarray:
        """k-means cluster of each spectrum.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Spectra on the fitted grid.

        Returns
        -------
        ndarray of int, shape (n,)
        """
        return self.kmeans.predict(self.transform(X))

    def predict(self, X) -> np.ndarray:
        """Class of each spectrum through its matched cluster.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Spectra on the fitted grid.

        Returns
        -------
        ndarray of int, shape (n,)
            0 (trivial) or 1 (topological).

        Raises
        ------
        xasml.errors.DataError
            If X has the wrong number of energy points or non-finite values.
        """
        return np.array([self.mapping[int(k)] for k in self.predict_cluster(X)], dtype=int)

    def decision_score(self, X) -> np.ndarray | None:
        """Distance score of each spectrum (see the ``score`` attribute).

        Parameters
        ----------
        X : array_like, shape (n, d)
            Spectra on the fitted grid.

        Returns
        -------
        ndarray, shape (n,), or None
            ``d0 / (d0 + d1)`` in [0, 1], > 0.5 exactly for class 1; None unless there are two
            clusters matched to different classes.
        """
        return _distance_score(self.kmeans, self.mapping, self.transform(X))

    def summary(self) -> dict:
        """JSON-serialisable summary: sizes, components, variance, mapping and per-class metrics."""
        m = self.metrics
        return {"n": m["n"], "n_pos": m["n_pos"], "n_fit": int(self.fit_mask.sum()),
                "n_components": int(self.n_components),
                "explained_variance": float(np.sum(self.explained_variance_ratio)),
                "mapping": {str(k): int(v) for k, v in self.mapping.items()},
                "accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"], "auc": m["auc"],
                "per_class": m["per_class"]}


def _check_X(X, d: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise DataError(f"X: expected a 2-D array (spectra, energies), got shape {X.shape}")
    if d is not None and X.shape[1] != d:
        raise DataError(f"X: expected {d} energy points per spectrum (the fitted grid), got {X.shape[1]}")
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"X: non-finite value at row {bad[0]}, column {bad[1]}")
    return X


def _distance_score(kmeans, mapping: dict, Z: np.ndarray) -> np.ndarray | None:
    if kmeans.n_clusters != 2 or sorted(mapping.values()) != [0, 1]:
        return None
    c_of = {v: k for k, v in mapping.items()}
    d = kmeans.transform(Z)  # distances to the centres, (n, 2)
    d0, d1 = d[:, c_of[0]], d[:, c_of[1]]
    tot = d0 + d1
    return np.divide(d0, tot, out=np.full_like(tot, 0.5), where=tot > 0)


def pca_kmeans(X, y, variance: float = 0.8, n_clusters: int = 2, seed: int = 0, fit_mask=None,
               balanced: bool = True, class_names: Sequence[str] = ("trivial", "topological"),
               n_init: int = 10) -> PCAKMeansResult:
    """PCA keeping >= ``variance`` explained variance, k-means, and imbalance-corrected cluster matching.

    Reproduces the per-element exploratory analysis of Andrejevic et al. (2022), Sec. 3.1 and
    Figure 1 (see the module docstring for the matching rule).

    Parameters
    ----------
    X : array_like, shape (n, d)
        Spectra of ONE absorbing element on a common energy grid (e.g. element-averaged,
        normalised; rows are compounds).
    y : array_like, shape (n,)
        True classes in {0, 1} (1 = topological).
    variance : float
        Fraction of explained variance the retained components must reach (0.8 in the paper).
    n_clusters : int
        Number of k-means clusters (2 in the paper).
    seed : int
        Random state of PCA (randomised solvers) and k-means.
    fit_mask : array_like of bool, shape (n,), optional
        Rows to fit PCA, k-means and the matching on (the paper fits on the training set and
        plots all sets); default all rows. ``metrics`` are always on all rows; compute others
        with :func:`binary_metrics` on ``y_pred[mask]``.
    balanced : bool
        Correct the matching for class imbalance (paper: True).
    class_names : pair of str
        Names of class 0 and 1 in ``metrics``.
    n_init : int
        k-means restarts.

    Returns
    -------
    PCAKMeansResult

    Raises
    ------
    xasml.errors.DataError
        If X is not 2-D and finite, y is not 0/1 with one entry per row, or there are fewer
        fitting rows than clusters.

    Examples
    --------
    >>> res = pca_kmeans(X_cu, y_cu)            # doctest: +SKIP
    >>> res.n_components, res.metrics["per_class"]["topological"]["f1"]   # doctest: +SKIP
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    X = _check_X(X)
    y = _binary_labels(y, "y")
    if y.size != X.shape[0]:
        raise DataError(f"y: {y.size} labels for {X.shape[0]} spectra; expected one label per row of X")
    mask = np.ones(X.shape[0], bool) if fit_mask is None else np.asarray(fit_mask, dtype=bool).ravel()
    if mask.size != X.shape[0]:
        raise DataError(f"fit_mask: {mask.size} entries for {X.shape[0]} spectra")
    n_fit = int(mask.sum())
    if n_fit < max(n_clusters, 2):
        raise DataError(f"X: {n_fit} spectra to fit; PCA + k-means with {n_clusters} clusters needs at "
                        f"least {max(n_clusters, 2)}")
    Xf = X[mask]
    k_max = min(Xf.shape)
    full = PCA(n_components=k_max, svd_solver="full").fit(Xf)
    n_comp = n_components_for_variance(full.explained_variance_ratio_, variance)
    pca = PCA(n_components=min(max(n_comp, 2), k_max), svd_solver="full", random_state=seed).fit(Xf)
    Zall = pca.transform(X)
    Z = Zall[:, :n_comp]
    km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(Z[mask])
    cluster = km.predict(Z)
    mapping = match_clusters(cluster[mask], y[mask], n_clusters=n_clusters, balanced=balanced)
    y_pred = np.array([mapping[int(k)] for k in cluster], dtype=int)
    score = _distance_score(km, mapping, Z)
    metrics = binary_metrics(y, score if score is not None else y_pred, threshold=0.5, class_names=class_names)
    Z_plot = Zall[:, :2] if Zall.shape[1] >= 2 else np.column_stack([Zall[:, 0], np.zeros(len(Zall))])
    return PCAKMeansResult(pca=pca, kmeans=km, n_components=n_comp,
                           explained_variance_ratio=pca.explained_variance_ratio_[:n_comp].copy(),
                           Z=Z, cluster=cluster, mapping=mapping, y_pred=y_pred, score=score,
                           metrics=metrics, fit_mask=mask, variance=float(variance), Z_plot=Z_plot)


def pca_kmeans_by_element(data: dict, min_count: int = 6, min_per_class: int = 2,
                          **kwargs) -> dict[str, PCAKMeansResult]:
    """Run :func:`pca_kmeans` for every absorbing element with enough examples of both classes.

    Parameters
    ----------
    data : dict
        element symbol -> ``(X, y)`` or ``(X, y, fit_mask)``; X shape (n_el, d_el) (grids may differ
        between elements), y shape (n_el,).
    min_count : int
        Skip elements with fewer spectra.
    min_per_class : int
        Skip elements with fewer spectra than this in either class.
    **kwargs
        Passed to :func:`pca_kmeans` (variance, n_clusters, seed, ...).

    Returns
    -------
    dict
        element -> PCAKMeansResult, in the order of ``data``.
    """
    out = {}
    for el, item in data.items():
        X, y, *rest = item
        y = np.asarray(y)
        if len(y) < min_count or min((y == 0).sum(), (y == 1).sum()) < min_per_class:
            continue
        out[el] = pca_kmeans(X, y, fit_mask=rest[0] if rest else None, **kwargs)
    return out


def summarize_pca_kmeans(results: dict[str, PCAKMeansResult],
                         class_names: Sequence[str] = ("trivial", "topological")) -> dict:
    """Per-element table and element-averaged scores of :func:`pca_kmeans_by_element` results.

    The average over elements is the "PCA + k-means" reference bar of Andrejevic et al. (2022),
    Figure 3b,c ("average performance ... across all elements").

    Returns
    -------
    dict
        ``rows``: list of dicts (element, n, n_pos, n_components, explained_variance, accuracy,
        and ``recall_<class>``, ``precision_<class>``, ``f1_<class>`` for both classes);
        ``mean``: {class: {precision, recall, f1}} averaged over elements (unweighted).
    """
    rows = []
    for el, r in results.items():
        row = {"element": el, "n": r.metrics["n"], "n_pos": r.metrics["n_pos"], "n_components": r.n_components,
               "explained_variance": float(np.sum(r.explained_variance_ratio)),
               "accuracy": r.metrics["accuracy"], "balanced_accuracy": r.metrics["balanced_accuracy"]}
        for c in class_names:
            for k in ("precision", "recall", "f1"):
                row[f"{k}_{c}"] = r.metrics["per_class"][c][k]
        rows.append(row)
    mean = {c: {k: float(np.mean([row[f"{k}_{c}"] for row in rows])) if rows else None
                for k in ("precision", "recall", "f1")} for c in class_names}
    return {"rows": rows, "mean": mean}


def umap_embed(X, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0, metric: str = "euclidean",
               n_components: int = 2) -> np.ndarray:
    """Two-dimensional UMAP embedding of spectra (McInnes, Healy & Melville, arXiv:1802.03426).

    Used for latent-space maps such as the "XANES bird" of the AI-driven XAS pipeline
    perspective (paper 002). Needs the optional ``umap-learn`` package (extra ``umap``), which is
    imported only here.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Spectra or features, one row per example; n >= 3.
    n_neighbors : int
        Size of the local neighbourhood; reduced to ``n - 1`` for small n.
    min_dist : float
        Minimum distance between embedded points.
    seed : int
        ``random_state`` of UMAP (makes the result reproducible; UMAP then runs single-threaded).
    metric : str
        Distance in input space.
    n_components : int
        Embedding dimension (2 for plots).

    Returns
    -------
    ndarray, shape (n, n_components)

    Raises
    ------
    xasml.errors.MissingExtraError
        If umap-learn is not installed.
    xasml.errors.DataError
        If X is not a finite 2-D array with at least 3 rows.
    """
    try:
        import umap
    except ImportError:
        raise MissingExtraError("umap-learn", "umap") from None
    X = _check_X(X)
    if X.shape[0] < 3:
        raise DataError(f"X: UMAP needs at least 3 examples, got {X.shape[0]}")
    nn = int(min(n_neighbors, X.shape[0] - 1))
    reducer = umap.UMAP(n_neighbors=nn, min_dist=min_dist, n_components=n_components, metric=metric,
                        random_state=seed, n_jobs=1, init="spectral" if X.shape[0] > n_components + 1 else "random")
    return np.asarray(reducer.fit_transform(X), dtype=float)
