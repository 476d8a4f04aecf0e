"""Evaluation: classification and regression metrics, and unsupervised exploration of spectra.

:mod:`xasml.evaluation.metrics`
    binary_metrics, threshold_from_roc, multiclass_metrics, grouped_binary_metrics, bootstrap,
    regression_metrics.
:mod:`xasml.evaluation.exploration`
    pca_kmeans (per-element PCA + k-means with imbalance-corrected cluster matching), umap_embed.
"""

from xasml.evaluation.metrics import (
                                      binary_metrics,
                                      bootstrap,
                                      grouped_binary_metrics,
                                      multiclass_metrics,
                                      regression_metrics,
                                      threshold_from_roc,
)

__all__ = ["binary_metrics", "bootstrap", "grouped_binary_metrics", "multiclass_metrics", "regression_metrics",
           "threshold_from_roc"]
