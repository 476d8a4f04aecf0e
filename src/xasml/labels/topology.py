"""Topological-classification catalogues behind one interface, and conflict-aware labelling.

Three kinds of catalogue are read into the same table (:class:`TopologyCatalogue`):

* **Materiae** (Zhang et al., Nature 566, 475 (2019)), line-aligned text files keyed by
  Materials Project id (``mp_id_str.txt``, ``formula.txt``, ``data_spacegroup.txt``,
  ``classes.txt``), see :meth:`TopologyCatalogue.from_materiae`;
* the **Topological Materials Arsenal** (Tang et al., Nature 566, 486 (2019)), one file per
  class with ``space group, formula`` per line, see :meth:`TopologyCatalogue.from_arsenal`;
* any **CSV** with a class column and an ``mp_id`` and/or ``formula`` + ``sg`` columns, see
  :meth:`TopologyCatalogue.from_csv`.

Every raw class name is mapped to one of four subclasses, :data:`SUBCLASSES` (trivial, TI =
topological insulator, TCI = topological crystalline insulator, SM = (topological) semimetal);
the binary label of the topology indicator (Andrejevic et al., Adv. Mater. 34, 2204113 (2022))
is ``subclass != "trivial"``. A compound that two entries, of one catalogue or of two, label
differently is dropped, as in that paper (:class:`TopologyLabeler`).
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from xasml.errors import DataError

#: the four subclasses, in display order
SUBCLASSES = ("trivial", "TI", "TCI", "SM")
#: subclasses counted as topological in the binary label
TOPOLOGICAL_SUBCLASSES = frozenset({"TI", "TCI", "SM"})

_ALIASES = {
    # Materiae (symmetry-indicator classes, with or without SOC)
    "triv_ins": "trivial", "trivial": "trivial", "triv": "trivial", "ti": "TI", "tci": "TCI",
    "hsp_sm": "SM", "hsl_sm": "SM", "sm": "SM", "tsm": "SM", "semimetal": "SM", "es": "SM",
    "esfd": "SM", "nlc": "TI", "srsm": "SM",
    # Arsenal file stems
    "case1": "trivial", "case3": "SM",
    # generic words
    "insulator": "trivial", "topological_insulator": "TI",
    "topological_crystalline_insulator": "TCI", "topological_semimetal": "SM", "0": "trivial",
}
_UNKNOWN = {"unknown", "", "nan", "none", "unk"}


def normalize_subclass(raw: object, source: str | None = None) -> str | None:
    """Map a catalogue's class name to ``"trivial"``, ``"TI"``, ``"TCI"`` or ``"SM"``.

    Parameters
    ----------
    raw : str
        Class as written in a catalogue, e.g. ``"Triv_Ins"``, ``"HSP_SM"`` (Materiae),
        ``"case1"`` (Arsenal), ``"TI"``, ``"semimetal"``.
    source : str, optional
        File the value came from (for the error message).

    Returns
    -------
    str or None
        The subclass, or None for ``Unknown`` / empty values.

    Raises
    ------
    DataError
        If the name is not recognised.
    """
    s = str(raw).strip()
    key = s.lower().replace("-", "_").replace(" ", "_")
    if key in _UNKNOWN:
        return None
    if key in _ALIASES:
        return _ALIASES[key]
    raise DataError(f"{source or 'catalogue'}: unknown topological class {raw!r}; expected one of "
                    f"trivial/Triv_Ins, TI, TCI, SM/HSP_SM/HSL_SM/semimetal, Unknown")


def is_topological(subclass: str) -> bool:
    """True when ``subclass`` (see :data:`SUBCLASSES`) is a non-trivial class."""
    return subclass in TOPOLOGICAL_SUBCLASSES


@functools.cache
def formula_key(formula: str) -> str:
    """Canonical reduced formula used to match compounds across catalogues.

    ``"Na5P3(H3O4)4"``, ``"Al1Cl7Se1"`` and ``"SeAlCl7"`` become alphabetical, reduced
    formulas (``"AlCl7Se"``), via :class:`pymatgen.core.Composition`.

    Raises
    ------
    DataError
        If pymatgen cannot parse the formula.
    """
    from pymatgen.core import Composition

    try:
        comp = Composition(str(formula).strip())
    except Exception as exc:  # noqa: BLE001 - pymatgen raises several types; re-raised as DataError
        raise DataError(f"cannot parse formula {formula!r}: {exc}") from None
    if not len(comp):
        raise DataError(f"empty formula {formula!r}")
    red = comp.reduced_composition
    return "".join(f"{el.symbol}{'' if abs(n - 1) < 1e-8 else f'{n:g}'}"
                   for el, n in sorted(red.items(), key=lambda kv: kv[0].symbol))


def _split_ids(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [p.strip() for p in str(value).replace(",", ";").split(";") if p.strip()]


@dataclass(frozen=True)
class CatalogueEntry:
    """One labelled entry of a catalogue.

    Attributes
    ----------
    catalogue : str
        Catalogue name (``"materiae"``, ``"arsenal"``, ...).
    entry : str
        Where the entry is: ``file:line``.
    subclass : str
        One of :data:`SUBCLASSES`.
    mp_id : str or None
        Materials Project id, when the catalogue has one.
    formula : str or None
        Canonical reduced formula (:func:`formula_key`).
    sg : int or None
        Space-group number.
    """

    catalogue: str
    entry: str
    subclass: str
    mp_id: str | None = None
    formula: str | None = None
    sg: int | None = None

    @property
    def topological(self) -> bool:
        return is_topological(self.subclass)


class TopologyCatalogue:
    """A topology catalogue: labelled entries indexed by mp-id and by (formula, space group).

    Parameters
    ----------
    name : str
        Catalogue name, reported with each label.
    entries : sequence of CatalogueEntry
        The entries (``Unknown`` classes already removed).
    match : {"auto", "mp_id", "formula_sg"}
        How :meth:`lookup` matches: by mp-id (``"mp_id"``), by reduced formula + space group
        (``"formula_sg"``), or by mp-id when the query has mp-ids and the catalogue has them, else
        by formula + space group (``"auto"``).
    """

    def __init__(self, name: str, entries: Sequence[CatalogueEntry], match: str = "auto"):
        if match not in ("auto", "mp_id", "formula_sg"):
            raise ValueError(f"match must be 'auto', 'mp_id' or 'formula_sg', got {match!r}")
        self.name = name
        self.entries = list(entries)
        self.match = match
        self._by_mp: dict[str, list[CatalogueEntry]] = {}
        self._by_fsg: dict[tuple[str, int], list[CatalogueEntry]] = {}
        for e in self.entries:
            if e.mp_id:
                self._by_mp.setdefault(e.mp_id, []).append(e)
            if e.formula is not None and e.sg is not None:
                self._by_fsg.setdefault((e.formula, int(e.sg)), []).append(e)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        counts = pd.Series([e.subclass for e in self.entries]).value_counts().to_dict() if self.entries else {}
        return f"TopologyCatalogue({self.name!r}, {len(self)} entries, {counts})"

    @property
    def has_mp_ids(self) -> bool:
        return bool(self._by_mp)

    def to_frame(self) -> pd.DataFrame:
        """The entries as a table (columns catalogue, entry, subclass, topological, mp_id, formula, sg)."""
        return pd.DataFrame([{**e.__dict__, "topological": e.topological} for e in self.entries])

    def lookup(self, mp_ids: Iterable[str] = (), formula: str | None = None,
               sg: int | None = None) -> list[CatalogueEntry]:
        """All entries matching a compound.

        Parameters
        ----------
        mp_ids : iterable of str
            Materials Project ids of the compound (any number).
        formula : str, optional
            Formula in any form pymatgen parses.
        sg : int, optional
            Space-group number (1-230).

        Returns
        -------
        list of CatalogueEntry
            Possibly empty; several entries may disagree (see :class:`TopologyLabeler`).
        """
        mp_ids = [m for m in mp_ids if m]
        use_mp = self.match == "mp_id" or (self.match == "auto" and mp_ids and self.has_mp_ids)
        if use_mp:
            out: list[CatalogueEntry] = []
            for m in mp_ids:
                out.extend(self._by_mp.get(m, []))
            return out
        if formula is None or sg is None or (isinstance(sg, float) and math.isnan(sg)):
            return []
        return list(self._by_fsg.get((formula_key(formula), int(sg)), []))

    # -- loaders --------------------------------------------------------------------------------
    @classmethod
    def from_materiae(cls, folder: str | Path, soc: bool = True, match: str = "auto") -> TopologyCatalogue:
        """Read the Materiae catalogue (Zhang et al., Nature 566, 475 (2019)).

        Parameters
        ----------
        folder : str or Path
            Folder with the line-aligned files ``mp_id_str.txt``, ``formula.txt``,
            ``data_spacegroup.txt`` and ``classes.txt`` (each with one ``#`` header line;
            ``classes.txt`` has two columns, class with and without spin-orbit coupling).
        soc : bool
            Use the classification with spin-orbit coupling (first column), else without.
        match : str
            See :class:`TopologyCatalogue`.

        Raises
        ------
        DataError
            If a file is missing, the files differ in length, or a line is malformed.
        """
        folder = Path(folder)
        cols = {}
        for name in ("mp_id_str", "formula", "data_spacegroup", "classes"):
            p = folder / f"{name}.txt"
            if not p.exists():
                raise DataError(f"{p}: Materiae file not found (expected mp_id_str.txt, formula.txt, "
                                f"data_spacegroup.txt, classes.txt in {folder})")
            lines = p.read_text().splitlines()
            cols[name] = [ln for ln in lines if not ln.startswith("#")]
        n = {k: len(v) for k, v in cols.items()}
        if len(set(n.values())) != 1:
            raise DataError(f"{folder}: Materiae files are not line-aligned: {n}")
        entries = []
        cls_path = str(folder / "classes.txt")
        for i, (mp, f, sg, c) in enumerate(zip(cols["mp_id_str"], cols["formula"], cols["data_spacegroup"],
                                               cols["classes"])):
            parts = c.split()
            if len(parts) != 2:
                raise DataError(f"{cls_path}: line {i + 2}: expected 2 columns (class_soc class_nsoc), "
                                f"found {len(parts)}")
            sub = normalize_subclass(parts[0] if soc else parts[1], source=f"{cls_path}:{i + 2}")
            if sub is None:
                continue
            try:
                sgn = int(float(sg))
            except ValueError:
                raise DataError(f"{folder / 'data_spacegroup.txt'}: line {i + 2}: space group {sg!r} is "
                                f"not a number") from None
            try:
                fk = formula_key(f)
            except DataError:
                fk = None
            entries.append(CatalogueEntry("materiae", f"classes.txt:{i + 2}", sub, mp.strip() or None, fk, sgn))
        return cls("materiae", entries, match=match)

    @classmethod
    def from_arsenal(cls, folder: str | Path, match: str = "formula_sg") -> TopologyCatalogue:
        """Read the Topological Materials Arsenal (Tang et al., Nature 566, 486 (2019)).

        Parameters
        ----------
        folder : str or Path
            Folder with ``case1_ccmp.txt`` (trivial), ``ti_ccmp.txt``, ``tci_ccmp.txt`` and
            ``case3_ccmp.txt`` (semimetals); each line is ``space group number, formula``.
        match : str
            See :class:`TopologyCatalogue`; the Arsenal has no mp-ids, so formula + space group.

        Raises
        ------
        DataError
            If no file is present or a line is malformed (file and line named).
        """
        folder = Path(folder)
        files = {"case1_ccmp.txt": "trivial", "ti_ccmp.txt": "TI", "tci_ccmp.txt": "TCI", "case3_ccmp.txt": "SM"}
        present = [f for f in files if (folder / f).exists()]
        if not present:
            raise DataError(f"{folder}: no Arsenal files (expected {', '.join(files)})")
        entries = []
        for fname in present:
            for lineno, line in enumerate((folder / fname).read_text().splitlines(), start=1):
                if not line.strip() or line.startswith("#"):
                    continue
                parts = [p.strip() for p in line.split(",")]
                if len(parts) != 2:
                    raise DataError(f"{folder / fname}: line {lineno}: expected 'space group, formula', "
                                    f"got {line!r}")
                try:
                    sg = int(parts[0])
                except ValueError:
                    raise DataError(f"{folder / fname}: line {lineno}: space group {parts[0]!r} is not an "
                                    f"integer") from None
                try:
                    fk = formula_key(parts[1])
                except DataError as exc:
                    raise DataError(f"{folder / fname}: line {lineno}: {exc}") from None
                entries.append(CatalogueEntry("arsenal", f"{fname}:{lineno}", files[fname], None, fk, sg))
        return cls("arsenal", entries, match=match)

    @classmethod
    def from_csv(cls, path: str | Path, name: str | None = None, class_column: str = "class",
                 mp_id_column: str = "mp_id", formula_column: str = "formula", sg_column: str = "sg",
                 match: str = "auto") -> TopologyCatalogue:
        """Read a generic CSV catalogue.

        Parameters
        ----------
        path : str or Path
            CSV with a header line. Needed: ``class_column`` (any name
            :func:`normalize_subclass` knows) and either ``mp_id_column`` (one id, or several
            separated by ``;``) or both ``formula_column`` and ``sg_column``.
        name : str, optional
            Catalogue name (default: the file stem).
        class_column, mp_id_column, formula_column, sg_column : str
            Column names.
        match : str
            See :class:`TopologyCatalogue`.

        Raises
        ------
        DataError
            If the file or a required column is missing, or a value is invalid (line named).
        """
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: catalogue file not found")
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            if class_column not in header:
                raise DataError(f"{path}: missing column {class_column!r} (columns: {', '.join(header)})")
            has_mp = mp_id_column in header
            has_fsg = formula_column in header and sg_column in header
            if not (has_mp or has_fsg):
                raise DataError(f"{path}: needs column {mp_id_column!r} or columns {formula_column!r} and "
                                f"{sg_column!r}")
            entries = []
            for lineno, row in enumerate(reader, start=2):
                sub = normalize_subclass(row[class_column], source=f"{path}:{lineno}")
                if sub is None:
                    continue
                fk, sg = None, None
                if has_fsg and row[formula_column].strip():
                    try:
                        fk = formula_key(row[formula_column])
                        sg = int(float(row[sg_column]))
                    except (DataError, ValueError) as exc:
                        raise DataError(f"{path}: line {lineno}: bad formula/space group: {exc}") from None
                mps = _split_ids(row[mp_id_column]) if has_mp else []
                for mp in mps or [None]:
                    entries.append(CatalogueEntry(name or path.stem, f"{path.name}:{lineno}", sub, mp, fk, sg))
        return cls(name or path.stem, entries, match=match)


@dataclass
class TopologyLabel:
    """The label of one compound after consulting every catalogue.

    Attributes
    ----------
    status : {"labelled", "conflict", "unlabelled"}
        ``"conflict"`` when entries disagree (the compound is dropped).
    subclass : str or None
        One of :data:`SUBCLASSES` when labelled.
    topological : bool or None
        Binary label when labelled.
    by_catalogue : dict[str, list[str]]
        Subclasses found per catalogue.
    entries : list of CatalogueEntry
        Every matching entry.
    """

    status: str
    subclass: str | None = None
    topological: bool | None = None
    by_catalogue: dict[str, list[str]] = field(default_factory=dict)
    entries: list[CatalogueEntry] = field(default_factory=list)


class TopologyLabeler:
    """Label compounds from one or more catalogues, dropping conflicts.

    Parameters
    ----------
    catalogues : sequence of TopologyCatalogue
        Consulted together.
    conflict_level : {"subclass", "binary"}
        Entries conflict when their subclasses differ (default, as the shared FEFF10 set was
        built) or only when their binary labels differ. When subclasses differ but the binary
        label agrees under ``"binary"``, the subclass is taken by majority, ties ordered
        TI > TCI > SM.
    ambiguous_catalogue : {"conflict", "abstain"}
        What to do when the entries of *one* catalogue disagree among themselves (e.g. two
        Arsenal polymorphs with the same formula and space group, one trivial and one
        semimetal): treat it as a conflict and drop the compound (default, strict), or let that
        catalogue abstain and decide with the others (how ``feff10-topology-v0/materials.csv``
        was labelled).

    Examples
    --------
    >>> lab = TopologyLabeler.from_folder("../shared/data/topology-labels")  # doctest: +SKIP
    >>> lab.label(mp_ids=["mp-149"], formula="Si", sg=227).subclass  # doctest: +SKIP
    'trivial'
    """

    def __init__(self, catalogues: Sequence[TopologyCatalogue], conflict_level: str = "subclass",
                 ambiguous_catalogue: str = "conflict"):
        if conflict_level not in ("subclass", "binary"):
            raise ValueError(f"conflict_level must be 'subclass' or 'binary', got {conflict_level!r}")
        if ambiguous_catalogue not in ("conflict", "abstain"):
            raise ValueError(f"ambiguous_catalogue must be 'conflict' or 'abstain', got {ambiguous_catalogue!r}")
        self.catalogues = list(catalogues)
        self.conflict_level = conflict_level
        self.ambiguous_catalogue = ambiguous_catalogue

    @classmethod
    def from_folder(cls, folder: str | Path, conflict_level: str = "subclass", soc: bool = True,
                    ambiguous_catalogue: str = "conflict") -> TopologyLabeler:
        """Load ``materiae/`` and ``arsenal/`` (whichever exist) under ``folder``.

        Raises
        ------
        DataError
            If neither sub-folder exists.
        """
        folder = Path(folder)
        cats = []
        if (folder / "materiae").is_dir():
            cats.append(TopologyCatalogue.from_materiae(folder / "materiae", soc=soc))
        if (folder / "arsenal").is_dir():
            cats.append(TopologyCatalogue.from_arsenal(folder / "arsenal"))
        if not cats:
            raise DataError(f"{folder}: no catalogue found (expected sub-folders materiae/ and/or arsenal/)")
        return cls(cats, conflict_level=conflict_level, ambiguous_catalogue=ambiguous_catalogue)

    def _disagree(self, subs: list[str]) -> bool:
        binary = {is_topological(s) for s in subs}
        return len(binary) > 1 or (self.conflict_level == "subclass" and len(set(subs)) > 1)

    def label(self, mp_ids: Iterable[str] = (), formula: str | None = None, sg: int | None = None) -> TopologyLabel:
        """Label one compound (see :meth:`TopologyCatalogue.lookup` for the arguments)."""
        mp_ids = list(mp_ids)
        entries: list[CatalogueEntry] = []
        by_cat: dict[str, list[str]] = {}
        for cat in self.catalogues:
            found = cat.lookup(mp_ids, formula, sg)
            if found:
                by_cat[cat.name] = sorted({e.subclass for e in found})
                if self.ambiguous_catalogue == "abstain" and self._disagree([e.subclass for e in found]):
                    continue
                entries.extend(found)
        if not entries:
            return TopologyLabel("conflict" if by_cat else "unlabelled", by_catalogue=by_cat)
        subs = [e.subclass for e in entries]
        if self._disagree(subs):
            return TopologyLabel("conflict", by_catalogue=by_cat, entries=entries)
        counts = pd.Series(subs).value_counts()
        best = counts[counts == counts.max()].index
        sub = min(best, key=lambda s: SUBCLASSES.index(s))
        return TopologyLabel("labelled", sub, is_topological(sub), by_cat, entries)

    def label_frame(self, frame: pd.DataFrame, mp_id_column: str = "mp_ids", formula_column: str = "formula",
                    sg_column: str = "sg") -> pd.DataFrame:
        """Label every row of a table of compounds.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per compound; ``mp_id_column`` may hold several ids separated by ``;``.

        Returns
        -------
        pandas.DataFrame
            A copy with columns ``label_status``, ``label_subclass``, ``label_topological``
            and ``label_sources`` (JSON-like ``catalogue:subclass`` list).
        """
        out = frame.copy()
        res = [self.label(_split_ids(r.get(mp_id_column)) if mp_id_column in frame else [],
                          r.get(formula_column), r.get(sg_column))
               for r in frame.to_dict("records")]
        out["label_status"] = [r.status for r in res]
        out["label_subclass"] = [r.subclass for r in res]
        out["label_topological"] = [r.topological for r in res]
        out["label_sources"] = [";".join(f"{k}:{'/'.join(v)}" for k, v in r.by_catalogue.items()) for r in res]
        return out
