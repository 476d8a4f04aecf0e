"""Labels: topology catalogues (Materiae, Topological Materials Arsenal, generic CSV), and ChemEnv /
bond-valence site labels (:mod:`xasml.labels.site`).

The names below are imported from :mod:`xasml.labels.topology` on first use (PEP 562 module
``__getattr__``, :func:`xasml._lazy.lazy_exports`): importing :mod:`xasml.labels.site` (``local
predict`` names environments with it) then does not import the catalogues and pandas.
"""

from xasml._lazy import lazy_exports

__all__ = ["SUBCLASSES", "TOPOLOGICAL_SUBCLASSES", "CatalogueEntry", "TopologyCatalogue", "TopologyLabel",
           "TopologyLabeler", "formula_key", "is_topological", "normalize_subclass"]


__getattr__, __dir__ = lazy_exports(__name__, {name: "topology" for name in __all__})
