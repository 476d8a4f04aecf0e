"""Spectra from structures: the XANESNET forward model (Rankine & Penfold, J. Chem. Phys. 156, 164102, 2022).

* :mod:`xasml.forward.data` — structures + spectra -> wACSF descriptors and target spectra
  (XANESNET xyz/FDMNES folders, XANESNET ``.npz``, FEFF crystal trees);
* :mod:`xasml.forward.config` — options, presets ``fast`` and ``paper``;
* :mod:`xasml.forward.run` — ``xasml forward run``: cross-validation, training, evaluation, report;
* :mod:`xasml.forward.predict` — :class:`~xasml.forward.predict.ForwardModel` and ``xasml forward predict``;
* :mod:`xasml.forward.analysis` — permutation importance, select-from-model, sequential selection.
"""
