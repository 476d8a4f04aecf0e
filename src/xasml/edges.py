"""Absorption-edge facts: the one edge table of xasml, over xraydb.

Low-level X-ray facts that readers (``io/``) and preprocessing (``preprocess/``) both need, so
neither reaches into the other: tabulated edge energies (xraydb: Elam, Ravel & Sieber,
*Radiat. Phys. Chem.* 63, 121 (2002)), the edge an observed e0 belongs to, and the element/edge a
file name or header states.

* :func:`edge_energy` — tabulated energy of an element's edge (eV).
* :func:`guess_edge` — xraydb's guess of the element and edge of an observed edge energy.
* :func:`identify_edge` — the tabulated edge nearest an observed edge energy, optionally
  restricted to an element and/or edge.
* :func:`element_edge_from_text` — the element and edge a file name or header text states
  (``Fe_K``, ``sno2_l3``, ``Cu K-edge``), or ``(None, None)``.

Speed: the edge energies are read from xraydb's own SQLite file (``xraydb.sqlite`` in the
installed ``xraydb`` package, table ``xray_levels``; XrayDB is published as an SQLite database
meant to be read from any language) with the standard library's :mod:`sqlite3`, without
importing the ``xraydb`` Python package: its import loads SQLAlchemy and ``scipy.interpolate``
(0.5-1.3 s measured on the development machine, about half of a one-file ``xasml measure read``;
``benchmarks/shell_speed.py``), while reading the ~1,700 edge rows takes milliseconds. The data
are xraydb's installed data, so there is nothing to cache or invalidate. Should the file be
missing or its layout change, the same table is built through xraydb's Python API instead
(slower to import, same numbers); ``tests/test_speed.py`` checks both agree.
"""

from __future__ import annotations

import re
from functools import lru_cache

from xasml.errors import SpectrumError

__all__ = ["edge_energy", "guess_edge", "identify_edge", "element_edge_from_text"]

_MAIN_EDGES = ("K", "L3")
_ALL_EDGES = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")
#: the edges :func:`guess_edge` considers, in its order of preference on ties (xraydb's default)
_GUESS_EDGES = ("K", "L3", "L2", "L1", "M5")


def _xraydb_sqlite():
    """Path of the installed xraydb's ``xraydb.sqlite``, found without importing xraydb (or None)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("xraydb")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "xraydb.sqlite"
        if path.is_file():
            return path
    return None


def _levels_from_sqlite() -> tuple[tuple[str, ...], dict[str, dict[str, float]]] | None:
    """Element symbols (index = Z) and ``{symbol: {edge: energy (eV)}}`` from ``xraydb.sqlite``, or None."""
    import sqlite3

    path = _xraydb_sqlite()
    if path is None:
        return None
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            symbols = con.execute("SELECT atomic_number, element FROM elements ORDER BY atomic_number").fetchall()
            rows = con.execute("SELECT element, iupac_symbol, absorption_edge FROM xray_levels ORDER BY id").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if not symbols or not rows or [z for z, _ in symbols] != list(range(1, len(symbols) + 1)):
        return None
    levels: dict[str, dict[str, float]] = {}
    for el, edge, energy in rows:
        levels.setdefault(str(el), {})[str(edge)] = float(energy)
    return ("",) + tuple(str(s) for _, s in symbols), levels


def _levels_from_api() -> tuple[tuple[str, ...], dict[str, dict[str, float]]]:
    """The same table through xraydb's Python API (imports xraydb: slow, but independent of its file layout)."""
    import xraydb

    symbols, levels = [""], {}
    for z in range(1, 119):
        try:
            sym = xraydb.atomic_symbol(z)
        except Exception:  # noqa: BLE001 - beyond xraydb's elements
            break
        symbols.append(sym)
        edges = {name: float(e.energy) for name, e in xraydb.xray_edges(sym).items()}
        if edges:
            levels[sym] = edges
    return tuple(symbols), levels


@lru_cache(maxsize=1)
def _levels() -> tuple[tuple[str, ...], dict[str, dict[str, float]]]:
    """Element symbols (index = atomic number) and every tabulated edge energy (eV) per element, from xraydb."""
    return _levels_from_sqlite() or _levels_from_api()


def edge_energy(element: str, edge: str = "K") -> float:
    """Tabulated absorption-edge energy (eV) from xraydb.

    Parameters
    ----------
    element : str
        Chemical symbol, e.g. ``"Cu"``.
    edge : str
        Edge name, e.g. ``"K"``, ``"L3"``.

    Returns
    -------
    float
        Edge energy in eV (Cu K: 8979.0), as ``xraydb.xray_edges(element)[edge].energy``.

    Raises
    ------
    SpectrumError
        If the element or edge is unknown to xraydb.
    """
    from xasml.spectrum import normalize_element

    el = normalize_element(element)
    edges = _levels()[1].get(el, {})
    key = str(edge).strip().upper()
    if key not in edges:
        raise SpectrumError(f"xraydb has no {key} edge for {el}; known: {', '.join(edges)}", field="edge")
    return float(edges[key])


@lru_cache(maxsize=1)
def _edge_table() -> tuple[tuple[str, str, float], ...]:
    symbols, levels = _levels()
    rows = []
    for sym in symbols[3:99]:
        for name, energy in levels.get(sym, {}).items():
            if name in _ALL_EDGES and energy > 0:
                rows.append((sym, name, energy))
    return tuple(rows)


@lru_cache(maxsize=1)
def _guess_tables():
    """Per edge of :data:`_GUESS_EDGES`, the edge energy (eV) indexed by atomic number, as xraydb.guess_edge has it."""
    import numpy as np

    symbols, levels = _levels()
    z_of = {s: z for z, s in enumerate(symbols) if s}
    zmax = max(z_of[s] for s in levels)
    tables = {}
    for edge in _GUESS_EDGES:
        energies = np.full(zmax, -1.0)  # xraydb's placeholder where an element lacks the edge
        for sym, edges in levels.items():
            if edge in edges and z_of[sym] < zmax:  # xraydb's table stops below the heaviest element
                energies[z_of[sym]] = edges[edge]
        tables[edge] = energies
    return tables


def guess_edge(energy: float) -> tuple[str | None, str | None]:
    """The element and edge of an observed edge energy, by the rule of ``xraydb.guess_edge``.

    xraydb's heuristic over its edge table, evaluated on the same table read without importing
    xraydb (see the module docstring; ``tests/test_speed.py`` checks the answers equal
    ``xraydb.guess_edge``'s): for each of the K, L3, L2, L1 and M5 edges take the element whose
    tabulated edge is nearest, and score the distance, doubled when the edge lies above the
    energy, doubled for Z < 10 or Z > 92, quartered for K and doubled for L1 and M5 edges; the
    first edge (in that order) within 2 eV of the best score wins.

    Parameters
    ----------
    energy : float
        Observed edge energy, eV.

    Returns
    -------
    (element, edge) : tuple of (str or None, str or None)
        Symbol and edge name, or ``(None, None)`` when nothing fits.
    """
    import numpy as np

    symbols = _levels()[0]
    scored = []
    for edge, energies in _guess_tables().items():
        z = int(np.abs(energies - energy).argmin())
        diff = energy - energies[z]
        if diff < 0:  # an edge above the observed energy is less likely than one below it
            diff = -2.0 * diff
        if z < 10 or z > 92:
            diff *= 2.0
        if edge == "K":
            diff *= 0.25
        elif edge in ("L1", "M5"):
            diff *= 2.0
        scored.append((edge, z, diff))
    best = min(d for _, _, d in scored)
    for edge, z, diff in scored:
        if abs(diff - best) < 2 and z > 0:
            return symbols[z], edge
    return None, None


def identify_edge(e0: float, element: str | None = None, edge: str | None = None,
                  tolerance: float = 100.0) -> tuple[str, str, float]:
    """The tabulated absorption edge of an observed edge energy.

    Without constraints this is ``xraydb.guess_edge`` (:func:`guess_edge`, which prefers the K and L3 edges that are
    usually measured); with ``element`` and/or ``edge`` given, the nearest tabulated edge among
    those allowed.

    Parameters
    ----------
    e0 : float
        Observed edge energy, eV.
    element : str, optional
        Restrict to this element.
    edge : str, optional
        Restrict to this edge (``"L"`` means L3, ``"M"`` means M5).
    tolerance : float
        Largest accepted distance (eV) between ``e0`` and the tabulated edge.

    Returns
    -------
    (element, edge, energy)
        Symbol, edge name and tabulated energy (eV).

    Raises
    ------
    ValueError
        If no tabulated edge lies within ``tolerance`` of ``e0``.
    """
    generic = {"L": "L3", "M": "M5"}
    if edge is not None:
        edge = generic.get(edge.upper(), edge.upper())
    if element is None and edge is None:
        # xraydb's heuristic (K and L3 first, then other edges) names 271 of the 274 edges of the XAS
        # Data Library files right from their larch e0, where nearest-K/L3-first named 264
        el, ed = guess_edge(float(e0))
        if el is None:
            raise ValueError(f"no tabulated edge fits e0 = {e0:.1f} eV")
        best = (el, ed, edge_energy(el, ed))
        if abs(best[2] - e0) > tolerance:
            raise ValueError(f"nearest tabulated edge {el} {ed} ({best[2]:.1f} eV) is {abs(best[2] - e0):.1f} eV "
                             f"from e0 = {e0:.1f} eV (tolerance {tolerance} eV)")
        return best
    table = _edge_table()
    cands = [r for r in table if (element is None or r[0] == element) and (edge is None or r[1] == edge)]
    if element is None and edge is None:
        main = [r for r in cands if r[1] in _MAIN_EDGES and abs(r[2] - e0) <= tolerance]
        if main:
            cands = main
    if not cands:
        raise ValueError(f"no tabulated edge for element={element}, edge={edge}")
    best = min(cands, key=lambda r: abs(r[2] - e0))
    if abs(best[2] - e0) > tolerance:
        raise ValueError(f"nearest tabulated edge {best[0]} {best[1]} ({best[2]:.1f} eV) is "
                         f"{abs(best[2] - e0):.1f} eV from e0 = {e0:.1f} eV (tolerance {tolerance} eV)")
    return best


_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm "
    "Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf"
).split()
_EDGE_NAMES = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")


def _formula_first_symbol(token: str) -> str | None:
    """First element of a token that reads wholly as a formula (``sno2`` → Sn, ``Fe`` → Fe, ``foil`` → None)."""
    lookup = {s.lower(): s for s in _SYMBOLS}
    tok = token.lower()

    def parse(pos: int) -> list[str] | None:
        if pos == len(tok):
            return []
        for n in (2, 1):
            sym = lookup.get(tok[pos:pos + n])
            if sym is None:
                continue
            end = pos + n
            while end < len(tok) and tok[end].isdigit():
                end += 1
            rest = parse(end)
            if rest is not None:
                return [sym] + rest
        return None

    syms = parse(0) if tok and tok[0].isalpha() else None
    return syms[0] if syms else None


def element_edge_from_text(text: str) -> tuple[str | None, str | None]:
    """The element and edge a file name or a header line states, e.g. ``Fe_K``, ``sno2_l3``, ``Cu K-edge``.

    The text is split at spaces, ``_``, ``-``, ``.`` and punctuation; an edge word (K, L1–L3,
    M1–M5, optionally ``Kedge``) whose preceding word reads wholly as a formula (element symbols
    with counts, case-insensitive: ``sno2``, ``Fe``, ``CuO``) gives that formula's first element.
    Only the first such pair counts, so ``fe_k`` and ``FE-K`` both give ``("Fe", "K")`` and
    ``Cu_foil_K`` gives nothing (``foil`` is no formula).

    Parameters
    ----------
    text : str
        A file name (with or without folders and extension) or one header line.

    Returns
    -------
    (element, edge) : tuple of (str or None, str or None)
        Symbol and edge name, or ``(None, None)`` when the text states none.
    """
    name = re.split(r"[\\/]", str(text))[-1]
    tokens = [t for t in re.split(r"[\s_\-.,;:()]+", name) if t]
    for i, tok in enumerate(tokens):
        edge = tok.upper()
        if edge.endswith("EDGE") and edge[:-4] in _EDGE_NAMES:
            edge = edge[:-4]
        if edge not in _EDGE_NAMES or i == 0:
            continue
        sym = _formula_first_symbol(tokens[i - 1])
        if sym is not None:
            return sym, edge
    return None, None
