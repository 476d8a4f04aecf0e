"""Data set of site spectra with local-structure labels (coordination environment, CN, oxidation state).

Builds what Carbone et al., Phys. Rev. Materials 3, 033604 (2019), §II.A-B describe, for any
absorbing element:

1. find the site spectra (``<root>/**/<material>/FEFF-XANES/<index>_<El>/xmu.dat``, the structure
   next to them as ``POSCAR`` or ``structure.cif``) - the layout of OmniXAS / Lightshow and of the
   xasml FEFF10 sets;
2. label every absorbing site from its structure (:mod:`xasml.labels.site`, cached);
3. choose one energy grid for the element from the data: ``n_points`` (100) points spaced
   ``step`` (0.5 eV), starting where 95 % of the spectra have data (:func:`choose_grid`); for
   the Cu FEFF set this is 8985.1-9034.6 eV, the median edge energy ``e0`` (steepest rise) being
   ~8998 eV. Energies stay absolute, so chemical shifts (oxidation state) are kept, and the
   pre-edge region used in the ablation is the part of the grid below the median ``e0``;
4. resample each spectrum with a cubic spline and scale it to maximum 1 (Figure 2);
5. drop near-duplicates: of two spectra whose mean absolute difference on the grid is below
   0.015, only the first (in material / site order) is kept (§II.A);
6. split into train / validation / test, stratified by class and grouped by material, so that no
   material is in two parts (checked).

Classifier inputs are then standardised feature by feature on the training split (§II.C), which
the estimators do themselves (:mod:`xasml.models.local_nets`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from xasml.errors import DataError
from xasml.preprocess.augment import augment, max_normalize, shifted_resample
from xasml.preprocess.grid import EnergyGrid
from xasml.spectrum import Spectrum

log = logging.getLogger(__name__)

_SITE_DIR = re.compile(r"^(\d+)_([A-Z][a-z]?)$")
STRUCTURE_NAMES = ("POSCAR", "structure.cif", "CONTCAR")
SPLITS = ("train", "val", "test")


def discover_sites(root: str | Path, element: str) -> pd.DataFrame:
    """List the site spectra of one absorbing element under ``root``.

    Parameters
    ----------
    root : str or Path
        Data folder, e.g. ``../shared/data/omnixas-cu-feff``, or a packed FEFF dataset
        (``xasml simulate pack``, unpacked once into the cache).
    element : str
        Absorbing element symbol.

    Returns
    -------
    pandas.DataFrame
        Columns ``material_id``, ``absorbing_index``, ``xmu_path``, ``structure_path`` sorted by
        material and site.

    Raises
    ------
    DataError
        If ``root`` does not exist or holds no ``FEFF-XANES/<index>_<element>/xmu.dat`` file.
    """
    from xasml.simulate.pack import feff_root

    if not Path(root).exists():
        raise DataError(f"{root}: data folder not found (pass --data or set XASML_DATA)")
    root = feff_root(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a data folder or a packed FEFF dataset (xasml simulate pack)")
    rows = []
    for xmu in sorted(root.rglob(f"FEFF-XANES/*_{element}/xmu.dat")):
        m = _SITE_DIR.match(xmu.parent.name)
        if not m:
            continue
        mat_dir = xmu.parent.parent.parent
        struct = next((mat_dir / n for n in STRUCTURE_NAMES if (mat_dir / n).exists()), None)
        rows.append({"material_id": mat_dir.name, "absorbing_index": int(m.group(1)), "xmu_path": str(xmu),
                     "structure_path": str(struct) if struct else ""})
    if not rows:
        raise DataError(f"{root}: no site spectra FEFF-XANES/<index>_{element}/xmu.dat found")
    return pd.DataFrame(rows).sort_values(["material_id", "absorbing_index"]).reset_index(drop=True)


def choose_grid(spectra: Sequence[Spectrum], n_points: int = 100, step: float = 0.5,
                pre_edge: float | None = None, coverage: float = 95.0) -> tuple[EnergyGrid, float]:
    """One grid for one element's spectra: ``n_points`` points ``step`` eV apart.

    The paper chooses, per absorbing element, the grid with "the maximum amount of available
    information" at ~0.5 eV (Carbone et al. 2019, §II.A). Here the grid starts where
    ``coverage`` % of the spectra have data (the ``coverage`` percentile of their first energies),
    so that it holds as much of the pre-edge and edge as the calculations provide without
    padding, and extends ``step * (n_points - 1)`` eV above (49.5 eV by default). With
    ``pre_edge`` given it starts instead at median(e0) - ``pre_edge``.

    Parameters
    ----------
    spectra : sequence of Spectrum
    n_points : int
    step : float
        Spacing, eV.
    pre_edge : float, optional
        Start this many eV below the median edge energy instead.
    coverage : float
        Percentile of the first energies used as the start.

    Returns
    -------
    (EnergyGrid, float)
        The grid and the median edge energy e0 (eV, :func:`xasml.preprocess.normalize.find_e0`).

    Raises
    ------
    DataError
        If ``spectra`` is empty.
    """
    if not len(spectra):
        raise DataError("choose_grid needs at least one spectrum")
    from xasml.preprocess.normalize import find_e0

    e0 = float(np.median([find_e0(s.energy, s.mu) for s in spectra]))
    if pre_edge is None:
        start = float(np.percentile([s.energy[0] for s in spectra], coverage))
    else:
        start = e0 - pre_edge
    start = round(start, 2)
    return EnergyGrid(start, start + step * (n_points - 1), n_points), e0


def deduplicate(X: np.ndarray, threshold: float = 0.015, chunk: int = 512) -> np.ndarray:
    """Mask of rows to keep after near-duplicate removal (Carbone et al. 2019, §II.A).

    Rows are visited in order; a row is dropped when its mean absolute difference to an
    earlier *kept* row is below ``threshold``.

    Parameters
    ----------
    X : ndarray, shape (n, m)
        Max-normalised spectra on a common grid.
    threshold : float
        Mean absolute difference below which two spectra are duplicates (0.015 in the paper).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    from scipy.spatial.distance import cdist

    X = np.asarray(X, float)
    n = len(X)
    keep = np.ones(n, dtype=bool)
    if n < 2 or threshold <= 0:
        return keep
    # candidate pairs (i < j) below threshold, found chunk by chunk
    close: list[list[int]] = [[] for _ in range(n)]
    for a in range(0, n, chunk):
        D = cdist(X[a:a + chunk], X, metric="cityblock") / X.shape[1]
        ii, jj = np.nonzero(D < threshold)
        for i, j in zip(ii + a, jj):
            if j > i:
                close[i].append(int(j))
    for i in range(n):
        if keep[i]:
            for j in close[i]:
                keep[j] = False
    return keep


def min_materials(fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> int:
    """Fewest materials :func:`grouped_stratified_split` can split with ``fractions``.

    Parameters
    ----------
    fractions : (train, val, test)
        Target fractions.

    Returns
    -------
    int
        The smallest number of materials that leaves one fold for every non-empty part.
    """
    _, f_val, f_test = fractions
    k_test = max(2, int(round(1.0 / f_test))) if f_test > 0 else 1
    k_val = max(2, int(round((1.0 - f_test) / f_val))) if f_val > 0 else 1
    g = max(k_test, 2)
    while g - int(np.ceil(g / k_test)) < k_val:
        g += 1
    return g


def grouped_stratified_split(y: Sequence, groups: Sequence, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                             seed: int = 0) -> np.ndarray:
    """Assign each sample to train / val / test, stratified by ``y`` and grouped by ``groups``.

    Uses scikit-learn's ``StratifiedGroupKFold`` with ``round(1 / fraction)`` folds: the test part
    is one fold, the validation part one fold of the rest.

    Parameters
    ----------
    y : sequence
        Class of each sample (rare classes may be merged by the caller).
    groups : sequence
        Material of each sample; a material never lands in two parts.
    fractions : (train, val, test)
        Target fractions; ``val`` may be 0.
    seed : int

    Returns
    -------
    ndarray of str, shape (n,)
        ``"train"``, ``"val"`` or ``"test"``.

    Raises
    ------
    DataError
        If there are fewer materials than folds (the message says how many sites and materials
        are needed), or a material ends up in two parts (cannot happen unless the splitter
        misbehaves).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y).astype(str)
    groups = np.asarray(groups).astype(str)
    n = len(y)
    out = np.full(n, "train", dtype=object)
    f_train, f_val, f_test = fractions
    rest = np.arange(n)
    for name, frac, denom in (("test", f_test, 1.0), ("val", f_val, 1.0 - f_test)):
        if frac <= 0:
            continue
        k = max(2, int(round(denom / frac)))
        n_groups = len(np.unique(groups[rest]))
        if len(rest) < k or n_groups < k:
            raise DataError(f"{n} site(s) from {len(np.unique(groups))} material(s) are too few to split "
                            f"train/val/test {f_train:g}/{f_val:g}/{f_test:g} by material: the {name} part is one of "
                            f"{k} folds, so at least {k} materials (with their sites) are needed there, "
                            f"{n_groups} remain; expected a data folder with many more materials")
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        _, fold = next(cv.split(np.zeros(len(rest)), y[rest], groups[rest]))
        out[rest[fold]] = name
        rest = np.setdiff1d(rest, rest[fold])
    check_group_split(out, groups)
    return out.astype(str)


def check_group_split(split: Sequence[str], groups: Sequence) -> None:
    """Raise :class:`DataError` if any group (material) appears in more than one split."""
    df = pd.DataFrame({"split": np.asarray(split), "group": np.asarray(groups)})
    n = df.groupby("group")["split"].nunique()
    bad = n[n > 1]
    if len(bad):
        raise DataError(f"split leaks {len(bad)} material(s) across parts, e.g. {bad.index[0]!r}")


@dataclass
class LocalDataset:
    """Site spectra of one element with labels, on one grid, with a grouped split.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per kept site: ``material_id``, ``absorbing_index``, the label columns of
        :data:`xasml.labels.site.LABEL_COLUMNS`, ``split`` and ``xmu_path``.
    spectra : list of Spectrum
        The raw site spectra (absolute energies), aligned with ``table``.
    grid : EnergyGrid
    e0 : float
        Median edge energy (eV) used to place the grid.
    X : ndarray, shape (n_sites, n_points)
        Spline-resampled, max-normalised spectra.
    element : str
    info : dict
        Counts from the build (found, failed, duplicates removed, ...).
    """

    table: pd.DataFrame
    spectra: list
    grid: EnergyGrid
    e0: float
    X: np.ndarray
    element: str
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    def subset(self, mask: np.ndarray) -> "LocalDataset":
        """The rows where ``mask`` is true (same grid)."""
        mask = np.asarray(mask, dtype=bool)
        return LocalDataset(self.table[mask].reset_index(drop=True), [s for s, k in zip(self.spectra, mask) if k],
                            self.grid, self.e0, self.X[mask], self.element, dict(self.info))

    def split_mask(self, name: str) -> np.ndarray:
        """Boolean mask of one split (``"train"``, ``"val"``, ``"test"``)."""
        return (self.table["split"] == name).to_numpy()

    def features(self, split: str | None = None, shift: float = 0.0, noise_sigma: float = 0.0,
                 seed: int = 0) -> np.ndarray:
        """Max-normalised spectra of a split, optionally shifted by ``shift`` eV and with noise.

        Returns
        -------
        ndarray, shape (n, n_points)
        """
        rows = np.arange(len(self)) if split is None else np.flatnonzero(self.split_mask(split))
        if shift == 0.0:
            X = self.X[rows].copy()
        else:
            X = max_normalize(shifted_resample([self.spectra[i] for i in rows], self.grid.energy, shift))
        if noise_sigma > 0:
            X = X + np.random.default_rng(seed).normal(0.0, noise_sigma, size=X.shape)
        return X

    def training_arrays(self, target: str, shifts: Sequence[float] = (-2.0, -1.0, 1.0, 2.0),
                        noise_sigma: float = 0.03, noise_copies: int = 0, noise_on_shifted: bool = True,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Augmented training matrix and targets (training split only).

        Parameters
        ----------
        target : str
            Column of :attr:`table` to use as target.
        shifts, noise_sigma, noise_copies, noise_on_shifted, seed
            See :func:`xasml.preprocess.augment.augment`.
        """
        rows = np.flatnonzero(self.split_mask("train"))
        y = self.table[target].to_numpy()[rows]
        X, y, _ = augment([self.spectra[i] for i in rows], self.grid.energy, y, shifts=shifts,
                          noise_sigma=noise_sigma, noise_copies=noise_copies,
                          noise_on_shifted=noise_on_shifted, seed=seed)
        return X, y

    def to_frame(self) -> pd.DataFrame:
        """The data set in the xasml dataset schema (gridded spectra) with label columns."""
        from xasml.datasets.format import spectra_to_frame

        specs = [s.replace(energy=self.grid.energy, mu=x, kind="norm") for s, x in zip(self.spectra, self.X)]
        extra = {c: self.table[c].tolist() for c in self.table.columns
                 if c not in ("material_id", "absorbing_index", "xmu_path")}
        return spectra_to_frame(specs, extra)


def load_spectra(sites: pd.DataFrame, element: str) -> tuple[list, list[str]]:
    """Read the ``xmu.dat`` of every row of ``sites``; returns (spectra or None, errors)."""
    from xasml.io.feff import read_feff_xmu

    spectra, errors = [], []
    for r in sites.itertuples(index=False):
        try:
            spectra.append(read_feff_xmu(r.xmu_path, absorbing_element=element, material_id=r.material_id,
                                         absorbing_index=r.absorbing_index))
            errors.append("")
        except Exception as exc:  # a bad file is recorded and skipped
            spectra.append(None)
            errors.append(str(exc)[:200])
    return spectra, errors


def build_local_dataset(root: str | Path, element: str, labels: pd.DataFrame, n_points: int = 100,
                        step: float = 0.5, pre_edge: float | None = None, dedup_threshold: float = 0.015,
                        split_fractions: Sequence[float] = (0.8, 0.1, 0.1), min_class_for_strata: int = 20,
                        seed: int = 0, sites: pd.DataFrame | None = None) -> LocalDataset:
    """Build the labelled, gridded, de-duplicated and split data set of one element.

    Parameters
    ----------
    root : str or Path
        Data folder (see :func:`discover_sites`).
    element : str
        Absorbing element.
    labels : pandas.DataFrame
        Site labels (from :func:`xasml.labels.site.label_sites`) for the sites under ``root``.
    n_points, step, pre_edge : see :func:`choose_grid`.
    dedup_threshold : float
        See :func:`deduplicate`.
    split_fractions : (train, val, test)
    min_class_for_strata : int
        Environments rarer than this are pooled as ``"other"`` for stratification only.
    seed : int
    sites : pandas.DataFrame, optional
        Output of :func:`discover_sites` if already computed.

    Returns
    -------
    LocalDataset
        All sites whose spectrum could be read and whose environment is known.
    """
    sites = discover_sites(root, element) if sites is None else sites
    spectra, errors = load_spectra(sites, element)
    lab = labels.set_index(["material_id", "absorbing_index"])
    keys = list(zip(sites["material_id"], sites["absorbing_index"]))
    missing = [k for k in keys if k not in lab.index]
    if missing:
        raise DataError(f"no labels for {len(missing)} site(s), e.g. {missing[0]}: label them first")
    table = lab.loc[keys].reset_index()
    table["xmu_path"] = sites["xmu_path"].to_numpy()
    table["read_error"] = errors
    ok = (table["read_error"] == "") & table["environment"].notna()
    info = {"n_found": int(len(table)), "n_unreadable": int((table["read_error"] != "").sum()),
            "n_unlabelled": int(table["environment"].isna().sum())}
    table = table[ok].reset_index(drop=True).drop(columns=["read_error"])
    spectra = [s for s, k in zip(spectra, ok) if k]
    grid, e0 = choose_grid(spectra, n_points=n_points, step=step, pre_edge=pre_edge)
    X = max_normalize(shifted_resample(spectra, grid.energy, 0.0, kind="cubic"))
    keep = deduplicate(X, dedup_threshold)
    info["n_duplicates_removed"] = int((~keep).sum())
    table = table[keep].reset_index(drop=True)
    spectra = [s for s, k in zip(spectra, keep) if k]
    X = X[keep]
    counts = table["environment"].value_counts()
    strata = table["environment"].where(table["environment"].map(counts) >= min_class_for_strata, "other")
    table["split"] = grouped_stratified_split(strata, table["material_id"], split_fractions, seed=seed)
    info["n_sites"] = int(len(table))
    info["n_materials"] = int(table["material_id"].nunique())
    info["split_sizes"] = {s: int((table["split"] == s).sum()) for s in SPLITS}
    info["grid"] = grid.to_dict()
    info["e0_median"] = e0
    return LocalDataset(table, spectra, grid, e0, X, element, info)


def select_protocol(ds: LocalDataset, classes: Sequence[str] | None = None, min_count: int = 0,
                    ligands: Sequence[str] | None = None) -> tuple[LocalDataset, list[str]]:
    """Restrict a data set to a classification protocol.

    Parameters
    ----------
    ds : LocalDataset
    classes : sequence of str, optional
        Environments to keep (e.g. ``["T:4", "S:5", "O:6"]``); default: every environment with at
        least ``min_count`` sites (counted after the ligand filter).
    min_count : int
        Threshold used when ``classes`` is None (50 in protocol b).
    ligands : sequence of str, optional
        Keep only sites whose ChemEnv neighbours are all of these elements (``["O"]`` = oxide
        sites, protocol a).

    Returns
    -------
    (LocalDataset, list of str)
        The subset and its class list (sorted).
    """
    t = ds.table
    mask = np.ones(len(t), dtype=bool)
    if ligands:
        allowed = set(ligands)
        mask &= t["ligands"].map(lambda s: bool(s) and set(s.split("-")) <= allowed).to_numpy()
    if classes is None:
        counts = t.loc[mask, "environment"].value_counts()
        classes = sorted(c for c, n in counts.items() if n >= min_count)
    classes = sorted(classes)
    mask &= t["environment"].isin(classes).to_numpy()
    sub = ds.subset(mask)
    for s in SPLITS:
        present = set(sub.table.loc[sub.split_mask(s), "environment"])
        if s != "val" and present != set(classes):
            log.warning("split %s lacks class(es) %s", s, sorted(set(classes) - present))
    return sub, list(classes)
