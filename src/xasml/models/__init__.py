"""Models, all behind one estimator contract (:class:`xasml.models.base.XasmlEstimator`).

The names below are imported from :mod:`xasml.models.base` on first use (PEP 562 module
``__getattr__``): importing a submodule that needs no estimator class (:mod:`xasml.models.bundle`
when it predicts with :mod:`xasml.models.inference`) then does not import scikit-learn.
"""

__all__ = ["XasmlEstimator", "register_model", "get_model", "available_models", "load_estimator"]


def __getattr__(name: str):
    """The public name ``name`` of :mod:`xasml.models.base`, imported on first access."""
    if name not in __all__:
        return _submodule(name)
    from xasml.models import base

    value = getattr(base, name)
    globals()[name] = value
    return value


def _submodule(name: str):
    """``xasml.models.<name>`` as an attribute, imported if needed (as when this package imported them all)."""
    import importlib
    import importlib.util

    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
