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
* :func:`stated_element` — the element a file states (symbol in any case, name or atomic number).
* :func:`resolve_absorber` — the one rule every reader follows for the absorber: the user's
  option, then what the file states (XDI ``Element.*``, Athena's ``bkg_z``/``fft_edge``), then
  the file name, then the data, with the source reported (``element_source``).
* :func:`find_e0` — the edge position e0 of measured data (larch's finder and two others); it is
  here, below ``io/`` and ``preprocess/``, because readers need it to identify an edge.
  Readers check their arrays first with :func:`xasml.spectrum.check_energy_mu` (finite,
  distinct, increasing energies), so that a bad file is named in the error.
* :func:`guess_edge` — xraydb's ``guess_edge`` rule on the same table.

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
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from xasml.errors import SpectrumError

__all__ = ["edge_energy", "guess_edge", "identify_edge", "element_edge_from_text", "stated_element", "resolve_absorber",
           "Absorber", "find_e0", "E0_METHODS", "ELEMENT_SOURCES", "has_edge", "stated_edge"]

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



# --------------------------------------------------------------------------------------------
# the absorber of a file: option, then what the file states, then its name, then the data
# --------------------------------------------------------------------------------------------

#: values of ``element_source``: where the absorbing element came from, in the order they are tried
ELEMENT_SOURCES = ("option", "header", "file name", "data")


def has_edge(element: str, edge: str) -> bool:
    """Whether xraydb tabulates this edge of this element (with a positive energy).

    Parameters
    ----------
    element : str
        Element symbol (``"Fe"``).
    edge : str
        Edge name (``"K"``, ``"L3"``).

    Returns
    -------
    bool
        True when :func:`edge_energy` gives a positive energy; False for an unknown element or
        edge, or one the table lacks (no exception).
    """
    try:
        return edge_energy(element, edge) > 0
    except SpectrumError:
        return False


def stated_element(value) -> str | None:
    """The element a file states: a symbol in any case (``"fe"``), an English name (``"iron"``) or an
    atomic number (``26``, ``"26"``, ``26.0``, as some Athena versions store ``bkg_z``).

    Parameters
    ----------
    value : str, int, float or None
        The stated value (also ``"15: P"``-like text holding exactly one capitalised symbol).

    Returns
    -------
    str or None
        The canonical symbol (``"Fe"``), or None when the value names no element (empty, ``undef``,
        unknown words, atomic numbers outside 1–98).
    """
    from xasml.spectrum import normalize_element

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        z = float(value)
    else:
        s = str(value).strip()
        if not s or s.lower() in ("undef", "none", "null"):
            return None
        try:
            return normalize_element(s)
        except SpectrumError:
            pass
        try:
            z = float(s)
        except ValueError:
            try:
                import xraydb  # element names ('iron') only: xraydb's import is slow (see the module docstring)

                z = float(xraydb.atomic_number(s.lower()))
            except (ValueError, KeyError, TypeError):
                # '15: P', 'P (15)', 'Fe K': one capitalised symbol among the words
                words = {w for w in re.split(r"[^A-Za-z0-9]+", s) if w}
                syms = {w for w in words if w[:1].isupper() and w in _SYMBOLS and len(w) <= 2}
                return syms.pop() if len(syms) == 1 else None
    if not (np.isfinite(z) and z == int(z) and 1 <= z <= len(_SYMBOLS)):
        return None
    return _SYMBOLS[int(z) - 1]


def stated_edge(value) -> str | None:
    """The edge a file states, upper case (``"k"`` → ``"K"``, ``"L3-edge"`` → ``"L3"``, ``"L"`` → ``"L3"``).

    Parameters
    ----------
    value : str or None
        The stated edge (header field, Athena ``fft_edge``); a trailing ``edge`` is ignored, a bare
        ``L`` or ``M`` means L3 or M5 (the edge measured when a file says only the shell).

    Returns
    -------
    str or None
        One of :data:`xasml.spectrum.KNOWN_EDGES`, or None when the value names no edge xasml knows
        (numbers, empty, unknown text).
    """
    from xasml.spectrum import KNOWN_EDGES

    if value is None or isinstance(value, bool) or isinstance(value, (int, float)):
        return None
    s = re.sub(r"[\s_-]*EDGE$", "", str(value).strip().upper())
    s = {"L": "L3", "M": "M5"}.get(s, s)
    return s if s in KNOWN_EDGES else None


@dataclass
class Absorber:
    """The absorbing element and edge of a spectrum file, and where they came from.

    Attributes
    ----------
    element : str
        Chemical symbol.
    edge : str
        Edge name (``"K"``, ``"L3"``, ...).
    element_source : {"option", "header", "file name", "data"}
        Where the element came from: the user's option, what the file states (XDI
        ``Element.symbol``, Athena's stored ``bkg_z``), the file name, or the measured edge.
    edge_source : {"option", "header", "file name", "data"}
        The same for the edge.
    warnings : list of str
        Doubts (an option that contradicts the file, a stated value that was unusable, an
        identification from the data), without the file name.
    """

    element: str
    edge: str
    element_source: str
    edge_source: str
    warnings: list[str] = field(default_factory=list)


def resolve_absorber(source: str | None, *, element: str | None = None, edge: str | None = None,
                     stated_element_value=None, stated_edge_value=None, stated_what: str = "the header",
                     placeholder_elements: tuple[str, ...] = (), filename: str | None = None,
                     energy=None, mu=None, e0: float | None = None, e0_what: str | None = None) -> Absorber:
    """The absorber of a spectrum file, by one rule for every reader.

    In this order: the user's option (``--element``/``--edge``); what the file states (XDI
    ``Element.symbol``/``Element.edge``, Athena's ``bkg_z``/``fft_edge``); the element and edge the
    file name states (:func:`element_edge_from_text`: ``Fe_K.dat``, ``sno2_l3.dat``); and only then
    the data: the tabulated edge (xraydb) nearest the edge energy (``e0`` when given and inside the
    scan, else :func:`find_e0`), restricted to the element/edge already known. An option that
    contradicts the file is used with a warning; a stated value that names no element or edge, or
    an element/edge pair xraydb does not tabulate, is ignored with a warning.

    Parameters
    ----------
    source : str or None
        The file, for error messages.
    element, edge : str, optional
        The user's options.
    stated_element_value, stated_edge_value : optional
        What the file states (any form :func:`stated_element` / :func:`stated_edge` accept).
    stated_what : str
        How the messages name the stated fields (``"Element.symbol/Element.edge"``).
    placeholder_elements : tuple of str
        Stated elements that mean "not set" (Athena stores ``H`` until it knows the absorber).
    filename : str, optional
        The file name (or path) to read an element and edge from.
    energy, mu : array_like, shape (n,), optional
        The spectrum (eV), needed only when the data must decide.
    e0 : float, optional
        A stated edge energy (eV; Athena's ``bkg_e0``, XDI ``Scan.edge_energy``) used for the
        identification when it lies within 100 eV of the scan.
    e0_what : str, optional
        How the messages name ``e0``.

    Returns
    -------
    Absorber

    Raises
    ------
    SpectrumError
        Naming ``source``: an option that is no element or edge, arrays unfit for an edge search
        (:func:`xasml.spectrum.check_energy_mu`), no tabulated edge near the data, or an element
        and edge that xraydb does not tabulate.
    """
    from xasml.spectrum import KNOWN_EDGES, check_energy_mu, normalize_element

    msgs: list[str] = []
    opt_el = normalize_element(element, source=source) if element not in (None, "") else None
    opt_ed = None
    if edge not in (None, ""):
        opt_ed = stated_edge(edge)
        if opt_ed is None:
            raise SpectrumError(f"unknown edge {edge!r}: expected one of {', '.join(KNOWN_EDGES[:9])}, ...",
                                source=source, field="edge")
    st_el = stated_element(stated_element_value)
    if st_el is None and stated_element_value not in (None, ""):
        msgs.append(f"{stated_what} element {str(stated_element_value)[:40]!r} names no element; ignored")
    placeholder = st_el is not None and st_el in placeholder_elements
    if placeholder:
        msgs.append(f"{stated_what} element {st_el!r} is the placeholder of an unset absorber; ignored")
        st_el = None
    st_ed = stated_edge(stated_edge_value)
    if st_ed is None and stated_edge_value not in (None, ""):
        msgs.append(f"{stated_what} edge {str(stated_edge_value)[:40]!r} names no absorption edge; ignored")
    if st_el is not None and st_ed is not None and not has_edge(st_el, st_ed):
        msgs.append(f"{stated_what} say {st_el} {st_ed}, an edge xraydb does not tabulate; the edge is ignored")
        st_ed = None
    for what, opt, st in (("element", opt_el, st_el), ("edge", opt_ed, st_ed)):
        if opt is not None and st is not None and opt != st:
            msgs.append(f"the {what} {opt} was given but {stated_what} say {st}; {opt} used")
    el, el_src = (opt_el, "option") if opt_el else (st_el, "header") if st_el else (None, None)
    ed, ed_src = (opt_ed, "option") if opt_ed else (st_ed, "header") if st_ed else (None, None)
    if (el is None or ed is None) and filename:
        fn_el, fn_ed = element_edge_from_text(filename)
        if fn_el is not None and (el is None or el == fn_el) and (ed is None or ed == fn_ed):
            if el is None:
                el, el_src = fn_el, "file name"
            if ed is None:
                ed, ed_src = fn_ed, "file name"
    if el is None or ed is None:
        if energy is None or mu is None:
            raise SpectrumError("the absorbing element/edge is not stated; give --element/--edge", source=source,
                                field="absorbing_element")
        e, m = check_energy_mu(energy, mu, source)
        how = None
        if e0 is not None and np.isfinite(e0) and e[0] - 100 <= e0 <= e[-1] + 100:
            how = f"{e0_what or 'stated e0'} = {e0:.1f} eV"
        elif e.size >= 5:
            e0 = find_e0(e, m)
            how = f"measured edge position e0 = {e0:.1f} eV"
        else:
            raise SpectrumError(f"the absorbing element/edge is not stated and {e.size} points are too few to find "
                                "the edge; give --element/--edge", source=source, field="absorbing_element")
        try:
            try:
                fe, fed, tab = identify_edge(e0, element=el, edge=ed)
            except ValueError:
                if not (placeholder and el is None and ed_src == "header"):
                    raise
                # the edge stored beside a placeholder element is no statement either (no such edge near the data)
                msgs.append(f"{stated_what} edge {ed} fits no element near the data; ignored")
                ed, ed_src = None, None
                fe, fed, tab = identify_edge(e0)
        except ValueError as exc:
            raise SpectrumError(f"absorbing element/edge not stated and not identifiable from the data: {exc}; give "
                                "--element/--edge", source=source, field="absorbing_element") from None
        msgs.append(f"absorber identified from the data as {fe} {fed} (tabulated {tab:.1f} eV, {how}); give "
                    "--element/--edge to override")
        if el is None:
            el, el_src = fe, "data"
        if ed is None:
            ed, ed_src = fed, "data"
    if not has_edge(el, ed):
        raise SpectrumError(f"xraydb has no {ed} edge for {el}", source=source, field="edge")
    return Absorber(element=el, edge=ed, element_source=el_src, edge_source=ed_src, warnings=msgs)

# --------------------------------------------------------------------------------------------
# e0: the edge position of measured data (larch's finder and two others)
# --------------------------------------------------------------------------------------------

#: e0 finders: larch's (default) and the one the shipped topology/local models were built with.
E0_METHODS = ("larch", "max-derivative", "first-inflection")


def _as_xy(energy, mu, source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(energy, dtype=float).ravel()
    m = np.asarray(mu, dtype=float).ravel()
    if e.size != m.size:
        raise SpectrumError(f"length mismatch: {e.size} energies but {m.size} mu values", source=source,
                            field="mu")
    if e.size < 5:
        raise SpectrumError(f"need at least 5 points, got {e.size}", source=source, field="energy")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(m))):
        raise SpectrumError("energy and mu must be finite", source=source)
    if np.any(np.diff(e) <= 0):
        raise SpectrumError("energies must be strictly increasing", source=source, field="energy")
    return e, m


# --------------------------------------------------------------------------------------------
# e0: larch's finder
# --------------------------------------------------------------------------------------------

def _energy_step(e: np.ndarray) -> float:
    """Typical energy step (larch ``find_energy_step``): mean of the 10 smallest steps after
    dropping the 1 % smallest; NaN for fewer than 100 points (as larch, whose caller then uses 1 eV)."""
    nskip = int(0.01 * e.size)
    if nskip == 0:
        return float("nan")
    steps = np.sort(np.diff(e[:-1][nskip:-nskip]))
    sel = steps[nskip:nskip + 10]
    return float(sel.mean()) if sel.size else float("nan")


def _lorentzian_smoother(x: np.ndarray, step: float, npad: int = 5):
    """Uniform grid, normalised Lorentzian window (σ = one grid step) and mirror-padding layout of
    larch's ``smooth(x, y, sigma=step, xstep=step)``; returns (x0, window)."""
    xmin = step * int((x[0] - npad * step) / step)
    xmax = step * int((x[-1] + npad * step) / step)
    npts = min(1 + int(abs(xmax - xmin + step * 0.1) / step), 50 * x.size)
    x0 = np.linspace(xmin, xmax, npts)
    j = np.arange(2 * npts, dtype=float) - npts
    win = 1.0 / (1.0 + j * j)
    return x0, win / win.sum()


def _smooth(x: np.ndarray, y: np.ndarray, step: float) -> np.ndarray:
    """Lorentzian smoothing of y(x) (width = ``step`` eV) on a uniform grid, back on x (larch's method)."""
    x0, win = _lorentzian_smoother(x, step)
    y0 = np.interp(x0, x, y)
    n = y0.size
    padded = np.concatenate((y0[n:0:-1], y0, y0[::-1]))
    full = padded.size + win.size - 1
    nfft = 1 << (full - 1).bit_length()
    conv = np.fft.irfft(np.fft.rfft(padded, nfft) * np.fft.rfft(win, nfft), nfft)
    y2 = conv[win.size - 1: win.size - 1 + n]  # the 'valid' part
    return np.interp(x, x0, y2)


def _pick_edge(dmu: np.ndarray) -> int:
    """Index of the largest (normalised) derivative whose two neighbours are also large (larch ``_finde0``)."""
    n = dmu.size
    nmin = max(3, int(n * 0.02))
    dmu = np.where(np.isfinite(dmu), dmu, -1.0)
    inner = dmu[nmin:-nmin] if n > 2 * nmin else dmu
    lo = float(inner.min())
    ptp = max(1e-10, float(inner.max()) - lo)
    d = (dmu - lo) / ptp
    dhigh = 0.60 if n > 20 else 0.30
    high = d > dhigh
    if high.sum() < 3:
        for _ in range(2):
            if high.sum() > 3:
                break
            dhigh *= 0.5
            high = d > dhigh
    if high.sum() < 3:
        high = np.ones(n, dtype=bool)
    ok = np.zeros(n, dtype=bool)
    ok[1:-1] = high[1:-1] & high[:-2] & high[2:]
    ok[:nmin] = False
    ok[n - nmin + 1:] = False
    ok &= d > 0
    if not ok.any():
        return 0
    return int(np.argmax(np.where(ok, d, -np.inf)))


def _finde0(e: np.ndarray, m: np.ndarray, step: float | None) -> int:
    # larch drops the last point before differentiating (its ordering test); so do we
    e, m = e[:-1], m[:-1]
    dmu = np.gradient(m) / np.gradient(e)
    if step is not None:
        dmu = _smooth(e, dmu, step)
    return _pick_edge(dmu)


def _find_e0_larch(e: np.ndarray, m: np.ndarray) -> float:
    n = e.size
    ie0 = _finde0(e, m, None)
    e1 = float(e[ie0])
    istart, istop = max(3, ie0 - 75), min(ie0 + 75, n - 3)
    if ie0 < 0.05 * n:  # an e0 in the first 5 % of the points is a glitch: search the rest
        e1 = float(e.mean())
        istart, istop = max(3, ie0 - 20), n - 3
    step1 = _energy_step(e)
    step1 = 1.0 if not np.isfinite(step1) else step1
    step = 0.5 * (max(0.01, min(1.0, step1)) + max(0.01, min(1.0, e1 / 25000.0)))
    if istop - istart < 8:
        return e1
    ix = _finde0(e[istart:istop], m[istart:istop], step)
    return float(e[istart + 2]) if ix < 1 else float(e[istart + ix])


def _find_e0_max_derivative(e: np.ndarray, m: np.ndarray, smooth: float, margin: int) -> float:
    from scipy.ndimage import gaussian_filter1d

    steps = np.diff(e)
    de = max(float(np.percentile(steps, 10)), 0.05)
    n = int(min((e[-1] - e[0]) / de, 50000)) + 1
    grid = np.linspace(e[0], e[-1], n)
    de = grid[1] - grid[0]
    d = np.gradient(np.interp(grid, e, m), de)
    if smooth > 0:
        d = gaussian_filter1d(d, smooth / de, mode="nearest")
    lo = e[min(margin, e.size - 2)]
    hi = e[max(e.size - 1 - margin, 1)]
    ok = (grid >= lo) & (grid <= hi)
    if not ok.any():
        ok[:] = True
    i = int(np.argmax(np.where(ok, d, -np.inf)))
    return float(grid[i])


def _find_e0_first_inflection(e: np.ndarray, m: np.ndarray, fraction: float = 0.3) -> float:
    from scipy.ndimage import gaussian_filter1d

    e_l = _find_e0_larch(e, m)
    lo = max(e_l - 25.0, float(e[0]))
    grid = np.arange(lo, min(e_l + 3.0, float(e[-1])), 0.05)
    if grid.size < 10:
        return e_l
    sigma = max(0.5, e_l / 15000.0)  # core-hole widths grow with the edge energy (Cd K: 7 eV)
    d = gaussian_filter1d(np.gradient(np.interp(grid, e, m), grid), sigma / 0.05, mode="nearest")
    peak = (d[1:-1] > d[:-2]) & (d[1:-1] >= d[2:]) & (d[1:-1] >= fraction * d.max())
    i = np.flatnonzero(peak)
    return float(grid[i[0] + 1]) if i.size else e_l


def find_e0(energy, mu, method: str = "larch", smooth: float = 1.0, margin: int = 3) -> float:
    """Edge energy e0 (eV) of a measured spectrum.

    ``method="larch"`` (default) follows xraylarch's ``find_e0`` (larch documentation,
    "XAFS: Pre-edge Subtraction and Normalization"): the derivative dμ/dE is scaled to 0..1
    (ignoring the 2 % of points at each end); candidates are points above 0.6 whose two
    neighbours are above it too (so that a single-point glitch cannot win); the largest gives a
    first e0. It is refined within ±75 points on the derivative convolved with a Lorentzian of
    width equal to the mean of the typical energy step and e0/25000 (each clamped to
    0.01–1 eV), so that the first inflection of a foil is kept rather than flattened. A first
    e0 in the lowest 5 % of the points is taken as a glitch and the search repeated above it.
    The implementation is xasml's own (FFT convolution, vectorised candidate test).

    ``method="first-inflection"`` is the edge energy of a metal foil as the tables define it
    (Bearden & Burr 1967; xraydb): the first inflection point of the rising edge, i.e. the
    lowest-energy maximum of dμ/dE (on a 0.05 eV grid, Gaussian σ = max(0.5 eV, e0/15000), which
    follows the growth of core-hole widths with energy) within 25 eV below
    larch's e0 that reaches at least 30 % of the largest. It equals larch's e0 on thin foils,
    but not on thick or smeared ones whose main rise outgrows the first shoulder (the Ni foil
    of the XAS Data Library Ni oxide scans: larch 8345.5 eV, first inflection 8333.7 eV, the
    tabulated 8333.0 eV); it is the finder for calibration references and simulated foils.

    ``method="max-derivative"`` is xasml's earlier finder: the maximum of the derivative on a
    uniform grid smoothed with a Gaussian of σ = ``smooth`` eV, excluding ``margin`` end points.
    It is kept as an option (the shipped topology and local-structure models were first
    validated with it, through :func:`preprocess_measured`); it can sit up to ~8 eV above
    larch's e0 on foils.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Energies in eV, strictly increasing.
    mu : array_like, shape (n,)
        Absorption.
    method : {"larch", "max-derivative", "first-inflection"}
        The finder (see above).
    smooth : float
        ``"max-derivative"`` only: Gaussian smoothing width (σ) in eV; 0 disables smoothing.
    margin : int
        ``"max-derivative"`` only: data points at each end excluded from the search.

    Returns
    -------
    float
        e0 in eV (a measured energy for ``"larch"``).

    Raises
    ------
    SpectrumError
        If the arrays are invalid (lengths, non-finite, not increasing, fewer than 5 points).
    ValueError
        For an unknown ``method``.
    """
    e, m = _as_xy(energy, mu)
    if method == "larch":
        if e.size < 12:
            return float(e[int(np.argmax(np.gradient(m, e)[1:-1])) + 1])
        return _find_e0_larch(e, m)
    if method == "max-derivative":
        return _find_e0_max_derivative(e, m, smooth, margin)
    if method == "first-inflection":
        return _find_e0_first_inflection(e, m) if e.size >= 12 else _find_e0_larch(e, m)
    raise ValueError(f"method must be one of {E0_METHODS}, got {method!r}")
