"""The lazy package exports of xasml.io, xasml.labels and xasml.models (xasml._lazy.lazy_exports)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package, name, module", [
    ("xasml.io", "read_xdi", "xasml.io.xdi"),
    ("xasml.io", "read_nexus_table", "xasml.io.nexus"),
    ("xasml.labels", "TopologyCatalogue", "xasml.labels.topology"),
    ("xasml.models", "get_model", "xasml.models.base"),
])
def test_export_is_the_submodules_object(package, name, module):
    pkg = importlib.import_module(package)
    assert getattr(pkg, name) is getattr(importlib.import_module(module), name)
    assert name in dir(pkg) and name in pkg.__all__


def test_submodules_are_attributes_and_unknown_names_fail_cleanly():
    import xasml.io
    import xasml.models

    assert xasml.models.bundle.__name__ == "xasml.models.bundle"
    assert xasml.io.columns.__name__ == "xasml.io.columns"
    with pytest.raises(AttributeError, match="'xasml.io' has no attribute 'no_such_reader'"):
        xasml.io.no_such_reader
    with pytest.raises(AttributeError):
        xasml.io._private


def test_star_import_gives_every_export():
    ns: dict = {}
    exec("from xasml.io import *", ns)
    import xasml.io

    assert set(xasml.io.__all__) <= set(ns)
