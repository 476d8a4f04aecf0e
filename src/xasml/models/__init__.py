"""Models, all behind one estimator contract (:class:`xasml.models.base.XasmlEstimator`).

The names below are imported from :mod:`xasml.models.base` on first use (PEP 562 module
``__getattr__``, :func:`xasml._lazy.lazy_exports`): importing a submodule that needs no estimator
class (:mod:`xasml.models.bundle` when it predicts with :mod:`xasml.models.inference`) then does
not import scikit-learn.
"""

from xasml._lazy import lazy_exports

__all__ = ["XasmlEstimator", "register_model", "get_model", "available_models", "load_estimator"]


__getattr__, __dir__ = lazy_exports(__name__, {name: "base" for name in __all__})
