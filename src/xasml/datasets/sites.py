"""Labelled site spectra of many absorbing elements and data sets, in the one dataset format.

The multi-element local-structure models (universal and per-element) train on site spectra of
every 3d metal from several FEFF data sets: ``feff10-local-v0``, ``omnixas-cu-feff``, the 3d-metal
sites of ``feff10-topology-v0`` and the sets grown with ``xasml simulate``. This module lists
those sites (FEFF folders or packed datasets), labels them with :func:`xasml.labels.site.label_sites`
(ChemEnv environment, coordination number, bond-valence oxidation state; resumable cache) and
writes one Parquet table with the spectra on their native **absolute** energy grids: nothing is
aligned here, so the edge position - which carries the oxidation state - is kept, and every row
records which simulation made it (``simulation``: code and settings), because absolute energies
differ between codes and settings (one offset per element and simulation, not per spectrum).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas is imported where it is used: reading this module stays light
    import pandas as pd

from xasml.errors import DataError

#: the 3d transition metals of the local-structure models (Carbone et al. 2019 covered Ti-Cu)
METALS_3D = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")

KIND = "sites"


def simulation_tag(material_json: dict | None, feff_version: str | None) -> str:
    """A short name of the code and settings that made a spectrum, e.g. ``"FEFF10 v0"``.

    Parameters
    ----------
    material_json : dict or None
        The structure's ``material.json`` (its ``settings`` and ``feff`` fields), if any.
    feff_version : str or None
        The version line of the ``xmu.dat`` header (``Spectrum.metadata["feff_version"]``).

    Returns
    -------
    str
        ``"FEFF10 <preset>"`` for xasml/shared FEFF10 sets (``v0`` when the settings are those of
        the shared sets), else ``"FEFF <version>"`` from the header (``"FEFF 9.9.1"`` for OmniXAS).
    """
    settings = (material_json or {}).get("settings") or {}
    if settings:
        preset = settings.get("preset")
        if preset is None and settings.get("SCF") == "3.0 0 30 0.2 1" and settings.get("FMS") == "5.0 0":
            preset = "v0"
        return f"FEFF10 {preset or 'custom'}"
    v = (feff_version or "").strip()
    if not v:
        return "unknown"
    v = " ".join(v.split()[:2])
    return v if v.upper().startswith("FEFF") else f"FEFF {v}"


def _material_json(xmu_path: str, cache: dict[Path, dict | None]) -> dict | None:
    """A site's ``material.json``, read once per structure folder (``cache``)."""
    p = Path(xmu_path).parent.parent.parent / "material.json"
    if p not in cache:
        cache[p] = _read_material_json(p)
    return cache[p]


def _read_material_json(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text()) if p.exists() else None
    except json.JSONDecodeError:
        raise DataError(f"{p}: invalid JSON") from None


def discover_multi(roots: Sequence[str | Path], elements: Sequence[str] = METALS_3D) -> pd.DataFrame:
    """Every site of ``elements`` under each root (FEFF folder or packed dataset).

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset`` (the root's name), ``material_id``, ``absorbing_element``,
        ``absorbing_index``, ``xmu_path``, ``structure_path``; materials without a structure
        file are dropped (they cannot be labelled).

    Raises
    ------
    DataError
        If no root holds a site of any of the elements.
    """
    import pandas as pd

    from xasml.datasets.local import discover_sites
    from xasml.simulate.pack import feff_root

    frames = []
    for given in roots:
        root = feff_root(given)
        for el in elements:
            try:
                df = discover_sites(root, el)
            except DataError:
                continue
            frames.append(df.assign(dataset=Path(given).name.removesuffix(".parquet"), absorbing_element=el))
    if not frames:
        raise DataError(f"no site spectra of {', '.join(elements)} under {', '.join(map(str, roots))}")
    out = pd.concat(frames, ignore_index=True)
    return out[out["structure_path"] != ""].reset_index(drop=True)


def build_site_table(roots: Sequence[str | Path], elements: Sequence[str] = METALS_3D,
                     cache: str | Path | None = None, seed_cache: str | Path | None = None,
                     n_jobs: int = 1) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Labelled site spectra of several elements and data sets (native absolute energy grids).

    Parameters
    ----------
    roots : sequence of str or Path
        FEFF folders (``.../FEFF-XANES/<index>_<El>/xmu.dat`` with ``structure.cif`` or
        ``POSCAR``) or packed datasets (``xasml simulate pack``).
    elements : sequence of str
        Absorbing elements (default: the 3d metals Ti-Zn).
    cache : str or Path, optional
        Label cache (Parquet), resumable (see :func:`xasml.labels.site.label_sites`).
    seed_cache : str or Path, optional
        Read-only labels to reuse (e.g. the Cu labels shipped in ``xasml/data/local``).
    n_jobs : int
        Labelling processes.

    Returns
    -------
    frame : pandas.DataFrame
        Dataset schema (``energy``/``mu`` absolute, eV) plus ``dataset``, ``simulation``,
        ``formula`` and the label columns ``environment``, ``csm``, ``coordination_number``,
        ``ligands``, ``oxidation_state``, ``oxidation_status``, ``label_error``.
    report : dict
        Sites found, read, labelled, per element and data set.
    """
    import pandas as pd

    from xasml.datasets.format import spectra_to_frame
    from xasml.datasets.local import load_spectra
    from xasml.labels.site import label_sites

    sites = discover_multi(roots, elements)
    tasks = [(mid, g["structure_path"].iloc[0], [int(i) for i in g["absorbing_index"]])
             for mid, g in sites.groupby("material_id", sort=False)]
    labels = label_sites(tasks, cache=cache, seed_cache=seed_cache, n_jobs=n_jobs)
    lab = labels.set_index(["material_id", "absorbing_index"])
    spectra, rows = [], []
    n_unreadable = 0
    meta_cache: dict[Path, dict | None] = {}
    for el, g in sites.groupby("absorbing_element", sort=False):
        specs, errors = load_spectra(g, el)
        for r, s, err in zip(g.itertuples(index=False), specs, errors):
            if s is None:
                n_unreadable += 1
                continue
            mj = _material_json(r.xmu_path, meta_cache)
            lr = lab.loc[(r.material_id, int(r.absorbing_index))]
            if isinstance(lr, pd.DataFrame):
                lr = lr.iloc[0]
            s = s.replace(multiplicity=_multiplicity(mj, int(r.absorbing_index)))
            spectra.append(s)
            rows.append({"dataset": r.dataset, "simulation": simulation_tag(mj, s.metadata.get("feff_version")),
                         "formula": str((mj or {}).get("reduced_formula") or (mj or {}).get("formula") or ""),
                         "environment": lr["environment"], "csm": lr["csm"],
                         "coordination_number": lr["coordination_number"], "ligands": lr["ligands"],
                         "oxidation_state": lr["oxidation_state"], "oxidation_status": lr["oxidation_status"],
                         "label_error": lr["error"]})
    extra = {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
    frame = spectra_to_frame(spectra, extra=extra)
    frame["coordination_number"] = pd.array(frame["coordination_number"], dtype="Int64")
    frame["oxidation_state"] = pd.array(frame["oxidation_state"], dtype="Int64")
    report = {"sites_found": int(len(sites)), "unreadable": n_unreadable, "sites": int(len(frame)),
              "labelled": int(frame["environment"].notna().sum()),
              "with_oxidation_state": int(frame["oxidation_state"].notna().sum()),
              "by_element": {el: int(n) for el, n in frame["absorbing_element"].value_counts().sort_index().items()},
              "by_dataset": {d: int(n) for d, n in frame["dataset"].value_counts().sort_index().items()},
              "materials_by_element": {el: int(n) for el, n in
                                       frame.groupby("absorbing_element")["material_id"].nunique().items()}}
    return frame, report


def _multiplicity(meta: dict | None, index: int) -> int:
    for s in (meta or {}).get("sites", []):
        if int(s.get("absorbing_index", -1)) == index:
            return int(s.get("multiplicity", 1))
    return 1


def write_site_table(path: str | Path, frame: pd.DataFrame, report: dict | None = None) -> Path:
    """Write a site table (``xasml.kind = "sites"``) atomically."""
    from xasml.datasets.format import write_dataset

    return write_dataset(path, frame, kind=KIND, metadata={"build": report or {}},
                         attribution="see the attribution of each source data set (column 'dataset')")


# -- site spectra as the models take them (shared by the local-structure and latent models) ----------

#: the Cu labels shipped with the package (reused when labelling FEFF folders)
SHIPPED_LABELS = Path(__file__).resolve().parents[1] / "data" / "local" / "labels_Cu.parquet"

#: a simulated spectrum whose first point is below this fraction of its maximum starts in its
#: pre-edge and may be extended flat below it (see spectra_matrix)
PRE_EDGE_FRACTION = 0.1


def default_data_path() -> str:
    """The default site data: ``$XASML_DATA`` if set, else ``../shared/data/omnixas-cu-feff``
    relative to the repository (:func:`xasml.utils.shared_data_dir`)."""
    import os

    from xasml.utils import shared_data_dir

    env = os.environ.get("XASML_DATA")
    if env:
        return env
    return str(shared_data_dir() / "omnixas-cu-feff")


@dataclass
class SiteGrid:
    """The grid of model-input site spectra: fixed relative to each element's tabulated edge.

    Attributes
    ----------
    edge : str
        Absorption edge (``"K"``).
    grid_start : float
        First grid energy relative to the tabulated edge energy, eV.
    step : float
        Grid spacing, eV.
    n_points : int
    normalization : {"max", "edge-step"}
        Maximum 1 (Carbone et al. 2019), or FEFF's edge-step normalised μ as it is.
    """

    edge: str = "K"
    grid_start: float = -3.0
    step: float = 0.5
    n_points: int = 100
    normalization: str = "max"

    def rel_grid(self) -> np.ndarray:
        """Grid energies relative to the tabulated edge, eV, shape (n_points,)."""
        return self.grid_start + self.step * np.arange(self.n_points)


def structure_key(material_id: str) -> str:
    """The structure a site belongs to: ``amcsd-123-Fe`` and ``amcsd-123`` are one structure."""
    return re.sub(r"-(Ti|V|Cr|Mn|Fe|Co|Ni|Cu|Zn|[A-Z][a-z]?)$", "", str(material_id))


def load_sites(paths: Sequence[str | Path], elements: Sequence[str], cache: str | Path | None = None) -> pd.DataFrame:
    """Labelled site spectra from site tables and/or FEFF folders / packed datasets.

    Sites of FEFF folders are labelled with :func:`xasml.datasets.sites.build_site_table`; the
    ``simulation`` of metallic structures (metals only) gets the suffix ``" metal"``, the key of their own
    energy scale (:func:`xasml.preprocess.energy_scale.scale_key`); the labels are cached (``cache``, default ``site-labels.parquet`` in xasml's cache folder,
    ``$XASML_CACHE`` or ``~/.cache/xasml``) and the shipped Cu labels are reused.

    Raises
    ------
    DataError
        If nothing of ``elements`` is found.
    """
    import pandas as pd

    from xasml.datasets.format import read_dataset

    frames, roots = [], []
    for p in map(Path, paths):
        if p.suffix == ".parquet":
            try:
                df, meta = read_dataset(p)
            except DataError:
                roots.append(p)
                continue
            if meta.get("kind") == "sites":
                frames.append(df)
                continue
        roots.append(p)
    if roots:
        from xasml.utils import cache_dir

        seed = SHIPPED_LABELS
        df, _ = build_site_table(roots, elements, cache=cache or cache_dir() / "site-labels.parquet",
                                 seed_cache=seed if seed.exists() else None)
        frames.append(df)
    if not frames:
        raise DataError("no data: give site tables (xasml local sites) or FEFF folders with --data")
    out = pd.concat(frames, ignore_index=True)
    out = out[out["absorbing_element"].isin(list(elements))].reset_index(drop=True)
    # metals (structures of metals only) are on their own energy scale (energy_scale.scale_key)
    from xasml.preprocess.energy_scale import METAL_SUFFIX, scale_key

    out["simulation"] = [scale_key(s, f) for s, f in zip(out["simulation"], out.get("formula", [None] * len(out)))]
    # tables labelled before metallic structures were recognised (xasml.labels.site.oxidation_states:
    # metals only -> 0) left their oxidation state unknown; the same rule applies here
    metal = out["simulation"].str.endswith(METAL_SUFFIX) & out["oxidation_state"].isna()
    out.loc[metal, "oxidation_state"] = 0.0
    out.loc[metal, "oxidation_status"] = "ok"
    if out.empty:
        raise DataError(f"{', '.join(map(str, paths))}: no site spectra of {', '.join(elements)}")
    return out


def spectra_matrix(frame: pd.DataFrame, cfg: "SiteGrid", scales: dict | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Model-input spectra: each row on its element's grid, on the experimental energy scale.

    Parameters
    ----------
    frame : DataFrame
        Site table (``energy``/``mu`` absolute eV, ``absorbing_element``, ``simulation``).
    cfg : SiteGrid
        The grid: :class:`SiteGrid`, or any object with its fields and ``rel_grid()`` (such as
        :class:`xasml.local.multi.MultiConfig`).
    scales : dict, optional
        ``{simulation: {element: offset_eV}}``; default the shipped energy scales.

    Returns
    -------
    X : ndarray, shape (n_kept, n_points)
        Max-normalised spectra (Carbone et al. 2019), or FEFF's edge-step normalised μ as it is
        (``normalization="edge-step"``).
    keep : ndarray of bool, shape (n,)
        Rows used: an energy offset is known for their (element, simulation) and they cover the
        grid to within 1 eV at the high end, and at the low end too unless they start in their
        pre-edge (then they are extended flat, as :func:`~xasml.preprocess.grid.interpolate_mu`
        with ``fill="edge"`` does at prediction).
    report : dict
        Rows dropped and why.
    """
    from xasml.edges import edge_energy
    from xasml.preprocess.augment import max_normalize
    from xasml.preprocess.energy_scale import energy_scales
    from xasml.preprocess.grid import interpolate_mu

    scales = energy_scales() if scales is None else scales
    rel = cfg.rel_grid()
    rows, keep = [], np.zeros(len(frame), bool)
    no_offset, short = {}, 0
    for i, (el, sim, e, mu) in enumerate(zip(frame["absorbing_element"], frame["simulation"], frame["energy"],
                                             frame["mu"])):
        off = scales.get(sim, {}).get(el)
        if off is None:
            no_offset[f"{el} {sim}"] = no_offset.get(f"{el} {sim}", 0) + 1
            continue
        grid = edge_energy(el, cfg.edge) + rel
        e, mu = np.asarray(e, float) + off, np.asarray(mu, float)
        # a simulation that starts in its own pre-edge (mu[0] below PRE_EDGE_FRACTION of its
        # maximum; FEFF starts a few eV below its edge) is extended flat below its first point
        starts_low = e[0] <= grid[0] + 1.0 or mu[0] <= PRE_EDGE_FRACTION * mu.max()
        if not starts_low or e[-1] < grid[-1] - 1.0:
            short += 1
            continue
        rows.append(interpolate_mu(e, mu, grid, kind="cubic", fill="edge"))
        keep[i] = True
    X = np.asarray(rows) if rows else np.zeros((0, cfg.n_points))
    if cfg.normalization == "max":
        X = max_normalize(X) if rows else X
    return X.astype(np.float32), keep, {"no_energy_offset": no_offset, "not_covering_grid": short}


def one_hot(elements: Sequence[str], order: Sequence[str]) -> np.ndarray:
    """One-hot codes, shape (n, len(order))."""
    idx = {e: i for i, e in enumerate(order)}
    out = np.zeros((len(elements), len(order)), np.float32)
    for r, e in enumerate(elements):
        out[r, idx[e]] = 1.0
    return out


def balance_rows(rows: np.ndarray, elements: np.ndarray, target: int) -> np.ndarray:
    """Row indices with each element's rows repeated towards ``target`` rows (1-20 times): the
    element balancing of universal models.

    Parameters
    ----------
    rows : ndarray of int, shape (n,)
    elements : ndarray of str, shape (n_all,)
        Absorbing element of every row of the table ``rows`` index.
    target : int
        Rows wanted per element (0: no balancing).
    """
    if target <= 0 or len(rows) == 0:
        return rows
    out = []
    for el in np.unique(elements[rows]):
        r = rows[elements[rows] == el]
        out.append(np.tile(r, int(np.clip(round(target / len(r)), 1, 20))))
    return np.concatenate(out)
