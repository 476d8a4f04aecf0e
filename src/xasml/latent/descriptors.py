"""Structural descriptors of an absorbing site, the targets of the RankAAE rank constraint.

The perspective ``../shared/papers/002`` (§II.C) ranks five latent dimensions against five
descriptors of the absorbing site: oxidation state (OS), coordination number (CN), "the average
CN of the nearest-neighbor oxygen atoms", "the nearest-neighbor radial standard deviation" and
"the minimum oxygen-oxygen distance of the nearest neighbors". OS and CN come from the site
labels (:mod:`xasml.labels.site`: bond valence, ChemEnv). The three geometric ones are computed
here from the structure, with the first shell defined by the rule the labeller uses for ChemEnv
(Carbone et al., Phys. Rev. Materials 3, 033604 (2019), §II.B): every neighbour closer than
``distance_cutoff`` (1.2) times the nearest-neighbour distance. For the Cu set, whose sites are
not all oxides, "oxygen" is read as "first-shell ligand" (any element):

* ``ligand_cn`` - mean over the first-shell ligands of their own coordination number (same
  1.2 x nearest-distance rule around each ligand);
* ``shell_radial_std`` - population standard deviation of the absorber-ligand distances (Å);
* ``min_ligand_distance`` - smallest distance between two first-shell ligands (Å; undefined,
  NaN, for one ligand).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xasml.errors import DataError

log = logging.getLogger(__name__)

#: descriptor names, in the order of the constrained latent dimensions 0..4
DESCRIPTORS = ("oxidation_state", "coordination_number", "ligand_cn", "shell_radial_std", "min_ligand_distance")
#: descriptors computed from the structure (the others come from the site labels)
GEOMETRIC = ("ligand_cn", "shell_radial_std", "min_ligand_distance")


def _shell(structure, index: int, distance_cutoff: float, r_max: float):
    """First-shell neighbours of site ``index``: those within ``distance_cutoff`` x the nearest distance."""
    nbs = structure.get_neighbors(structure[index], r_max)
    if not nbs:
        return []
    d_min = min(n.nn_distance for n in nbs)
    return [n for n in nbs if n.nn_distance <= distance_cutoff * d_min + 1e-6]


def site_descriptors(structure, index: int, distance_cutoff: float = 1.2, r_max: float = 4.5) -> dict:
    """Geometric descriptors of one absorbing site (seed 002 §II.C; first shell as Carbone et al. 2019 §II.B).

    Parameters
    ----------
    structure : pymatgen.core.Structure
    index : int
        0-based index of the absorbing site.
    distance_cutoff : float
        First shell: neighbours within ``distance_cutoff`` x the nearest-neighbour distance (1.2).
    r_max : float
        Search radius in Å (neighbours beyond it are never in the shell).

    Returns
    -------
    dict
        ``ligand_cn`` (mean CN of the first-shell ligands), ``shell_radial_std`` (Å),
        ``min_ligand_distance`` (Å), ``shell_size`` (number of first-shell ligands); NaN where
        undefined (no neighbour within ``r_max``, or a single ligand for the minimum distance).

    Raises
    ------
    DataError
        If ``index`` is out of range.
    """
    if not 0 <= int(index) < len(structure):
        raise DataError(f"site index {index} out of range (structure has {len(structure)} sites)")
    shell = _shell(structure, int(index), distance_cutoff, r_max)
    out = {"ligand_cn": np.nan, "shell_radial_std": np.nan, "min_ligand_distance": np.nan, "shell_size": len(shell)}
    if not shell:
        return out
    d = np.array([n.nn_distance for n in shell])
    out["shell_radial_std"] = float(d.std())
    out["ligand_cn"] = float(np.mean([len(_shell(structure, n.index, distance_cutoff, r_max)) for n in shell]))
    if len(shell) > 1:
        xyz = np.array([n.coords for n in shell])
        dd = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
        out["min_ligand_distance"] = float(dd[np.triu_indices(len(shell), 1)].min())
    return out


def compute_descriptors(sites: pd.DataFrame, cache: str | Path | None = None, distance_cutoff: float = 1.2) -> pd.DataFrame:
    """Geometric descriptors of every site of ``sites`` (one structure read per material), cached.

    Parameters
    ----------
    sites : pandas.DataFrame
        Columns ``material_id``, ``absorbing_index``, ``structure_path`` (as from
        :func:`xasml.datasets.local.discover_sites`).
    cache : str or Path, optional
        Parquet file: rows already there (same material and site) are reused, new ones added.
    distance_cutoff : float
        See :func:`site_descriptors`.

    Returns
    -------
    pandas.DataFrame
        ``material_id``, ``absorbing_index``, :data:`GEOMETRIC` columns, ``shell_size`` and
        ``descriptor_error`` (empty when fine); a structure that cannot be read gives NaN and an
        error text, never an exception.
    """
    from pymatgen.core import Structure

    from xasml.utils import progress

    cols = ["material_id", "absorbing_index", *GEOMETRIC, "shell_size", "descriptor_error"]
    done = pd.DataFrame(columns=cols)
    if cache is not None and Path(cache).exists():
        done = pd.read_parquet(cache)
    have = set(zip(done["material_id"], done["absorbing_index"].astype(int)))
    todo = sites[[(m, int(i)) not in have for m, i in zip(sites["material_id"], sites["absorbing_index"])]]
    rows = []
    for (mat, path), grp in progress(todo.groupby(["material_id", "structure_path"], sort=True),
                                     desc="descriptors", total=todo.groupby(["material_id", "structure_path"]).ngroups):
        try:
            if not path:
                raise DataError("no structure file")
            s = Structure.from_file(path)
        except Exception as exc:  # a bad structure is recorded, not fatal
            for i in grp["absorbing_index"]:
                rows.append({"material_id": mat, "absorbing_index": int(i), "ligand_cn": np.nan,
                             "shell_radial_std": np.nan, "min_ligand_distance": np.nan, "shell_size": 0,
                             "descriptor_error": f"{type(exc).__name__}: {str(exc)[:120]}"})
            continue
        for i in grp["absorbing_index"]:
            try:
                rows.append({"material_id": mat, "absorbing_index": int(i),
                             **site_descriptors(s, int(i), distance_cutoff), "descriptor_error": ""})
            except Exception as exc:
                rows.append({"material_id": mat, "absorbing_index": int(i), "ligand_cn": np.nan,
                             "shell_radial_std": np.nan, "min_ligand_distance": np.nan, "shell_size": 0,
                             "descriptor_error": f"{type(exc).__name__}: {str(exc)[:120]}"})
    new = pd.DataFrame(rows, columns=cols)
    out = pd.concat([done, new], ignore_index=True) if len(done) else new
    out["absorbing_index"] = out["absorbing_index"].astype(int)
    out["shell_size"] = out["shell_size"].astype(int)
    if cache is not None and len(new):
        from xasml.utils import atomic_path

        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(Path(cache)) as tmp:
            out.to_parquet(tmp, index=False)
    return out


def descriptor_matrix(table: pd.DataFrame, names: Sequence[str] = DESCRIPTORS) -> np.ndarray:
    """The descriptor columns of a site table as a float array, NaN where unknown.

    Parameters
    ----------
    table : pandas.DataFrame
        Holds the columns ``names`` (nullable integers allowed).
    names : sequence of str

    Returns
    -------
    ndarray, shape (n_sites, len(names))

    Raises
    ------
    DataError
        If a column is missing.
    """
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise DataError(f"site table lacks descriptor column(s) {missing}")
    return np.column_stack([pd.to_numeric(table[c], errors="coerce").astype(float).to_numpy() for c in names])
