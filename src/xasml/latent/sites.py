"""Data of the RankAAE latent models: labelled site spectra of one or several elements on the
calibrated energy scale, with the RankAAE descriptors and a split grouped by structure.

The input handling is that of the multi-element local-structure models (the site-table
helpers of :mod:`xasml.datasets.sites`), reused, not copied:

* sites come from site tables (``xasml local sites``, Parquet) and/or FEFF folders
  (:func:`xasml.datasets.sites.load_sites`, which labels FEFF folders with
  :func:`xasml.datasets.sites.build_site_table`, cached);
* every simulated spectrum is put on the calibrated experimental energy scale by one offset per
  (element, simulation) (:mod:`xasml.preprocess.energy_scale`) and resampled on its element's
  grid, fixed relative to the tabulated edge (-3 ... +46.5 eV, 100 points), then scaled to
  maximum 1 (:func:`xasml.datasets.sites.spectra_matrix`). Nothing is aligned per spectrum, so the
  chemical shift (oxidation state) reaches the model, and spectra of two simulation codes of one
  element (OmniXAS FEFF 9.9.1 and FEFF10 Cu) share one energy scale;
* near-duplicates are removed per element (:func:`xasml.datasets.local.deduplicate`, Carbone et
  al. 2019 §II.A);
* the split is grouped by structure (:func:`xasml.datasets.sites.structure_key`: the sites of one
  structure, whatever the absorber or data set, are in one part) and stratified by element and
  environment (:func:`xasml.datasets.local.grouped_stratified_split`).

The geometric descriptors (:mod:`xasml.latent.descriptors`) are computed from the structure
beside each site's FEFF folder (``<material>/FEFF-XANES/<index>_<El>/xmu.dat`` ->
``<material>/POSCAR`` or ``structure.cif``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xasml.errors import DataError
from xasml.latent.descriptors import DESCRIPTORS, GEOMETRIC, compute_descriptors, descriptor_matrix
from xasml.preprocess.grid import EnergyGrid

#: split fractions (train, val, test) of site tables: 15 % test so that an element with ~40
#: materials still has 5-7 held-out materials
SITE_TABLE_FRACTIONS = (0.7, 0.15, 0.15)


def structure_path(source: str | Path) -> str:
    """Structure file of a site spectrum ``<material>/FEFF-XANES/<index>_<El>/xmu.dat``: the
    material folder's ``POSCAR``, ``structure.cif`` or ``CONTCAR``; ``""`` if there is none."""
    from xasml.datasets.local import STRUCTURE_NAMES

    mat = Path(str(source)).parent.parent.parent
    return next((str(mat / n) for n in STRUCTURE_NAMES if (mat / n).exists()), "")


@dataclass
class LatentData:
    """Site spectra of one or several elements for a RankAAE.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per kept site: ``material_id``, ``absorbing_element``, ``absorbing_index``,
        ``dataset``, ``simulation``, ``source``, ``structure_path``, the labels
        (``environment``, ``coordination_number``, ``oxidation_state``, ...), the geometric
        descriptors, ``group`` (structure) and ``split``.
    X : ndarray, shape (n_sites, n_points)
        Max-normalised spectra, each on its element's grid (calibrated scale).
    D : ndarray, shape (n_sites, 5)
        Descriptors in the order of :data:`~xasml.latent.descriptors.DESCRIPTORS`, NaN where unknown.
    elements : list of str
        Elements present, in the order asked for (the one-hot order of universal models).
    rel_grid : ndarray, shape (n_points,)
        Grid energies relative to the tabulated edge, eV.
    edge : str
    energy_scale : dict
        ``{element: {simulation: offset_eV}}`` of the data used.
    info : dict
        Counts (found, dropped and why, duplicates, split sizes, materials per element).
    """

    table: pd.DataFrame
    X: np.ndarray
    D: np.ndarray
    elements: list
    rel_grid: np.ndarray
    edge: str = "K"
    energy_scale: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    def mask(self, split: str | None = None, element: str | None = None) -> np.ndarray:
        """Boolean mask of one split (``"train"``, ``"val"``, ``"test"``) and/or one element."""
        m = np.ones(len(self.table), bool)
        if split is not None:
            m &= (self.table["split"] == split).to_numpy()
        if element is not None:
            m &= (self.table["absorbing_element"] == element).to_numpy()
        return m

    def grid(self, element: str) -> EnergyGrid:
        """Absolute grid (eV, calibrated scale) of ``element``."""
        from xasml.edges import edge_energy

        e = edge_energy(element, self.edge) + self.rel_grid
        return EnergyGrid(float(e[0]), float(e[-1]), len(e))


def build_latent_data(paths: Sequence[str | Path], elements: Sequence[str], descriptor_cache: str | Path | None = None,
                      labels: str | Path | None = None, seed: int = 0,
                      fractions: Sequence[float] = SITE_TABLE_FRACTIONS, grid_start: float = -3.0, step: float = 0.5,
                      n_points: int = 100, dedup_threshold: float = 0.015, label_cache: str | Path | None = None,
                      edge: str = "K") -> LatentData:
    """Labelled, gridded, de-duplicated and split site spectra of ``elements`` with their descriptors.

    Parameters
    ----------
    paths : sequence of str or Path
        Site tables (``xasml local sites``) and/or FEFF data folders.
    elements : sequence of str
        Absorbing elements kept.
    descriptor_cache : str or Path, optional
        Parquet cache of the geometric descriptors (keyed by ``<dataset>/<material>`` and site).
    labels : str or Path, optional
        Label table (Parquet, :data:`xasml.labels.site.LABEL_COLUMNS`) whose ``environment``,
        ``coordination_number`` and ``oxidation_state`` replace those of the matching sites.
    seed : int
        Split seed.
    fractions : (train, val, test)
    grid_start, step, n_points :
        Grid relative to the tabulated edge (eV), as :class:`xasml.datasets.sites.SiteGrid`.
    dedup_threshold : float
        Mean absolute difference (units of the maximum) below which a later site of the same
        element is a duplicate.
    label_cache : str or Path, optional
        Label cache for FEFF folders (:func:`xasml.datasets.sites.load_sites`).
    edge : str

    Returns
    -------
    LatentData

    Raises
    ------
    DataError
        If nothing of ``elements`` is found, no spectrum can be put on the calibrated scale, or
        there are too few structures to split.
    """
    from xasml.datasets.local import deduplicate, grouped_stratified_split
    from xasml.datasets.sites import SiteGrid, load_sites, spectra_matrix, structure_key
    from xasml.preprocess.energy_scale import energy_scales

    elements = list(dict.fromkeys(elements))
    frame = load_sites([str(p) for p in paths], elements, cache=label_cache)
    if labels is not None:
        frame = _override_labels(frame, labels)
    info: dict = {"n_found": len(frame)}
    scales = energy_scales()
    mcfg = SiteGrid(edge=edge, grid_start=grid_start, step=step, n_points=n_points, normalization="max")
    X, keep, dropped = spectra_matrix(frame, mcfg, scales)
    info["dropped"] = dropped
    frame = frame[keep].reset_index(drop=True)
    ok = frame["environment"].notna().to_numpy()
    info["n_unlabelled"] = int((~ok).sum())
    frame, X = frame[ok].reset_index(drop=True), X[ok]
    if frame.empty:
        raise DataError(f"{', '.join(map(str, paths))}: no labelled site spectrum of {', '.join(elements)} could be "
                        "put on the calibrated energy scale")
    # near-duplicates, per element, in data set / material / site order
    frame["_row"] = np.arange(len(frame))
    keep = np.zeros(len(frame), bool)
    for _, g in frame.sort_values(["dataset", "material_id", "absorbing_index"]).groupby("absorbing_element", sort=False):
        rows = g["_row"].to_numpy()
        keep[rows[deduplicate(X[rows], dedup_threshold)]] = True
    info["n_duplicates_removed"] = int((~keep).sum())
    frame, X = frame[keep].drop(columns="_row").reset_index(drop=True), X[keep]
    # geometric descriptors from the structure beside each FEFF folder
    frame["structure_path"] = [structure_path(s) for s in frame["source"]]
    key = frame["dataset"].astype(str) + "/" + frame["material_id"].astype(str)
    desc = compute_descriptors(pd.DataFrame({"material_id": key, "absorbing_index": frame["absorbing_index"].astype(int),
                                             "structure_path": frame["structure_path"]}), cache=descriptor_cache)
    desc = desc.drop_duplicates(["material_id", "absorbing_index"], keep="last").set_index(["material_id", "absorbing_index"])
    idx = pd.MultiIndex.from_arrays([key, frame["absorbing_index"].astype(int)])
    for c in GEOMETRIC:
        frame[c] = desc[c].reindex(idx).to_numpy(dtype=float)
    # split grouped by structure, stratified by element (and environment where common)
    frame["group"] = [structure_key(m) for m in frame["material_id"]]
    strata = frame["absorbing_element"].astype(str) + ":" + frame["environment"].astype(str)
    counts = strata.value_counts()
    strata = strata.where(strata.map(counts) >= 20, frame["absorbing_element"].astype(str) + ":other")
    frame["split"] = grouped_stratified_split(strata, frame["group"], tuple(fractions), seed=seed)
    present = [e for e in elements if (frame["absorbing_element"] == e).any()]
    energy_scale = {e: {s: float(scales[s][e]) for s in sorted(frame.loc[frame["absorbing_element"] == e,
                                                                          "simulation"].unique())} for e in present}
    info["n_sites"] = len(frame)
    info["split_sizes"] = {s: int((frame["split"] == s).sum()) for s in ("train", "val", "test")}
    info["by_element"] = {e: {"sites": {s: int(((frame["split"] == s) & (frame["absorbing_element"] == e)).sum())
                                        for s in ("train", "val", "test")},
                              "materials": {s: int(frame.loc[(frame["split"] == s) & (frame["absorbing_element"] == e),
                                                             "group"].nunique()) for s in ("train", "val", "test")}}
                          for e in present}
    info["grid_relative_eV"] = {"start": float(mcfg.rel_grid()[0]), "stop": float(mcfg.rel_grid()[-1]),
                                "n_points": int(n_points)}
    info["energy_scale"] = energy_scale
    return LatentData(table=frame.drop(columns=["energy", "mu"]), X=X.astype(np.float32),
                      D=descriptor_matrix(frame, DESCRIPTORS), elements=present, rel_grid=mcfg.rel_grid(), edge=edge,
                      energy_scale=energy_scale, info=info)


def _override_labels(frame: pd.DataFrame, labels: str | Path) -> pd.DataFrame:
    """``frame`` with the environment, CN and OS of a label table where it has the site."""
    if not Path(labels).exists():
        raise DataError(f"{labels}: label table not found")
    lab = pd.read_parquet(labels).drop_duplicates(["material_id", "absorbing_index"]).set_index(
        ["material_id", "absorbing_index"])
    idx = pd.MultiIndex.from_arrays([frame["material_id"], frame["absorbing_index"].astype(int)])
    frame = frame.copy()
    for c in ("environment", "coordination_number", "oxidation_state"):
        if c in lab.columns:
            new = lab[c].reindex(idx)
            have = new.notna().to_numpy()
            frame[c] = frame[c].astype(object)
            frame.loc[have, c] = new.to_numpy()[have]
    return frame


def one_hot(element: str | Sequence[str], order: Sequence[str] | None, n: int | None = None) -> np.ndarray:
    """One-hot element codes of universal models, shape (n, len(order)); (n, 0) when ``order`` is None.

    Parameters
    ----------
    element : str or sequence of str
        One element for all ``n`` rows, or one per row.
    order : sequence of str or None
    n : int, optional
        Rows, when ``element`` is a single string.
    """
    from xasml.datasets.sites import one_hot as _one_hot

    if not order:
        return np.zeros((n if isinstance(element, str) else len(element), 0), np.float32)
    els = [element] * int(n) if isinstance(element, str) else list(element)
    return _one_hot(els, list(order))
