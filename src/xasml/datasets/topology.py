"""The topology dataset: compounds with the K-edge spectra of their elements and a topology label.

Pipeline (Andrejevic et al., Adv. Mater. 34, 2204113 (2022), Data Processing)::

    compound folders (FEFF-XANES/<idx>_<El>/xmu.dat + material.json)
      -> site spectra + labels            build_topology_frame / write_topology_dataset (Parquet)
      -> compounds                        compounds_from_frame
      -> element spectra on a per-element 56 eV / 200-point grid, multiplicity-weighted
      -> per-element standardisation      TopologyFeaturizer (fit on the training split only)
      -> TopologyData (arrays + masks)    the input of every topology model

The stored dataset keeps the *site* spectra on their native FEFF grids (one row per site, in
the :mod:`xasml.datasets.format` schema) with the compound's label columns, so a grid or
window can be changed without re-reading the FEFF output.

Energy window
-------------
The paper resamples 200 points over 56 eV per absorbing element, co-aligned on the absolute
energy scale. FEFF10 spectra of ``feff10-topology-v0`` span about 60 eV (from about -14 eV
below the Fermi level), and their absolute start energies vary by a few eV between compounds
(chemical shifts). The window of each element is chosen on the *training* compounds with
:func:`xasml.preprocess.grid.common_grid` (``anchor="median-overlap"``): 56 eV centred on the
middle of the median start and median end energies, i.e. about 2 eV trimmed at each end of a
typical spectrum. Spectra that do not cover the whole window are padded with their end values.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xasml.errors import DataError
from xasml.preprocess.grid import EnergyGrid, common_grid
from xasml.preprocess.standardize import PerElementStandardizer
from xasml.spectrum import Spectrum, atomic_number, element_average  # noqa: F401 - atomic_number re-exported

#: label columns stored with every site row of a topology dataset
LABEL_COLUMNS = ("formula", "sg", "mp_ids", "subclass", "topological", "holdout", "origin")

ATTRIBUTION = (
    "FEFF10 K-edge XANES computed for the xasml project (FEFF 10.0.0 via feff10-rs) from AMCSD "
    "mineral structures (as bundled in larixite); topology labels from Materiae (Zhang et al., "
    "Nature 566, 475 (2019)) and the Topological Materials Arsenal (Tang et al., Nature 566, 486 "
    "(2019); MIT licence via andrewma8/topogivity). Method: Andrejevic et al., Adv. Mater. 34, "
    "2204113 (2022)."
)


# ---------------------------------------------------------------------------------------------
# reading compound folders
# ---------------------------------------------------------------------------------------------
def _folder_structure(folder: Path):
    """The structure in ``folder`` (``structure.cif`` or ``POSCAR``), or None when there is none.

    Raises
    ------
    DataError
        Naming the file, if pymatgen cannot read it.
    """
    from pymatgen.core import Structure

    for name in ("structure.cif", "POSCAR"):
        p = folder / name
        if p.exists():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return Structure.from_file(p)
            except Exception as exc:  # noqa: BLE001 - pymatgen parser errors vary; re-raised as DataError
                raise DataError(f"{p}: cannot read structure: {exc}") from None
    return None


def _structure_metadata(structure) -> tuple[dict[int, int], list[str], dict[str, Any]]:
    """Site multiplicities (symmetry), elements, and reduced formula + space-group number of a structure."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sga = SpacegroupAnalyzer(structure)
        sym = sga.get_symmetrized_structure()
        sg = int(sga.get_space_group_number())
    mult = {i: len(group) for group in sym.equivalent_indices for i in group}
    elements = sorted({sp.symbol for sp in structure.composition.elements})
    return mult, elements, {"formula": structure.composition.reduced_formula, "sg": sg}


def read_topology_compound(folder: str | Path) -> tuple[list[Spectrum], dict[str, Any]]:
    """Read one compound folder in the ``feff10-topology-v0`` / ``omnixas-cu-feff`` layout.

    Parameters
    ----------
    folder : str or Path
        ``<folder>/FEFF-XANES/<index>_<El>/xmu.dat``, with ``material.json`` (labels, sites
        with multiplicities) and/or a structure (``structure.cif`` or ``POSCAR``).

    Returns
    -------
    spectra : list of Spectrum
        Site spectra with multiplicities (from ``material.json``, else from the structure's
        symmetry, else 1).
    meta : dict
        ``material.json`` content (without ``sites``/``settings``) plus ``elements``: the
        compound's elements (from the structure or ``sites``; H excluded).

    Raises
    ------
    SpectrumError, DataError
        If the folder has no spectra or a file is malformed.
    """
    from xasml.io.feff import read_feff_compound

    folder = Path(folder)
    spectra = read_feff_compound(folder)
    meta: dict[str, Any] = {}
    mj = folder / "material.json"
    if mj.exists():
        meta = json.loads(mj.read_text())
        elements = sorted({s["element"] for s in meta.get("sites", [])})
    elif (structure := _folder_structure(folder)) is not None:
        mult, elements, formula_sg = _structure_metadata(structure)
        spectra = [s.replace(multiplicity=mult.get(s.absorbing_index, 1)) for s in spectra]
        meta.update(formula_sg)
    else:
        elements = sorted({s.absorbing_element for s in spectra})
    meta = {k: v for k, v in meta.items() if k not in ("sites", "settings")}
    meta.setdefault("key", folder.name)
    meta["elements"] = [e for e in elements if e != "H"]
    return spectra, meta


def _label_row(meta: dict, labeler) -> tuple[str | None, int | None, str]:
    """(subclass, topological, origin) from a labeler or from the folder's own labels."""
    if labeler is not None:
        mp = [m for m in str(meta.get("mp_ids") or "").split(";") if m]
        lab = labeler.label(mp_ids=mp, formula=meta.get("formula"), sg=meta.get("sg"))
        if lab.status != "labelled":
            return None, None, lab.status
        return lab.subclass, int(lab.topological), "catalogues"
    sub = meta.get("subclass")
    if sub is None or (isinstance(sub, float) and np.isnan(sub)):
        return None, None, "unlabelled"
    from xasml.labels.topology import is_topological, normalize_subclass

    sub = normalize_subclass(sub, source=str(meta.get("key")))
    if sub is None:
        return None, None, "unlabelled"
    return sub, int(is_topological(sub)), "materials.csv"


def build_topology_frame(root: str | Path | Sequence[str | Path], labeler=None, omnixas: str | Path | None = None,
                         show_progress: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a ``feff10-topology-v0``-style folder into a table of site spectra with labels.

    Parameters
    ----------
    root : str or Path, or a sequence of them
        Folder with ``materials.csv`` and ``FEFF10/<key>/`` compound folders (or a folder of
        compound folders directly), or a packed FEFF dataset (``xasml simulate pack``); several
        are read together (a compound key found twice is read from the first).
    labeler : xasml.labels.TopologyLabeler, optional
        Re-label every compound from catalogues (conflicts dropped). Default: the labels in
        ``material.json`` / ``materials.csv``.
    omnixas : str or Path, optional
        An ``omnixas-cu-feff`` folder (``FEFF/<El>/<mp-id>/``): its compounds join when they
        have a label (``labeler`` is then required, matched by mp-id) and a spectrum for
        every element of the structure (H excepted).
    show_progress : bool
        tqdm progress bar.

    Returns
    -------
    frame : pandas.DataFrame
        One row per site spectrum (schema of :mod:`xasml.datasets.format`) plus
        :data:`LABEL_COLUMNS`.
    report : dict
        Counts: compounds read, labelled, dropped (conflict / unlabelled / missing element
        spectra / holdout), and how many OmniXAS compounds joined.

    Raises
    ------
    DataError
        If ``root`` has no compound folders.
    """
    from xasml.datasets.format import spectra_to_frame
    from xasml.simulate.pack import feff_roots
    from xasml.utils import progress

    roots = [root] if isinstance(root, (str, Path)) else list(root)
    sources, seen = [], set()
    for given, r in zip(roots, feff_roots(roots)):
        base = r / "FEFF10" if (r / "FEFF10").is_dir() else r
        folders = sorted(p for p in base.iterdir() if (p / "FEFF-XANES").is_dir()) if base.is_dir() else []
        if not folders:
            raise DataError(f"{given}: no compound folders (expected FEFF10/<key>/FEFF-XANES/<index>_<El>/xmu.dat)")
        sources += [(f, "feff10", r) for f in folders if f.name not in seen]
        seen |= {f.name for f in folders}
    report: dict[str, Any] = {"root": str(root) if isinstance(root, (str, Path)) else [str(r) for r in roots],
                              "compounds_read": 0, "labelled": 0, "conflict": 0,
                              "unlabelled": 0, "missing_spectra": 0, "holdout": 0, "omnixas_candidates": 0,
                              "omnixas_joined": 0}
    if omnixas is not None:
        om = Path(omnixas)
        om_base = om / "FEFF" if (om / "FEFF").is_dir() else om
        cands = sorted(p for p in om_base.glob("*/*") if (p / "FEFF-XANES").is_dir()) or \
            sorted(p for p in om_base.iterdir() if (p / "FEFF-XANES").is_dir())
        if labeler is None:
            raise DataError("joining OmniXAS compounds needs catalogue labels: pass labeler")
        for p in cands:
            lab = labeler.label(mp_ids=[p.name])
            if lab.status == "labelled":
                report["omnixas_candidates"] += 1
                sources.append((p, "omnixas", om))
    frames = []
    for folder, origin, root in progress(sources, desc="reading compounds", disable=not show_progress):
        report["compounds_read"] += 1
        spectra, meta = read_topology_compound(folder)
        if origin == "omnixas":
            meta.setdefault("mp_ids", folder.name)
            lab = labeler.label(mp_ids=[folder.name])
            sub, top, how = lab.subclass, int(lab.topological), "catalogues"
        else:
            sub, top, how = _label_row(meta, labeler)
        if sub is None:
            report[how if how in report else "unlabelled"] += 1
            continue
        have = {s.absorbing_element for s in spectra}
        if not set(meta["elements"]) <= have:
            report["missing_spectra"] += 1
            continue
        report["labelled"] += 1
        if origin == "omnixas":
            report["omnixas_joined"] += 1
        holdout = int(meta.get("holdout", 0) or 0)
        report["holdout"] += holdout
        try:
            rel = [str(Path(s.source).relative_to(root)) for s in spectra]
        except ValueError:
            rel = [s.source for s in spectra]
        spectra = [s.replace(source=r, material_id=str(meta["key"])) for s, r in zip(spectra, rel)]
        n = len(spectra)
        frames.append(spectra_to_frame(spectra, extra={
            "formula": [str(meta.get("formula", ""))] * n,
            "sg": [int(meta["sg"]) if meta.get("sg") is not None else -1] * n,
            "mp_ids": [str(meta.get("mp_ids") or "")] * n,
            "subclass": [sub] * n,
            "topological": [int(top)] * n,
            "holdout": [holdout] * n,
            "origin": [origin] * n,
        }))
    if not frames:
        raise DataError(f"{report['root']}: no labelled compound with spectra for all its elements")
    return pd.concat(frames, ignore_index=True), report


def write_topology_dataset(path: str | Path, frame: pd.DataFrame, report: dict | None = None) -> Path:
    """Write a topology site-spectrum table to Parquet (``xasml.kind = "topology"``)."""
    from xasml.datasets.format import write_dataset

    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: topology dataset needs label column(s) {', '.join(missing)}")
    return write_dataset(path, frame, kind="topology", metadata={"build": report or {}}, attribution=ATTRIBUTION)


def load_topology_frame(path: str | Path, labeler=None, show_progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Load a topology dataset from a built ``.parquet`` file or a compound-folder tree.

    Returns
    -------
    frame : pandas.DataFrame
        Site-spectrum rows with label columns.
    info : dict
        ``source`` (path), ``kind`` (``"parquet"`` or ``"folder"``), ``build`` report.

    Raises
    ------
    DataError
        If the path does not exist, or is neither.
    """
    from xasml.datasets.format import read_dataset

    path = Path(path)
    if path.is_file():
        frame, info = read_dataset(path, kind="topology")
        missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing label column(s) {', '.join(missing)}")
        return frame, {"source": str(path), "kind": "parquet", "build": info["metadata"].get("build", {})}
    if path.is_dir():
        frame, report = build_topology_frame(path, labeler=labeler, show_progress=show_progress)
        return frame, {"source": str(path), "kind": "folder", "build": report}
    raise DataError(f"{path}: no such dataset file or folder")


# ---------------------------------------------------------------------------------------------
# compounds
# ---------------------------------------------------------------------------------------------
@dataclass
class TopologyCompound:
    """One compound: its site spectra grouped by element, and its label.

    Attributes
    ----------
    material_id : str
    sites : dict[str, list[Spectrum]]
        Site spectra per absorbing element (native FEFF grids, multiplicities set).
    subclass : str or None
        trivial / TI / TCI / SM (None when unknown, e.g. at prediction time).
    topological : int or None
        1 topological, 0 trivial.
    formula, sg, mp_ids, holdout, origin
        Catalogue information.
    """

    material_id: str
    sites: dict[str, list[Spectrum]]
    subclass: str | None = None
    topological: int | None = None
    formula: str = ""
    sg: int = -1
    mp_ids: str = ""
    holdout: int = 0
    origin: str = ""

    @property
    def elements(self) -> list[str]:
        """Absorbing elements present, sorted by atomic number."""
        return sorted(self.sites, key=atomic_number)


def compounds_from_frame(frame: pd.DataFrame) -> list[TopologyCompound]:
    """Group site rows of a topology table into compounds (order of first appearance)."""
    from xasml.datasets.format import frame_to_spectra

    spectra = frame_to_spectra(frame)
    out: dict[str, TopologyCompound] = {}
    for s, row in zip(spectra, frame.itertuples(index=False)):
        c = out.get(row.material_id)
        if c is None:
            c = out[row.material_id] = TopologyCompound(
                material_id=str(row.material_id), sites={}, subclass=row.subclass,
                topological=int(row.topological), formula=str(row.formula), sg=int(row.sg),
                mp_ids=str(row.mp_ids), holdout=int(row.holdout), origin=str(row.origin))
        c.sites.setdefault(s.absorbing_element, []).append(s)
    return list(out.values())


def compound_from_spectra(spectra: Sequence[Spectrum], material_id: str = "input") -> TopologyCompound:
    """Group arbitrary spectra (any subset of a compound's elements) into a compound for prediction."""
    sites: dict[str, list[Spectrum]] = {}
    for s in spectra:
        sites.setdefault(s.absorbing_element, []).append(s.replace(material_id=material_id))
    return TopologyCompound(material_id=material_id, sites=sites)


# ---------------------------------------------------------------------------------------------
# model input
# ---------------------------------------------------------------------------------------------
@dataclass
class TopologyData:
    """Model input for a set of compounds: padded per-absorber arrays and masks.

    Attributes
    ----------
    X : ndarray, shape (n_compounds, max_absorbers, n_points), float32
        Standardised element spectra; zeros at padded positions.
    Z : ndarray, shape (n_compounds, max_absorbers), int64
        Atomic number of each absorber; 0 at padded positions.
    mask : ndarray, shape (n_compounds, max_absorbers), bool
        True where an absorber is present.
    y : ndarray, shape (n_compounds,), int64
        1 topological, 0 trivial, -1 unknown.
    material_ids : list of str
    subclass : list of str or None
    """

    X: np.ndarray
    Z: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    material_ids: list[str]
    subclass: list = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.material_ids)
        if not (self.X.shape[0] == self.Z.shape[0] == self.mask.shape[0] == self.y.shape[0] == n):
            raise DataError(f"TopologyData: inconsistent lengths X {self.X.shape}, Z {self.Z.shape}, "
                            f"mask {self.mask.shape}, y {self.y.shape}, ids {n}")
        if not self.subclass:
            self.subclass = [None] * n

    def __len__(self) -> int:
        return len(self.material_ids)

    @property
    def n_points(self) -> int:
        return int(self.X.shape[2])

    @property
    def elements(self) -> list[list[str]]:
        """Element symbols of each compound (present absorbers)."""
        from pymatgen.core.periodic_table import Element

        return [[Element.from_Z(int(z)).symbol for z, m in zip(zr, mr) if m] for zr, mr in zip(self.Z, self.mask)]

    def subset(self, idx: Iterable[int]) -> TopologyData:
        """Rows ``idx`` (in that order)."""
        idx = np.asarray(list(idx), dtype=int)
        return TopologyData(self.X[idx], self.Z[idx], self.mask[idx], self.y[idx],
                            [self.material_ids[i] for i in idx], [self.subclass[i] for i in idx])

    def with_spectra(self, X: np.ndarray) -> TopologyData:
        """Same compounds, other spectra (e.g. coarsened)."""
        return TopologyData(np.asarray(X, dtype=np.float32), self.Z, self.mask, self.y, self.material_ids,
                            self.subclass)


class TopologyFeaturizer:
    """Per-element energy grids, element averaging and standardisation, fitted on training compounds.

    Parameters
    ----------
    width : float
        Energy window per element, eV (56 in Andrejevic et al. 2022).
    n_points : int
        Grid points (200 in the paper; spacing 0.28 eV).
    anchor : {"median-overlap", "start"}
        How the window is placed, see :func:`xasml.preprocess.grid.common_grid`.

    Attributes
    ----------
    grids_ : dict[str, EnergyGrid]
        Window per absorbing element.
    standardizer_ : PerElementStandardizer
    reference_ : dict[str, ndarray of shape (n_points,)]
        Mean (unstandardised) element spectrum of the training compounds on the element's grid:
        the reference for aligning measured spectra (paper, Experimental Section).
    counts_ : dict[str, int]
        Number of training compounds per element.
    """

    def __init__(self, width: float = 56.0, n_points: int = 200, anchor: str = "median-overlap"):
        self.width = float(width)
        self.n_points = int(n_points)
        self.anchor = anchor

    def fit(self, compounds: Sequence[TopologyCompound]) -> TopologyFeaturizer:
        """Choose the grids and fit the standardiser on ``compounds`` (the training split).

        Raises
        ------
        DataError
            If ``compounds`` is empty.
        """
        if not compounds:
            raise DataError("TopologyFeaturizer.fit needs at least one compound")
        by_el: dict[str, list[Spectrum]] = {}
        for c in compounds:
            for el, sp in c.sites.items():
                by_el.setdefault(el, []).extend(sp)
        self.grids_ = {el: common_grid(sp, self.width, self.n_points, anchor=self.anchor)
                       for el, sp in sorted(by_el.items())}
        rows, els = [], []
        for c in compounds:
            for el, mu in self.element_spectra(c).items():
                rows.append(mu)
                els.append(el)
        X = np.asarray(rows)
        self.standardizer_ = PerElementStandardizer().fit(X, els)
        els = np.asarray(els)
        self.reference_ = {el: X[els == el].mean(axis=0) for el in self.grids_}
        self.counts_ = {el: int((els == el).sum()) for el in self.grids_}
        return self

    @property
    def elements_(self) -> list[str]:
        """Elements with a grid, sorted by atomic number."""
        return sorted(self.grids_, key=atomic_number)

    def element_spectra(self, compound: TopologyCompound, skip_unknown: bool = True) -> dict[str, np.ndarray]:
        """Multiplicity-weighted element spectra of a compound on the fitted grids (not standardised).

        Elements without a fitted grid are skipped (``skip_unknown``) or raise DataError.
        """
        out = {}
        for el in compound.elements:
            if el not in self.grids_:
                if skip_unknown:
                    continue
                raise DataError(f"{compound.material_id}: no energy grid for element {el!r} (not in the "
                                f"training data)")
            out[el] = element_average(compound.sites[el], energy=self.grids_[el].energy).mu
        return out

    def transform(self, compounds: Sequence[TopologyCompound], max_absorbers: int | None = None) -> TopologyData:
        """Featurise compounds into :class:`TopologyData` (unknown elements are left out).

        Parameters
        ----------
        compounds : sequence of TopologyCompound
        max_absorbers : int, optional
            Padding width (default: the largest number of elements in ``compounds``).
        """
        specs = [self.element_spectra(c) for c in compounds]
        A = max_absorbers or max([len(s) for s in specs] + [1])
        n = len(compounds)
        X = np.zeros((n, A, self.n_points), dtype=np.float32)
        Z = np.zeros((n, A), dtype=np.int64)
        mask = np.zeros((n, A), dtype=bool)
        for i, s in enumerate(specs):
            els = sorted(s, key=atomic_number)
            if els:
                X[i, :len(els)] = self.standardizer_.transform(np.stack([s[e] for e in els]), els)
                Z[i, :len(els)] = [atomic_number(e) for e in els]
                mask[i, :len(els)] = True
        y = np.array([-1 if c.topological is None else int(c.topological) for c in compounds], dtype=np.int64)
        return TopologyData(X, Z, mask, y, [c.material_id for c in compounds], [c.subclass for c in compounds])

    def to_dict(self) -> dict:
        """JSON-serialisable state (reference spectra included as lists)."""
        return {"width": self.width, "n_points": self.n_points, "anchor": self.anchor,
                "grids": {el: g.to_dict() for el, g in self.grids_.items()},
                "standardizer": self.standardizer_.to_dict(),
                "reference": {el: np.asarray(v).tolist() for el, v in self.reference_.items()},
                "counts": self.counts_}

    @classmethod
    def from_dict(cls, d: dict) -> TopologyFeaturizer:
        self = cls(d["width"], d["n_points"], d.get("anchor", "median-overlap"))
        self.grids_ = {el: EnergyGrid.from_dict(g) for el, g in d["grids"].items()}
        self.standardizer_ = PerElementStandardizer.from_dict(d["standardizer"])
        self.reference_ = {el: np.asarray(v, dtype=float) for el, v in d["reference"].items()}
        self.counts_ = {k: int(v) for k, v in d.get("counts", {}).items()}
        return self


def average_over_intervals(X: np.ndarray, step_ev: float, delta_e: float) -> np.ndarray:
    """Lower the energy resolution of gridded spectra, as in the paper's Figure S7.

    Each spectrum is averaged over consecutive intervals of ``delta_e`` eV and each average is
    copied back to the points of its interval, so the input length (and the network size) is
    unchanged.

    Parameters
    ----------
    X : ndarray, shape (..., n_points)
        Spectra on an even grid.
    step_ev : float
        Grid spacing in eV.
    delta_e : float
        Averaging interval in eV; intervals of ``max(1, round(delta_e / step_ev))`` points.

    Returns
    -------
    ndarray, same shape as ``X``
    """
    X = np.asarray(X)
    k = max(1, round(delta_e / step_ev))
    if k == 1:
        return X.copy()
    out = np.empty_like(X)
    n = X.shape[-1]
    for a in range(0, n, k):
        out[..., a:a + k] = X[..., a:a + k].mean(axis=-1, keepdims=True)
    return out
