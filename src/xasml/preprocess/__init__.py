"""Spectrum preprocessing: energy grids, standardisation, normalisation, alignment, augmentation."""
