"""Measured reference standards as evidence: the reference library, nearest standards,
linear-combination fits, edge-position valence, PCA of series, and their combination with a model."""
