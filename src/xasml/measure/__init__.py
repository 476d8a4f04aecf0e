"""Measured spectra: read what beamlines write, check, calibrate and normalise them (larch conventions).

:func:`measure_file` reads any supported file (XDI, Athena project, plain columns) and returns
one record per spectrum; ``xasml measure read`` is its command line (:mod:`xasml.measure.cli`).
:func:`spectral_domain_map` (``xasml measure map``) maps measured spectra onto a model's simulated
domain (cBSS spectral domain mapping, :mod:`xasml.measure.sdm`).
"""

from xasml.measure.core import check_edge, measure_file, measure_spectrum
from xasml.measure.sdm import SDMResult, spectral_domain_map

__all__ = ["measure_file", "measure_spectrum", "check_edge", "spectral_domain_map", "SDMResult"]
