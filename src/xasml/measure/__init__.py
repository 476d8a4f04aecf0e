"""Measured spectra: read what beamlines write, check, calibrate and normalise them (larch conventions).

:func:`measure_file` reads any supported file (XDI, Athena project, plain columns) and returns
one record per spectrum; ``xasml measure read`` is its command line (:mod:`xasml.measure.cli`).
"""

from xasml.measure.core import check_edge, measure_file, measure_spectrum

__all__ = ["measure_file", "measure_spectrum", "check_edge"]
