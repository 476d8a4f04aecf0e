"""xasml: machine learning on X-ray absorption spectra.

The spectrum core (:mod:`xasml.spectrum`, :mod:`xasml.io`, :mod:`xasml.preprocess`) is shared by
three capabilities: the topology indicator (:mod:`xasml.topology`), local structure from spectra
(:mod:`xasml.local`) and the structure-to-spectrum forward model (:mod:`xasml.forward`).
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("xasml")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

from xasml.errors import SpectrumError, XasmlError  # noqa: E402
from xasml.spectrum import Spectrum, element_average  # noqa: E402

__all__ = ["Spectrum", "element_average", "SpectrumError", "XasmlError", "__version__"]
