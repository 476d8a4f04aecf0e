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
from pathlib import Path
from typing import Any, Sequence

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
