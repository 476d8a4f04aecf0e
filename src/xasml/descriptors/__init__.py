"""Structural descriptors of absorbing sites: weighted atom-centred symmetry functions (wACSF)."""

from xasml.descriptors.wacsf import WACSF, cosine_cutoff, gastegger_parameters, site_environment, structure_environment

__all__ = ["WACSF", "cosine_cutoff", "gastegger_parameters", "site_environment", "structure_environment"]
