"""Labels: topology catalogues (Materiae, Topological Materials Arsenal, generic CSV)."""

from xasml.labels.topology import (
    SUBCLASSES,
    TOPOLOGICAL_SUBCLASSES,
    CatalogueEntry,
    TopologyCatalogue,
    TopologyLabel,
    TopologyLabeler,
    formula_key,
    is_topological,
    normalize_subclass,
)

__all__ = ["SUBCLASSES", "TOPOLOGICAL_SUBCLASSES", "CatalogueEntry", "TopologyCatalogue", "TopologyLabel",
           "TopologyLabeler", "formula_key", "is_topological", "normalize_subclass"]
