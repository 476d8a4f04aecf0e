"""Forward-model datasets: structures + spectra -> (wACSF descriptors, spectra on one grid).

Three sources are understood (see :func:`load_forward_data`, which picks by what the path holds):

* an XANESNET-style folder: ``xyz*/<id>.xyz`` (atomic numbers in column 1, absorber first) and
  ``xanes*/<id>.txt`` (FDMNES, 2 header lines), matched by file stem (``xanesnet-fe/preconv``);
* an XANESNET ``.npz`` with precomputed descriptors ``x`` and spectra ``y`` (``k_edge_v.npz``:
  226 points on −15…+60 eV relative to the edge, already convolved);
* a FEFF crystal tree: ``<root>/<material>/POSCAR`` and ``<root>/<material>/FEFF-XANES/<site>_<El>/xmu.dat``
  (``omnixas-cu-feff/FEFF/Cu``), one sample per absorbing site; spectra resampled onto a grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xasml.descriptors.wacsf import WACSF, site_environment, structure_environment
from xasml.errors import DataError
from xasml.spectrum import atomic_number
from xasml.edges import edge_energy
from xasml.preprocess.broaden import Broadening
from xasml.utils import fingerprint_arrays, progress

__all__ = ["ForwardDataset", "load_forward_data", "load_xanesnet_folder", "load_xanesnet_npz",
           "load_feff_crystals", "OMNIXAS_E_START"]

#: Start of the OmniXAS FEFF energy grids (eV; 141 points, 0.25 eV step), from OmniXAS's
#: ``config/data/transformations.yaml`` as recorded in ``omnixas-ml-data/energy_grid.json``.
OMNIXAS_E_START = {"Co": 7709.282, "Cr": 5989.168, "Cu": 8983.173, "Fe": 7111.23, "Mn": 6537.886,
                   "Ni": 8332.181, "Ti": 4964.504, "V": 5464.097}


@dataclass
class ForwardDataset:
    """Descriptors and target spectra of one absorbing element.

    Attributes
    ----------
    ids : list of str
        Sample ids (file stem, or ``<material>_<site>``).
    groups : list of str
        Group of each sample (material id) for group-aware splits.
    X : ndarray, shape (n, n_features)
        wACSF descriptors.
    y : ndarray, shape (n, n_points)
        Target spectra on ``energy``, after ``broadening``.
    energy : ndarray, shape (n_points,)
        Absolute energies, eV.
    element, edge : str
        Absorber and edge.
    descriptor : WACSF or None
        Descriptor parameters (None when the descriptors came precomputed).
    broadening : Broadening
        Broadening applied to the targets here.
    source : str
        Where the data came from.
    info : dict
        Anything else (target kind, precomputed broadening, counts).
    """

    ids: list
    groups: list
    X: np.ndarray
    y: np.ndarray
    energy: np.ndarray
    element: str
    edge: str = "K"
    descriptor: WACSF | None = None
    broadening: Broadening = field(default_factory=Broadening)
    source: str = ""
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        """SHA-256 of the descriptor and target arrays."""
        return fingerprint_arrays(self.X, self.y, self.energy)

    def subset(self, idx: np.ndarray) -> "ForwardDataset":
        """Rows ``idx`` as a new dataset."""
        idx = np.asarray(idx)
        return ForwardDataset([self.ids[i] for i in idx], [self.groups[i] for i in idx], self.X[idx], self.y[idx],
                              self.energy, self.element, self.edge, self.descriptor, self.broadening, self.source,
                              dict(self.info))

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (for run.json)."""
        return {"source": self.source, "n_samples": len(self), "n_groups": len(set(self.groups)),
                "n_features": int(self.X.shape[1]), "n_points": int(self.y.shape[1]),
                "energy_eV": [float(self.energy[0]), float(self.energy[-1])], "element": self.element,
                "edge": self.edge, "broadening": self.broadening.to_dict(),
                "descriptor": self.descriptor.to_dict() if self.descriptor else None, **self.info}


def _find_sub(root: Path, prefix: str) -> Path:
    cands = sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith(prefix))
    if not cands:
        raise DataError(f"{root}: no '{prefix}*' folder (expected xyz*/ and xanes*/ subfolders)")
    return cands[0]


def load_xanesnet_folder(root: str | Path, element: str = "Fe", edge: str = "K",
                         descriptor: WACSF | None = None, broadening: Broadening | None = None,
                         limit: int | None = None) -> ForwardDataset:
    """Read an XANESNET folder of ``xyz*/<id>.xyz`` structures and ``xanes*/<id>.txt`` FDMNES spectra.

    Parameters
    ----------
    root : str or Path
        Folder holding ``xyz*`` and ``xanes*`` subfolders (e.g. ``xanesnet-fe/preconv``).
    element, edge : str
        Absorber (the first atom of every xyz file) and edge.
    descriptor : WACSF, optional
        Default: the paper's 1 + 32 + 64 wACSF.
    broadening : Broadening, optional
        Applied to the spectra. Default: the paper's fixed-width Lorentzian with xraydb's
        core-hole width.
    limit : int, optional
        Read only the first ``limit`` samples (sorted by id).

    Returns
    -------
    ForwardDataset

    Raises
    ------
    DataError
        If the folders are missing, hold no matching pairs, or grids differ between files.
    """
    from xasml.io.structures import read_fdmnes, read_xyz

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    xyz_dir, xanes_dir = _find_sub(root, "xyz"), _find_sub(root, "xanes")
    xyz = {p.stem: p for p in xyz_dir.glob("*.xyz")}
    spec = {p.stem: p for p in xanes_dir.glob("*.txt")}
    ids = sorted(set(xyz) & set(spec))
    if not ids:
        raise DataError(f"{root}: no <id>.xyz in {xyz_dir.name}/ with a matching <id>.txt in {xanes_dir.name}/")
    if limit:
        ids = ids[:limit]
    descriptor = descriptor or WACSF()
    broadening = broadening if broadening is not None else Broadening("lorentzian", element=element, edge=edge)
    envs, ys = [], []
    energy = None
    for i in progress(ids, desc="reading"):
        mol = read_xyz(xyz[i])
        if mol.numbers[0] != atomic_number(element):
            raise DataError(f"{xyz[i]}: the first atom must be the absorber {element} (Z={atomic_number(element)}), "
                            f"found Z={mol.numbers[0]}")
        envs.append(site_environment(mol.numbers, mol.positions, 0, descriptor.r_cut, source=str(xyz[i])))
        s = read_fdmnes(spec[i], absorbing_element=element, edge=edge, material_id=i)
        if energy is None:
            energy = s.energy
        elif s.energy.shape != energy.shape or np.max(np.abs(s.energy - energy)) > 1e-3:
            ys.append(s.interpolate(energy).mu)
            continue
        ys.append(s.mu)
    X = descriptor.from_environments(envs)
    y = broadening.apply(energy, np.stack(ys))
    return ForwardDataset(ids, list(ids), X, y, np.asarray(energy), element, edge, descriptor,
                          broadening.resolved() if broadening.kind != "none" else broadening, str(root),
                          {"target": "FDMNES cross-section", "format": "xanesnet-folder"})


def load_xanesnet_npz(path: str | Path, element: str = "V", edge: str = "K", e_edge: float | None = None,
                      window: tuple[float, float] = (-15.0, 60.0)) -> ForwardDataset:
    """Read an XANESNET ``.npz`` of precomputed descriptors ``x`` and spectra ``y``.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.
    element, edge : str
        Absorber and edge (the file does not say).
    e_edge : float, optional
        Edge energy (eV) the window is relative to; default xraydb's tabulated value.
    window : (float, float)
        Energy window of ``y`` relative to the edge, eV (paper: −15 to +60).

    Returns
    -------
    ForwardDataset
        ``descriptor=None``; ``broadening`` kind ``"none"`` with ``info["precomputed_broadening"]``
        noting that the spectra were convolved by their authors.

    Raises
    ------
    DataError
        If ``x`` or ``y`` is missing or their lengths differ.
    """
    path = Path(path)
    try:
        data = np.load(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    for k in ("x", "y"):
        if k not in data:
            raise DataError(f"{path}: missing array {k!r} (expected 'x' descriptors and 'y' spectra)")
    X, y = np.asarray(data["x"], dtype=float), np.asarray(data["y"], dtype=float)
    if len(X) != len(y):
        raise DataError(f"{path}: 'x' has {len(X)} rows but 'y' has {len(y)}")
    e0 = edge_energy(element, edge) if e_edge is None else e_edge
    energy = e0 + np.linspace(window[0], window[1], y.shape[1])
    ids = [f"{path.stem}_{i:05d}" for i in range(len(X))]
    return ForwardDataset(ids, list(ids), X, y, energy, element, edge, None, Broadening("none"), str(path),
                          {"target": "convolved, edge-step normalised (precomputed)", "format": "xanesnet-npz",
                           "precomputed_broadening": "Lorentzian convolution by the data authors"})


def _structure_file(material_dir: Path) -> Path | None:
    """The structure of a material folder: ``POSCAR`` or ``structure.cif`` (None when neither)."""
    for name in ("POSCAR", "structure.cif"):
        if (material_dir / name).exists():
            return material_dir / name
    return None


def load_feff_crystals(root: str | Path, element: str = "Cu", edge: str = "K", energy: np.ndarray | None = None,
                       descriptor: WACSF | None = None, broadening: Broadening | None = None,
                       limit: int | None = None) -> ForwardDataset:
    """Read a FEFF crystal tree: ``<material>/POSCAR`` (or ``structure.cif``) + ``<material>/FEFF-XANES/<site>_<El>/xmu.dat``.

    Parameters
    ----------
    root : str or Path
        Folder of material folders (e.g. ``omnixas-cu-feff/FEFF/Cu``), a folder written by
        ``xasml simulate feff`` (``FEFF10/<key>/``), or a packed FEFF dataset (``.parquet``).
    element, edge : str
        Absorber and edge.
    energy : ndarray, optional
        Target grid (absolute eV). Default: the OmniXAS grid of ``element`` (141 points,
        0.25 eV) when known, else 141 points from the median first energy.
    descriptor : WACSF, optional
        Default: the paper's 1 + 32 + 64 wACSF.
    broadening : Broadening, optional
        Default none: FEFF spectra already include the core-hole lifetime.
    limit : int, optional
        Read only the first ``limit`` materials (sorted).

    Returns
    -------
    ForwardDataset
        ``groups`` are the material ids (split by material, never by site).

    Raises
    ------
    DataError
        If no material folder has both a POSCAR and site spectra.
    """
    from xasml.io.feff import read_feff_xmu
    from xasml.io.structures import read_structure

    from xasml.simulate.pack import feff_root

    root = feff_root(root)
    if (root / "FEFF10").is_dir():  # the layout of xasml simulate and the shared FEFF10 sets
        root = root / "FEFF10"
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    descriptor = descriptor or WACSF()
    broadening = broadening or Broadening("none")
    mats = sorted(p for p in root.iterdir() if _structure_file(p) is not None and (p / "FEFF-XANES").is_dir())
    if limit:
        mats = mats[:limit]
    if not mats:
        raise DataError(f"{root}: no <material>/POSCAR (or structure.cif) with <material>/FEFF-XANES/ "
                        "(FEFF crystal tree expected)")
    spectra, envs, ids, groups = [], [], [], []
    for m in progress(mats, desc="reading"):
        structure = read_structure(_structure_file(m), ordered=True)
        for f in sorted((m / "FEFF-XANES").glob(f"*_{element}/xmu.dat")):
            s = read_feff_xmu(f, absorbing_element=element, edge=edge, material_id=m.name)
            if s.absorbing_index is None or s.absorbing_index >= len(structure):
                raise DataError(f"{f}: site folder does not name a valid site index of {_structure_file(m)}")
            if structure[s.absorbing_index].specie.symbol != element:
                raise DataError(f"{f}: site {s.absorbing_index} of {_structure_file(m)} is "
                                f"{structure[s.absorbing_index].specie.symbol}, not {element}")
            spectra.append(s)
            envs.append(structure_environment(structure, s.absorbing_index, descriptor.r_cut))
            ids.append(f"{m.name}_{s.absorbing_index:03d}")
            groups.append(m.name)
    if energy is None:
        start = OMNIXAS_E_START.get(element, float(np.median([s.energy[0] for s in spectra])))
        energy = start + 0.25 * np.arange(141)
    energy = np.asarray(energy, dtype=float)
    y = np.stack([s.interpolate(energy).mu for s in spectra])
    y = broadening.apply(energy, y)
    X = descriptor.from_environments(envs)
    return ForwardDataset(ids, groups, X, y, energy, element, edge, descriptor, broadening, str(root),
                          {"target": "FEFF mu (edge-step normalised by FEFF)", "format": "feff-crystals"})


def load_forward_data(path: str | Path, element: str | None = None, **kwargs) -> ForwardDataset:
    """Load any of the supported sources, choosing by what ``path`` holds.

    Parameters
    ----------
    path : str or Path
        An ``.npz`` file, an XANESNET folder (``xyz*/`` + ``xanes*/``), a FEFF crystal tree
        (``POSCAR`` or ``structure.cif``; also the ``xasml simulate`` layout) or a packed FEFF
        dataset.
    element : str, optional
        Absorber; default Fe for XANESNET folders, V for ``.npz``, and the ``<site>_<El>``
        folder names for FEFF trees.
    **kwargs
        Passed to the loader.

    Raises
    ------
    DataError
        If ``path`` matches none of the layouts.
    """
    from xasml.simulate.pack import feff_root

    path = feff_root(path)
    if (path / "FEFF10").is_dir():
        path = path / "FEFF10"
    if path.suffix == ".npz":
        return load_xanesnet_npz(path, element=element or "V", **{k: v for k, v in kwargs.items()
                                                                   if k in ("edge", "e_edge", "window")})
    if not path.exists():
        raise DataError(f"{path}: not found")
    subs = [p.name.lower() for p in path.iterdir() if p.is_dir()]
    if any(s.startswith("xyz") for s in subs) and any(s.startswith("xanes") for s in subs):
        return load_xanesnet_folder(path, element=element or "Fe", **kwargs)
    for p in sorted(path.iterdir()):
        if _structure_file(p) is not None and (p / "FEFF-XANES").is_dir():
            if element is None:
                site = next((p / "FEFF-XANES").glob("*_*"), None)
                element = site.name.split("_", 1)[1] if site else "Cu"
            return load_feff_crystals(path, element=element, **kwargs)
    raise DataError(f"{path}: expected an .npz, an XANESNET folder (xyz*/ + xanes*/), a FEFF crystal "
                    "tree (<material>/POSCAR or structure.cif + <material>/FEFF-XANES/) or a packed FEFF dataset")
