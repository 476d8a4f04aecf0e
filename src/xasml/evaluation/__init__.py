"""Evaluation: classification and regression metrics, and unsupervised exploration of spectra.

:mod:`xasml.evaluation.metrics`
    binary_metrics, threshold_from_roc, multiclass_metrics, one_vs_rest_roc,
    grouped_binary_metrics, bootstrap, bootstrap_many, per_class_rows, regression_metrics.
:mod:`xasml.evaluation.exploration`
    pca_kmeans (per-element PCA + k-means with imbalance-corrected cluster matching),
    pca_kmeans_by_element, summarize_pca_kmeans, umap_embed (imported on demand: it pulls in
    scikit-learn's clustering and, for UMAP, the optional umap-learn).
"""

from xasml.evaluation.metrics import (
    binary_metrics,
    bootstrap,
    bootstrap_many,
    grouped_binary_metrics,
    multiclass_metrics,
    one_vs_rest_roc,
    per_class_rows,
    regression_metrics,
    threshold_from_roc,
)

__all__ = ["binary_metrics", "bootstrap", "bootstrap_many", "grouped_binary_metrics", "multiclass_metrics",
           "one_vs_rest_roc", "per_class_rows", "regression_metrics", "threshold_from_roc"]
