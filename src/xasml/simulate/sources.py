"""Where the structures to simulate come from: files, the AMCSD mineral database, Materials Project.

Each source yields :class:`StructureRecord` objects: a key (the folder name under ``FEFF10/``),
an ordered pymatgen structure, and metadata recorded in ``material.json``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from xasml.errors import DataError, MissingExtraError

#: file names and suffixes taken as structure files when a folder is given
STRUCTURE_NAMES = ("structure.cif", "POSCAR", "CONTCAR")
STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".mcif")

AMCSD_CITATION = ("AMCSD: R. T. Downs & M. Hall-Wallace, American Mineralogist 88, 247 (2003), "
                  "as bundled in PyPI larixite")


@dataclass
class StructureRecord:
    """A structure to simulate.

    Attributes
    ----------
    key : str
        Name of its folder in the output layout (``amcsd-10022``, ``mp-1692``, a file stem).
    structure : pymatgen.core.Structure
        The structure the site indices refer to (written as ``structure.cif``).
    meta : dict
        ``formula``, ``reduced_formula``, ``sg``, ``n_elements``, ``source`` and source fields
        such as ``amcsd_id`` or ``mp_id``.
    """

    key: str
    structure: Any
    meta: dict = field(default_factory=dict)


def describe(structure, **extra: Any) -> dict[str, Any]:
    """``material.json`` fields of a structure: formula, reduced formula, space group, elements.

    Raises
    ------
    DataError
        If the structure is degenerate (non-finite coordinates, zero or negative cell volume).
    """
    import numpy as np
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    lat = structure.lattice.matrix
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(structure.frac_coords)) and structure.volume > 0):
        raise DataError("degenerate structure: non-finite lattice or coordinates, or non-positive cell volume")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sg = int(SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number())
    comp = structure.composition
    return {"formula": comp.formula, "reduced_formula": comp.reduced_formula, "sg": sg,
            "n_elements": len(comp.elements), "n_atoms": len(structure), **extra}


def _file_key(path: Path) -> str:
    return path.parent.name if path.name in STRUCTURE_NAMES else path.stem


def _structure_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    found = sorted(p for p in path.rglob("*") if p.is_file() and "FEFF-XANES" not in p.parts
                   and (p.name in STRUCTURE_NAMES or p.suffix.lower() in STRUCTURE_SUFFIXES))
    if not found:
        raise DataError(f"{path}: no structure files (expected {', '.join(STRUCTURE_NAMES)} or "
                        f"*{', *'.join(STRUCTURE_SUFFIXES)})")
    return found


def from_files(paths: Sequence[str | Path]) -> Iterator[StructureRecord]:
    """Structures from files or folders (searched recursively), read with pymatgen.

    A file named ``structure.cif``/``POSCAR``/``CONTCAR`` gets its folder's name as key; any
    other file its stem. The structure is used as it is (site indices refer to it).

    Raises
    ------
    DataError
        If a path does not exist, a file cannot be read as a structure, or two files give the same key.
    """
    from xasml.io.structures import read_structure

    seen: dict[str, Path] = {}
    for p in paths:
        for f in _structure_files(Path(p)):
            key = _file_key(f)
            if key in seen:
                raise DataError(f"{f}: key {key!r} already used by {seen[key]}; rename one of the files")
            seen[key] = f
            s = read_structure(f)
            try:
                meta = describe(s, source=str(f))
            except DataError as exc:
                raise DataError(f"{f}: {exc}") from None
            yield StructureRecord(key, s, meta)


def _amcsd_db():
    """The AMCSD database bundled with larixite (no download is attempted)."""
    try:
        # larixite sets a process-wide "ignore every UserWarning" filter when imported: keep ours
        with warnings.catch_warnings():
            from larixite.amcsd import AMCSD
    except ImportError:
        raise MissingExtraError("larixite", "simulate") from None
    return AMCSD()


def amcsd_structure(cif_text: str, amcsd_id: int):
    """Parse an AMCSD CIF and return its primitive standard structure (pymatgen).

    Raises
    ------
    DataError
        If the CIF cannot be parsed, or the structure is disordered.
    """
    from pymatgen.io.cif import CifParser
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            s = CifParser(io.StringIO(cif_text)).parse_structures(primitive=False)[0]
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types
            raise DataError(f"amcsd-{amcsd_id}: cannot parse CIF ({type(exc).__name__}: {exc})") from None
        if not s.is_ordered:
            raise DataError(f"amcsd-{amcsd_id}: disordered structure")
        return SpacegroupAnalyzer(s, symprec=0.01).get_primitive_standard_structure()


def mineral_name(cif) -> str:
    """The mineral name of a larixite AMCSD record ("" when the database has none)."""
    m = getattr(cif, "mineral", None)
    if m is not None and not isinstance(m, str):  # a database row (id, name)
        m = m[1] if len(m) > 1 else None
    name = m
    name = str(name or "").strip()
    return "" if name in ("<missing>", "None") else name


def from_amcsd(contains: Sequence[str] = (), ids: Sequence[int] = (), max_elements: int | None = None,
               max_atoms: int | None = None, limit: int | None = None) -> Iterator[StructureRecord]:
    """Ordered structures of the AMCSD mineral database (bundled in larixite).

    Parameters
    ----------
    contains : sequence of str
        Elements every structure must contain (``["Mn", "O"]``).
    ids : sequence of int
        Explicit AMCSD ids (then ``contains`` only filters them).
    max_elements : int, optional
        At most this many elements (H counted).
    max_atoms : int, optional
        At most this many atoms in the primitive standard cell.
    limit : int, optional
        Stop after this many structures.

    Yields
    ------
    StructureRecord
        Key ``amcsd-<id>``; the primitive standard structure (pymatgen); ``meta`` with
        ``amcsd_id``, ``mineral`` and the AMCSD citation. Structures with partial occupancies,
        or that pymatgen cannot parse, are skipped.
    """
    db = _amcsd_db()
    if ids:
        cifs = []
        for i in ids:
            c = db.get_cif(int(i))
            if c is None:
                warnings.warn(f"amcsd-{int(i)}: no such AMCSD id in the database bundled with larixite; skipped",
                              stacklevel=2)
            else:
                cifs.append(c)
    else:
        cifs = db.find_cifs(contains_elements=list(contains) or None, full_occupancy=True, max_matches=10**6)
    n = 0
    if not ids:  # a query: in id order; explicit ids: in the order given
        cifs = sorted(cifs, key=lambda c: int(c.ams_id))
    for cif in cifs:
        elems = set()
        try:
            s = amcsd_structure(cif.ciftext, int(cif.ams_id))
            elems = {e.symbol for e in s.composition.elements}
        except DataError as exc:
            if ids:  # asked for by id: say why it is not simulated
                warnings.warn(f"{exc}; skipped", stacklevel=2)
            continue
        if any(e not in elems for e in contains):
            continue
        if max_elements is not None and len(elems) > max_elements:
            continue
        if max_atoms is not None and len(s) > max_atoms:
            continue
        try:
            meta = describe(s, amcsd_id=int(cif.ams_id), mineral=mineral_name(cif),
                            source=AMCSD_CITATION)
        except DataError:
            continue
        yield StructureRecord(f"amcsd-{int(cif.ams_id)}", s, meta)
        n += 1
        if limit is not None and n >= limit:
            return


def _mprester_class():
    """``mp_api.client.MPRester`` (imported lazily; tests replace this function)."""
    from xasml.io.fetch_cli import _mprester_class as f

    return f()


def from_materials_project(material_ids: Sequence[str], api_key: str | None = None) -> Iterator[StructureRecord]:
    """Structures of Materials Project entries, through mp-api (needs an API key and network).

    Raises
    ------
    MissingExtraError
        When mp-api is not installed.
    DataError
        When an id is malformed or the download fails (the message names the id).
    """
    import os

    key = api_key or os.environ.get("MP_API_KEY")
    cls = _mprester_class()
    with cls(key) if key else cls() as mpr:
        for mid in material_ids:
            if not str(mid).startswith(("mp-", "mvc-")):
                raise DataError(f"{mid!r}: expected a Materials Project id such as mp-1692")
            try:
                s = mpr.get_structure_by_material_id(mid)
            except Exception as exc:  # noqa: BLE001 - network and API errors vary
                raise DataError(f"{mid}: cannot download the structure ({type(exc).__name__}: {exc})") from None
            yield StructureRecord(str(mid), s, describe(s, mp_id=str(mid), source="Materials Project (CC-BY 4.0)"))
