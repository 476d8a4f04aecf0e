"""Absorption-edge facts: the one edge table of xasml, over xraydb.

Low-level X-ray facts that readers (``io/``) and preprocessing (``preprocess/``) both need, so
neither reaches into the other: tabulated edge energies (xraydb: Elam, Ravel & Sieber,
*Radiat. Phys. Chem.* 63, 121 (2002)), the edge an observed e0 belongs to, and the element/edge a
file name or header states.

* :func:`edge_energy` — tabulated energy of an element's edge (eV).
* :func:`identify_edge` — the tabulated edge nearest an observed edge energy, optionally
  restricted to an element and/or edge.
* :func:`element_edge_from_text` — the element and edge a file name or header text states
  (``Fe_K``, ``sno2_l3``, ``Cu K-edge``), or ``(None, None)``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from xasml.errors import SpectrumError

__all__ = ["edge_energy", "identify_edge", "element_edge_from_text"]

_MAIN_EDGES = ("K", "L3")
_ALL_EDGES = ("K", "L1", "L2", "L3", "M1", "M2", "M3", "M4", "M5")


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
        Edge energy in eV (Cu K: 8979.0).

    Raises
    ------
    SpectrumError
        If the element or edge is unknown to xraydb.
    """
    import xraydb

    from xasml.spectrum import normalize_element

    el = normalize_element(element)
    edges = xraydb.xray_edges(el)
    key = str(edge).strip().upper()
    if key not in edges:
        raise SpectrumError(f"xraydb has no {key} edge for {el}; known: {', '.join(edges)}", field="edge")
    return float(edges[key].energy)


@lru_cache(maxsize=1)
def _edge_table() -> tuple[tuple[str, str, float], ...]:
    import xraydb

    rows = []
    for z in range(3, 99):
        sym = xraydb.atomic_symbol(z)
        for name, e in xraydb.xray_edges(sym).items():
            if name in _ALL_EDGES and e.energy > 0:
                rows.append((sym, name, float(e.energy)))
    return tuple(rows)


def identify_edge(e0: float, element: str | None = None, edge: str | None = None,
                  tolerance: float = 100.0) -> tuple[str, str, float]:
    """The tabulated absorption edge of an observed edge energy.

    Without constraints this is ``xraydb.guess_edge`` (which prefers the K and L3 edges that are
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
        import xraydb

        el, ed = xraydb.guess_edge(float(e0))
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
