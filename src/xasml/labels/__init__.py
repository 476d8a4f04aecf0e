"""Labels: topology catalogues (Materiae, Topological Materials Arsenal, generic CSV), and ChemEnv /
bond-valence site labels (:mod:`xasml.labels.site`).

The names below are imported from :mod:`xasml.labels.topology` on first use (PEP 562 module
``__getattr__``): importing :mod:`xasml.labels.site` (``local predict`` names environments with
it) then does not import the catalogues and pandas.
"""

__all__ = ["SUBCLASSES", "TOPOLOGICAL_SUBCLASSES", "CatalogueEntry", "TopologyCatalogue", "TopologyLabel",
           "TopologyLabeler", "formula_key", "is_topological", "normalize_subclass"]


def __getattr__(name: str):
    """The public name ``name`` of :mod:`xasml.labels.topology`, imported on first access."""
    if name not in __all__:
        return _submodule(name)
    from xasml.labels import topology

    value = getattr(topology, name)
    globals()[name] = value
    return value


def _submodule(name: str):
    """``xasml.labels.<name>`` as an attribute, imported if needed (as when this package imported them all)."""
    import importlib
    import importlib.util

    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
