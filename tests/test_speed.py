"""The fast paths of the one-file shell commands (issue 17, item 4) give the same answers as the slow ones.

* :mod:`xasml.edges` reads xraydb's edge table from its SQLite file without importing xraydb:
  the table and :func:`~xasml.edges.guess_edge` must equal xraydb's own functions.
"""

from __future__ import annotations

import numpy as np
import pytest


def test_edge_table_equals_xraydb():
    import xraydb

    from xasml import edges

    symbols, levels = edges._levels()
    assert edges._levels_from_sqlite() is not None  # the fast path is the one in use here
    for z in range(1, 99):
        sym = xraydb.atomic_symbol(z)
        assert symbols[z] == sym
        want = {name: float(e.energy) for name, e in xraydb.xray_edges(sym).items()}
        assert levels.get(sym, {}) == want, sym
        assert list(levels.get(sym, {})) == list(want)  # same order (named in error messages)
    assert edges.edge_energy("Cu", "K") == xraydb.xray_edge("Cu", "K").energy
    # the fallback through xraydb's Python API builds the same table
    assert edges._levels_from_api()[1] == {k: v for k, v in levels.items() if k in edges._levels_from_api()[1]}


def test_guess_edge_equals_xraydb():
    """Around every tabulated K/L/M5 edge (where the choice flips) and on a 7 eV sweep to 40 keV."""
    import xraydb

    from xasml.edges import _levels, guess_edge

    points = set(np.arange(100.0, 40_000.0, 7.0).round(1))
    for edges in _levels()[1].values():
        for name in ("K", "L3", "L2", "L1", "M5"):
            if name in edges:
                e = edges[name]
                points.update(e + d for d in (-40.0, -3.0, -0.6, 0.0, 0.4, 1.1, 6.0, 25.0))
    bad = [(e, guess_edge(e), xraydb.guess_edge(e)) for e in sorted(points)
           if guess_edge(e) != tuple(xraydb.guess_edge(e))]
    assert not bad, bad[:5]


def test_identify_edge_without_constraints_is_xraydbs_guess():
    """Measured e0s of Fe, Cu, Sr K and Pt L3 files (and others) name xraydb's edges with xraydb's energies."""
    import xraydb

    from xasml.edges import identify_edge

    for e0 in (7112.0, 8982.0, 16140.0, 11564.0, 2472.0, 4966.0, 29200.0):
        el, ed, energy = identify_edge(e0)
        assert (el, ed) == tuple(xraydb.guess_edge(e0))
        assert energy == xraydb.xray_edge(el, ed).energy


def test_environment_names_equal_pymatgens():
    """ChemEnv names read from pymatgen's files are those of its AllCoordinationGeometries."""
    from xasml.labels.site import _coordination_geometries, _environment_names, environment_name

    names = _environment_names()
    assert len(names) >= 60 and names["S:4"] == "Square plane"
    table = _coordination_geometries()
    for symbol, name in names.items():
        assert table.get_geometry_from_mp_symbol(symbol).name == name
    for cg in table.cg_list:
        assert environment_name(cg.mp_symbol) == table.get_geometry_from_mp_symbol(cg.mp_symbol).name
    assert environment_name("other") == "other" and environment_name(None) is None
