"""RankAAE latent models of site spectra: data set, training, evaluation, model folder, encoding.

Method: seed perspective ``../shared/papers/002`` §II.C (Figure 4: RankAAE; Figure 6b: latent
scan). The data set is that of the local-structure models
(:func:`xasml.datasets.local.build_local_dataset`: one absolute energy grid per element, spline
resampling, maximum 1, near-duplicates removed, split train/val/test grouped by material), with
the descriptors of :mod:`xasml.latent.descriptors` attached. The RankAAE
(:class:`xasml.models.rankaae.RankAAE`) is trained on the training split, its latent dimensions
0..4 ranked against :data:`~xasml.latent.descriptors.DESCRIPTORS`, dimension 5 free; an
ensemble (:class:`~xasml.models.rankaae.LatentPropertyEnsemble`) maps latents to oxidation state
and coordination number. Candidates (seeds) are compared on the validation split only; the
test split (held-out materials) is evaluated once.

A model folder::

    <dir>/latent.json     element, edge, grid, reference spectrum, descriptor names, targets, provenance
    <dir>/rankaae/        the RankAAE (estimator.json + weights.safetensors)
    <dir>/properties/     the latent -> (OS, CN) ensemble

ships per element in ``xasml/data/latent/<El>/``; ``xasml latent fit`` writes it to
``<run>/models/latent/``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pydantic import Field, model_validator

from xasml.config import XasmlConfig
from xasml.errors import DataError
from xasml.latent.descriptors import DESCRIPTORS, GEOMETRIC, compute_descriptors, descriptor_matrix
from xasml.preprocess.grid import EnergyGrid
from xasml.utils import atomic_write_json

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "latent"
LABELS_DIR = Path(__file__).resolve().parents[1] / "data" / "local"
#: properties predicted from the latent vector (seed 002 §II.C)
TARGETS = ("oxidation_state", "coordination_number")
FORMAT = "xasml.latent.model/1"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data -------------------------------------------------------------------------------------

def site_labels(root: str | Path, element: str, sites: pd.DataFrame, labels: str | Path | None = None,
                cache: str | Path | None = None) -> pd.DataFrame:
    """Site labels (environment, CN, OS) for ``sites``: a given table, else the shipped one, else computed.

    Parameters
    ----------
    root : str or Path
        Data folder (for messages).
    element : str
    sites : pandas.DataFrame
        From :func:`xasml.datasets.local.discover_sites`.
    labels : str or Path, optional
        Parquet label table (:data:`xasml.labels.site.LABEL_COLUMNS`).
    cache : str or Path, optional
        Label cache for sites the tables lack (:func:`xasml.labels.site.label_sites`).

    Returns
    -------
    pandas.DataFrame
        Labels of every site that has a structure.

    Raises
    ------
    DataError
        If ``labels`` is given and does not exist.
    """
    from xasml.labels.site import label_sites

    if labels is not None and not Path(labels).exists():
        raise DataError(f"{labels}: label table not found")
    seed = Path(labels) if labels is not None else LABELS_DIR / f"labels_{element}.parquet"
    if seed.exists():
        table = pd.read_parquet(seed)
        have = set(zip(table["material_id"], table["absorbing_index"].astype(int)))
        if all((m, int(i)) in have for m, i in zip(sites["material_id"], sites["absorbing_index"])):
            return table
    g = sites.groupby("material_id", sort=True).agg(structure_path=("structure_path", "first"),
                                                   indices=("absorbing_index", list)).reset_index()
    tasks = [(r.material_id, r.structure_path, r.indices) for r in g.itertuples() if r.structure_path]
    return label_sites(tasks, cache=cache, seed_cache=seed if seed.exists() else None)


def build_latent_dataset(root: str | Path, element: str, labels: pd.DataFrame, descriptor_cache: str | Path | None = None,
                         seed: int = 0, sites: pd.DataFrame | None = None):
    """The local-structure data set of ``element`` with the RankAAE descriptors attached.

    Parameters
    ----------
    root : str or Path
        FEFF data folder (``<material>/FEFF-XANES/<index>_<El>/xmu.dat`` + structure).
    element : str
    labels : pandas.DataFrame
        Site labels (see :func:`site_labels`).
    descriptor_cache : str or Path, optional
        Parquet cache of the geometric descriptors.
    seed : int
        Split seed.
    sites : pandas.DataFrame, optional
        :func:`~xasml.datasets.local.discover_sites` output if already computed.

    Returns
    -------
    (LocalDataset, ndarray of shape (n_sites, 5))
        The data set (its ``table`` gains the geometric descriptor columns) and the descriptor
        matrix in the order of :data:`DESCRIPTORS`, NaN where unknown.
    """
    from xasml.datasets.local import build_local_dataset, discover_sites

    sites = discover_sites(root, element) if sites is None else sites
    ds = build_local_dataset(root, element, labels, seed=seed, sites=sites)
    desc = compute_descriptors(sites, cache=descriptor_cache)
    t = ds.table.merge(desc[["material_id", "absorbing_index", *GEOMETRIC]], on=["material_id", "absorbing_index"],
                       how="left")
    ds.table = t
    return ds, descriptor_matrix(t, DESCRIPTORS)


# -- model folder -----------------------------------------------------------------------------

@dataclass
class LatentModel:
    """A fitted RankAAE with its property ensemble and everything needed to prepare inputs.

    Attributes
    ----------
    rankaae : xasml.models.rankaae.RankAAE
    properties : xasml.models.rankaae.LatentPropertyEnsemble
        Latent -> :data:`TARGETS`.
    element, edge : str
    grid : EnergyGrid
        Absolute energies (eV) of the input spectra.
    reference_mu : ndarray, shape (n_points,)
        Mean max-normalised training spectrum (alignment reference of measured spectra).
    descriptors : list of str or None
        Name aligned with each latent dimension (None: free dimension).
    targets : list of str
    info : dict
        Provenance and metrics.
    path : Path or None
    """

    rankaae: Any
    properties: Any
    element: str
    edge: str
    grid: EnergyGrid
    reference_mu: np.ndarray
    descriptors: list
    targets: list = field(default_factory=lambda: list(TARGETS))
    info: dict = field(default_factory=dict)
    path: Path | None = None

    def save(self, path: str | Path) -> Path:
        """Write the model folder (``latent.json``, ``rankaae/``, ``properties/``; JSON + safetensors, no pickle).

        Parameters
        ----------
        path : str or Path
            Folder (created).

        Returns
        -------
        Path
            The folder.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.rankaae.save(path / "rankaae")
        self.properties.save(path / "properties")
        atomic_write_json(path / "latent.json", {
            "format": FORMAT, "element": self.element, "edge": self.edge, "grid": self.grid.to_dict(),
            "reference_mu": [round(float(v), 6) for v in self.reference_mu], "descriptors": self.descriptors,
            "targets": self.targets, "info": self.info})
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatentModel:
        """Read a model folder written by :meth:`save`.

        Raises
        ------
        DataError
            If ``latent.json`` is missing or malformed, or the parts do not fit together.
        """
        from xasml.models.rankaae import RankAAE
        from xasml.models.validate import load_checked_estimator

        path = Path(path)
        meta_path = path / "latent.json"
        if not meta_path.exists():
            raise DataError(f"{path}: not a latent model (no latent.json)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            model = cls(rankaae=RankAAE.load(path / "rankaae"),
                        properties=load_checked_estimator(path / "properties"),
                        element=str(meta["element"]), edge=str(meta.get("edge", "K")),
                        grid=EnergyGrid.from_dict(meta["grid"]),
                        reference_mu=np.asarray(meta["reference_mu"], dtype=float),
                        descriptors=list(meta["descriptors"]), targets=list(meta["targets"]),
                        info=meta.get("info", {}), path=path)
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{meta_path}: malformed latent model ({type(exc).__name__}: {exc})") from None
        n = int(model.grid.n_points)
        if model.reference_mu.shape != (n,) or model.rankaae.n_features_in_ != n:
            raise DataError(f"{meta_path}: grid ({n} points), reference spectrum ({model.reference_mu.size}) and "
                            f"network input ({model.rankaae.n_features_in_}) disagree")
        if len(model.descriptors) != int(model.rankaae.n_latent):
            raise DataError(f"{meta_path}: {len(model.descriptors)} descriptor names for {model.rankaae.n_latent} "
                            "latent dimensions")
        return model

    def prepare(self, spectra: Sequence, measured: Sequence[bool] | None = None) -> tuple[np.ndarray, list[dict]]:
        """Model input of spectra (measured ones background-subtracted, normalised and aligned first).

        The preprocessing of ``xasml local predict``
        (:func:`xasml.preprocess.normalize.preprocess_measured` against :attr:`reference_mu`, then
        cubic resampling on :attr:`grid` and scaling to maximum 1).

        Parameters
        ----------
        spectra : sequence of Spectrum
        measured : sequence of bool, optional
            Default: every spectrum not read from FEFF output.

        Returns
        -------
        X : ndarray, shape (n, n_points)
        records : list of dict
            Measured-data preprocessing record per spectrum (empty for computed ones).

        Raises
        ------
        SpectrumError
            If a spectrum is of another element, or measured preprocessing fails.
        """
        from xasml.local.predict import prepare_spectra

        return prepare_spectra(spectra, self.element, self.edge, self.grid.energy, self.reference_mu, measured,
                               what="latent model")

    def encode_array(self, X: np.ndarray) -> list[dict]:
        """Latent vector, descriptor names and (OS, CN) predictions of gridded spectra ``X`` (n, n_points).

        Returns
        -------
        list of dict
            ``latent`` (list of n_latent floats), ``descriptors`` (names, None for free
            dimensions) and, per target, ``{"prediction": float, "std": float}``.

        Raises
        ------
        DataError
            If the model gives non-finite outputs (corrupt weights).
        """
        Z = self.rankaae.transform(X)
        mean, std = self.properties.predict(Z, return_std=True)
        mean, std = np.atleast_2d(mean.T).T, np.atleast_2d(std.T).T
        if not (np.isfinite(Z).all() and np.isfinite(mean).all() and np.isfinite(std).all()):
            raise DataError(f"{self.path}: the latent model gives non-finite outputs; its weights are corrupt")
        out = []
        for i, z in enumerate(Z):
            r = {"latent": [round(float(v), 5) for v in z], "descriptors": list(self.descriptors)}
            for j, t in enumerate(self.targets):
                r[t] = {"prediction": round(float(mean[i, j]), 3), "std": round(float(std[i, j]), 3)}
            out.append(r)
        return out


def find_model(element: str | None = None, model: str | Path | None = None) -> Path:
    """The model folder to use: ``model`` (a model or run folder), else the shipped one of ``element``.

    Parameters
    ----------
    element : str, optional
        Absorbing element of the spectrum (selects ``xasml/data/latent/<El>/``).
    model : str or Path, optional
        A model folder (``latent.json``) or a run folder (``models/latent/``).

    Returns
    -------
    Path
        The model folder.

    Raises
    ------
    DataError
        If no model is found (the places looked at are listed) or no element is known.
    """
    if model is not None:
        root = Path(model)
        candidates = [root, root / "models" / "latent", root / "latent"]
    else:
        if not element:
            raise DataError("the file does not name its absorbing element; pass --model")
        candidates = [SHIPPED_DIR / element]
    for c in candidates:
        if (c / "latent.json").exists():
            return c
    if model is None:
        shipped = sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "latent.json").exists()) \
            if SHIPPED_DIR.exists() else []
        raise DataError(f"no latent model shipped for {element} (shipped: {', '.join(shipped) or 'none'}); "
                        "train one with `xasml latent fit` and pass --model")
    raise DataError(f"no latent model found; looked in {', '.join(str(c) for c in candidates)}")


def encode_files(files: Sequence[str | Path], model: str | Path | None = None) -> list[dict]:
    """Encode spectrum files (FEFF ``xmu.dat``, XDI, ...) into the RankAAE latent space.

    Parameters
    ----------
    files : sequence of path
    model : path, optional
        Model or run folder; default: the model shipped for each file's absorbing element.

    Returns
    -------
    list of dict
        One per file: ``file``, ``element``, ``latent``, ``descriptors``, ``oxidation_state`` and
        ``coordination_number`` (``prediction``, ``std``), ``alignment_shift_eV`` for measured
        spectra; or ``file`` and ``error`` when the file could not be used.
    """
    from xasml.errors import XasmlError
    from xasml.io.reader import read_spectrum

    cache: dict[Path, LatentModel] = {}
    out = []
    for f in files:
        try:
            s = read_spectrum(f)
            if isinstance(s, list):
                s = s[0]
            p = find_model(s.absorbing_element, model)
            if p not in cache:
                cache[p] = LatentModel.load(p)
            m = cache[p]
            X, recs = m.prepare([s])
            r = {"file": str(f), "element": m.element, **m.encode_array(X)[0]}
            if recs[0]:
                r["alignment_shift_eV"] = round(float(recs[0].get("shift_eV", 0.0)), 2)
            out.append(r)
        except (XasmlError, OSError, ValueError) as exc:
            out.append({"file": str(f), "error": str(exc)})
    return out


# -- evaluation -------------------------------------------------------------------------------

def tie_ceiling(d: np.ndarray) -> float:
    """Largest Spearman ρ a continuous latent can reach against a descriptor with ties.

    A latent that orders the sites perfectly by ``d`` but (being continuous) breaks its ties
    gets ρ = std(average ranks of d) / std(ranks 1..n) < 1; e.g. ~0.83 for the Cu oxidation
    states (1, 2, 3, two thirds of them 2).

    Parameters
    ----------
    d : ndarray, shape (n,)
        Known descriptor values.

    Returns
    -------
    float
    """
    from scipy.stats import spearmanr

    d = np.asarray(d, float)
    order = np.argsort(d, kind="stable")
    z = np.empty(len(d))
    z[order] = np.arange(len(d))
    return float(spearmanr(z, d).statistic)


def latent_metrics(rankaae, X: np.ndarray, D: np.ndarray, names: Sequence[str]) -> dict:
    """Spearman ρ of each constrained dimension with its descriptor, latent correlations, reconstruction error.

    Parameters
    ----------
    rankaae : RankAAE
    X : ndarray, shape (n, n_points)
    D : ndarray, shape (n, k)
        Descriptors (NaN where unknown), column j for latent dimension j.
    names : sequence of str
        Descriptor names (k).

    Returns
    -------
    dict
        ``spearman`` (name -> {rho, n, rho_max_with_ties}: see :func:`tie_ceiling`), ``latent_correlation`` (n_latent x n_latent Pearson
        matrix), ``max_abs_offdiag_correlation``, ``reconstruction_mae`` and ``reconstruction_rmse``
        (units of the spectrum maximum), ``n``.
    """
    from scipy.stats import spearmanr

    Z = rankaae.transform(X)
    R = rankaae.inverse_transform(Z)
    sp = {}
    for j, name in enumerate(names):
        ok = np.isfinite(D[:, j])
        if ok.sum() >= 3 and np.ptp(D[ok, j]) > 0:
            rho = float(spearmanr(Z[ok, j], D[ok, j]).statistic)
            ceiling = tie_ceiling(D[ok, j])
        else:
            rho = ceiling = float("nan")
        sp[name] = {"rho": round(rho, 4), "n": int(ok.sum()), "rho_max_with_ties": round(ceiling, 4)}
    C = np.corrcoef(Z.T) if len(Z) > 2 else np.eye(Z.shape[1])
    off = np.abs(C[~np.eye(len(C), dtype=bool)])
    return {"n": len(X), "spearman": sp, "latent_correlation": np.round(C, 3).tolist(),
            "max_abs_offdiag_correlation": round(float(off.max()), 4) if off.size else 0.0,
            "reconstruction_mae": round(float(np.abs(R - X).mean()), 5),
            "reconstruction_rmse": round(float(np.sqrt(((R - X) ** 2).mean())), 5)}


def property_metrics(properties, Z: np.ndarray, Y: np.ndarray, Y_train: np.ndarray, names: Sequence[str]) -> dict:
    """MAE of the ensemble and of the predict-the-training-mean baseline, and ±2σ coverage, per target.

    Parameters
    ----------
    properties : LatentPropertyEnsemble
        Fitted on latents -> ``names``.
    Z : ndarray, shape (n, n_latent)
        Latents of the evaluated sites.
    Y : ndarray, shape (n, len(names))
        Their targets, NaN where unknown (left out).
    Y_train : ndarray, shape (n_train, len(names))
        Training targets (the baseline predicts their mean).
    names : sequence of str
        Target names (seed 002 §II.C: OS and CN).

    Returns
    -------
    dict
        name -> ``n``, ``mae``, ``baseline_mae``, ``coverage_2sigma`` (fraction with
        |error| <= 2σ) and ``mean_std``.
    """
    mean, std = properties.predict(Z, return_std=True)
    mean, std = np.atleast_2d(mean.T).T, np.atleast_2d(std.T).T
    out = {}
    for j, t in enumerate(names):
        ok = np.isfinite(Y[:, j])
        err = np.abs(mean[ok, j] - Y[ok, j])
        base = np.abs(np.nanmean(Y_train[:, j]) - Y[ok, j])
        out[t] = {"n": int(ok.sum()), "mae": round(float(err.mean()), 4), "baseline_mae": round(float(base.mean()), 4),
                  "coverage_2sigma": round(float((err <= 2 * std[ok, j]).mean()), 3),
                  "mean_std": round(float(std[ok, j].mean()), 4)}
    return out


def plot_latent_scan(model: LatentModel, Z_train: np.ndarray, path: str | Path, n_steps: int = 9,
                     title: str = "") -> Path:
    """Latent scan (seed 002, Figure 6b): spectra decoded while one latent dimension varies.

    For each latent dimension k, z_k runs over ``n_steps`` values from the 5th to the 95th
    percentile of the training latents while the other dimensions stay at their training mean;
    the decoded spectra are drawn in one panel per dimension, coloured from low (blue) to high
    (red) z_k, the panel titled with the descriptor the dimension is ranked against.

    Parameters
    ----------
    model : LatentModel
    Z_train : ndarray, shape (n, n_latent)
        Training latents.
    path : str or Path
        PNG written.
    n_steps : int
    title : str

    Returns
    -------
    Path
    """
    from matplotlib import colormaps

    from xasml.report.figures import _new_figure, _save

    L = Z_train.shape[1]
    ncol = 3
    nrow = int(np.ceil(L / ncol))
    fig = _new_figure(figsize=(4.0 * ncol, 3.0 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    E = model.grid.energy
    cmap = colormaps["coolwarm"]
    zmean = Z_train.mean(axis=0)
    for k in range(nrow * ncol):
        ax = axes[k // ncol][k % ncol]
        if k >= L:
            ax.set_axis_off()
            continue
        lo, hi = np.percentile(Z_train[:, k], [5, 95])
        vals = np.linspace(lo, hi, n_steps)
        Zs = np.tile(zmean, (n_steps, 1))
        Zs[:, k] = vals
        S = model.rankaae.inverse_transform(Zs)
        for i, s in enumerate(S):
            ax.plot(E, s, color=cmap(i / max(n_steps - 1, 1)), lw=1.2)
        name = model.descriptors[k] or "free"
        ax.set_title(f"z{k}: {name}", fontsize=9)
        ax.set_xlabel("energy (eV)", fontsize=8)
        ax.set_ylabel("decoded μ (max = 1)", fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# -- training ---------------------------------------------------------------------------------

class LatentConfig(XasmlConfig):
    """Options of ``xasml latent fit`` (every one recorded in the run's ``config.json``).

    A :class:`~xasml.config.XasmlConfig`: ``LatentConfig.from_file(path)`` reads a TOML/JSON
    file (unknown keys and wrong types are errors naming the file and the option), ``show()``
    is ``xasml latent fit --show-config``. ``rankaae`` and ``ensemble`` are free-form tables of
    estimator parameters, checked against the estimators' constructors.
    """

    data: str | None = Field(None, description="FEFF data folder (<material>/FEFF-XANES/<index>_<El>/xmu.dat + "
                                               "POSCAR); null: $XASML_DATA or ../shared/data/omnixas-cu-feff")
    element: str = Field("Cu", description="absorbing element")
    labels: str | None = Field(None, description="site label table (Parquet); null: the shipped "
                                                 "xasml/data/local/labels_<El>.parquet, else computed")
    seed: int = Field(0, description="split seed and first model seed")
    candidates: int = Field(1, ge=1, description="RankAAE seeds trained; the one with the best validation score "
                                                 "(mean |rho| of the OS and CN dimensions minus the validation "
                                                 "reconstruction RMSE) is kept")
    rankaae: dict[str, Any] = Field(default_factory=dict, description="RankAAE parameters (xasml.models.rankaae."
                                                                      "RankAAE: epochs, rank_weight, n_latent, ...)")
    ensemble: dict[str, Any] = Field(default_factory=dict, description="latent -> (OS, CN) ensemble parameters "
                                                                       "(LatentPropertyEnsemble: n_members, ...)")
    n_threads: int = Field(1, ge=1, description="torch threads")

    @model_validator(mode="after")
    def _estimator_parameters(self) -> LatentConfig:
        import inspect

        from xasml.models.rankaae import LatentPropertyEnsemble, RankAAE

        for name, cls in (("rankaae", RankAAE), ("ensemble", LatentPropertyEnsemble)):
            known = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
            for k in getattr(self, name):
                if k not in known:
                    raise ValueError(f"{name}.{k}: unknown {cls.__name__} parameter (known: {', '.join(known)})")
        return self


def _val_score(m: dict) -> float:
    rhos = [abs(m["spearman"][k]["rho"]) for k in TARGETS if k in m["spearman"]]
    rhos = [r for r in rhos if np.isfinite(r)]
    return float(np.mean(rhos) if rhos else 0.0) - m["reconstruction_rmse"]


def fit_latent(cfg: LatentConfig, out: str | Path, overwrite: bool = False) -> dict:
    """Build the data set, train RankAAE candidates and the property ensemble, evaluate, report.

    Parameters
    ----------
    cfg : LatentConfig
    out : str or Path
        Run folder (see :class:`xasml.runs.RunFolder`).
    overwrite : bool

    Returns
    -------
    dict
        The metrics written to ``<out>/metrics.json``.

    Raises
    ------
    DataError
        If the data folder is missing or too small to split by material.
    """
    import torch

    from xasml.datasets.local import discover_sites
    from xasml.models.rankaae import LatentPropertyEnsemble, RankAAE
    from xasml.runs import RunFolder
    from xasml.utils import fingerprint_files

    t_start = time.time()
    if cfg.data is None:
        from xasml.local.config import default_data_path

        cfg = cfg.model_copy(update={"data": str(default_data_path())})
    torch.set_num_threads(int(cfg.n_threads))
    sites = discover_sites(cfg.data, cfg.element)
    run = RunFolder(out, cfg.to_dict(), seed=cfg.seed, overwrite=overwrite)
    labels = site_labels(cfg.data, cfg.element, sites, cfg.labels, cache=run.path / "labels.parquet")
    ds, D = build_latent_dataset(cfg.data, cfg.element, labels, descriptor_cache=run.path / "descriptors.parquet",
                                 seed=cfg.seed, sites=sites)
    structs = [p for p in sites["structure_path"].unique() if p]
    run.set_data(fingerprint_files(list(sites["xmu_path"]) + structs, root=cfg.data),
                 {"path": str(cfg.data), "element": cfg.element, **ds.info})
    run.write_splits({s: sorted(f"{m}_{i:03d}" for m, i, sp in zip(ds.table["material_id"], ds.table["absorbing_index"],
                                                                   ds.table["split"]) if sp == s)
                      for s in ("train", "val", "test")})
    t_data = time.time() - t_start
    _say(f"data: {len(ds)} sites, splits {ds.info['split_sizes']}, descriptors known: "
         + ", ".join(f"{n} {int(np.isfinite(D[:, j]).sum())}" for j, n in enumerate(DESCRIPTORS)) + f" ({t_data:.0f} s)")
    masks = {s: ds.split_mask(s) for s in ("train", "val", "test")}
    X = ds.X.astype(np.float32)
    t0 = time.time()
    best, best_score, cand = None, -np.inf, []
    for c in range(max(1, int(cfg.candidates))):
        params = {"n_threads": cfg.n_threads, **cfg.rankaae, "seed": int(cfg.seed) + c}
        ae = RankAAE(**params).fit(X[masks["train"]], D[masks["train"]])
        vm = latent_metrics(ae, X[masks["val"]], D[masks["val"]], DESCRIPTORS)
        score = _val_score(vm)
        cand.append({"seed": params["seed"], "val_score": round(score, 4),
                     "val_spearman": {k: v["rho"] for k, v in vm["spearman"].items()}})
        _say(f"candidate seed {params['seed']}: validation score {score:.3f} "
             + " ".join(f"{k}={v['rho']:+.2f}" for k, v in vm["spearman"].items()))
        if score > best_score:
            best, best_score = ae, score
    t_ae = time.time() - t0
    t0 = time.time()
    Ycols = [DESCRIPTORS.index(t) for t in TARGETS]
    Z = best.transform(X)
    ens = LatentPropertyEnsemble(**{"n_threads": cfg.n_threads, "seed": cfg.seed, **cfg.ensemble})
    ens.fit(Z[masks["train"]], D[masks["train"]][:, Ycols])
    if masks["val"].sum() >= 5:  # spread calibrated on validation materials (never the test split)
        try:
            ens.calibrate(Z[masks["val"]], D[masks["val"]][:, Ycols])
        except DataError as exc:
            log.warning("ensemble spread not calibrated: %s", exc)
    t_ens = time.time() - t0
    names = list(DESCRIPTORS) + [None] * (int(best.n_latent) - len(DESCRIPTORS))
    model = LatentModel(rankaae=best, properties=ens, element=cfg.element, edge="K", grid=ds.grid,
                        reference_mu=X[masks["train"]].mean(axis=0), descriptors=names)
    metrics: dict[str, Any] = {"dataset": ds.info, "descriptors": list(DESCRIPTORS), "candidates": cand}
    for s in ("train", "val", "test"):
        metrics[s] = latent_metrics(best, X[masks[s]], D[masks[s]], DESCRIPTORS)
        metrics[s]["properties"] = property_metrics(ens, Z[masks[s]], D[masks[s]][:, Ycols],
                                                    D[masks["train"]][:, Ycols], TARGETS)
    metrics["timing_s"] = {"data": round(t_data, 1), "rankaae": round(t_ae, 1), "ensemble": round(t_ens, 1),
                           "threads": int(cfg.n_threads)}
    model.info = {k: run.info.get(k) for k in ("xasml_version", "git_revision", "data_fingerprint", "seed")}
    model.info.update({"test": {k: metrics["test"][k] for k in ("spearman", "reconstruction_mae",
                                                                "max_abs_offdiag_correlation")},
                       "test_properties": metrics["test"]["properties"], "n_train": int(masks["train"].sum()),
                       "data": str(cfg.data)})
    model.save(run.model_dir("latent"))
    rep = run.report_dir
    plot_latent_scan(model, Z[masks["train"]], rep / "latent_scan.png",
                     title=f"{cfg.element} K-edge RankAAE latent scan (cf. seed 002 Fig. 6b)")
    _write_report(rep / "report.md", cfg, metrics)
    run.write_metrics(metrics)
    run.finish(timings=metrics["timing_s"])
    t = metrics["test"]
    _say(f"test ({t['n']} sites): " + " ".join(f"{k}={v['rho']:+.2f}" for k, v in t["spearman"].items())
         + f"; reconstruction MAE {t['reconstruction_mae']:.4f}; OS MAE {t['properties']['oxidation_state']['mae']:.3f}"
         f" CN MAE {t['properties']['coordination_number']['mae']:.3f} -> {run.path}")
    return metrics


def _write_report(path: Path, cfg: LatentConfig, m: dict) -> None:
    t = m["test"]
    lines = [f"# RankAAE latent space, {cfg.element} K edge", "",
             "Method: rank-constrained adversarial autoencoder (seed paper 002 §II.C, Figure 4); latent scan as its "
             "Figure 6b. Test = held-out materials (grouped split), never used for selection.", "",
             f"Sites: {m['dataset']['split_sizes']}", "",
             "| latent dim | descriptor | Spearman ρ (val) | Spearman ρ (test) | n (test) |", "|---|---|---|---|---|"]
    for j, name in enumerate(m["descriptors"]):
        lines.append(f"| z{j} | {name} | {m['val']['spearman'][name]['rho']:+.3f} | {t['spearman'][name]['rho']:+.3f} "
                     f"| {t['spearman'][name]['n']} |")
    lines += ["", f"Reconstruction (test): MAE {t['reconstruction_mae']:.4f}, RMSE {t['reconstruction_rmse']:.4f} "
              "(units of the spectrum maximum).", "",
              f"Largest |Pearson correlation| between two latent dimensions (test): {t['max_abs_offdiag_correlation']:.3f}",
              "", "| target | MAE (ensemble) | MAE (predict the mean) | ±2σ coverage | n |", "|---|---|---|---|---|"]
    for k, v in t["properties"].items():
        lines.append(f"| {k} | {v['mae']:.3f} | {v['baseline_mae']:.3f} | {v['coverage_2sigma']:.2f} | {v['n']} |")
    lines += ["", f"Timing (s): {m['timing_s']}", "", "![latent scan](latent_scan.png)", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
