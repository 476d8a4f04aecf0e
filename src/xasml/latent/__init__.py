"""Rank-constrained adversarial autoencoder (RankAAE) latent spaces of site spectra.

Seed paper: "AI-driven XAS analysis" perspective of the Lu group (``../shared/papers/002``,
§II.C, Figures 4 and 6b), after Miao, Lu et al.'s RankAAE. Modules:

* :mod:`xasml.latent.descriptors` - the structural descriptors the latent axes are ranked against;
* :mod:`xasml.latent.nets` - the torch modules (imported only when a model is built);
* :mod:`xasml.models.rankaae` - the estimators (:class:`~xasml.models.rankaae.RankAAE`,
  :class:`~xasml.models.rankaae.LatentPropertyEnsemble`);
* :mod:`xasml.latent.model` - data set, training, evaluation, model folder, encoding;
* :mod:`xasml.latent.cli` - ``xasml latent fit`` / ``xasml latent encode``.
"""
