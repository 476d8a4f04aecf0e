"""RankAAE latent models of site spectra: data set, training, evaluation, model folder, encoding.

Method: seed perspective ``../shared/papers/002`` §II.C (Figure 4: RankAAE; Figure 6b: latent
scan). The data set is that of the multi-element local-structure models
(:func:`xasml.latent.sites.build_latent_data`: the site table or a FEFF folder, each element on
its own grid of the calibrated experimental energy scale, maximum 1, near-duplicates removed,
split train/val/test grouped by structure), with the descriptors of
:mod:`xasml.latent.descriptors` attached. The RankAAE
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

from pydantic import Field, model_validator

from xasml.config import XasmlConfig
from xasml.errors import DataError
from xasml.latent.descriptors import DESCRIPTORS
from xasml.preprocess.grid import EnergyGrid
from xasml.utils import atomic_write_json

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "latent"
#: properties predicted from the latent vector (seed 002 §II.C)
TARGETS = ("oxidation_state", "coordination_number")
#: a latent (or property prediction) further than this fraction of the training span outside the
#: training range is flagged as out of range
RANGE_MARGIN = 0.05
FORMAT = "xasml.latent.model/1"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- data -------------------------------------------------------------------------------------

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
        Mean max-normalised training spectrum of :attr:`element` on :attr:`grid`.
    descriptors : list of str or None
        Name aligned with each latent dimension (None: free dimension).
    targets : list of str
    info : dict
        Provenance and metrics.
    path : Path or None
    alignment : {"calibrated", "area"}
        How spectra reach the grid. ``"calibrated"`` (models from 2 on): the grid is on the
        calibrated experimental energy scale; computed spectra get the energy offset of their
        simulation (:attr:`energy_scale`), measured ones are calibrated with their reference foil
        and flattened (:func:`xasml.preprocess.calibrated.prepare_calibrated`, as the oxidation-state
        models); nothing is aligned per spectrum, so the chemical shift is kept. ``"area"`` (the
        first Cu model, grid on the FEFF scale): measured spectra area-matched to
        :attr:`reference_mu` (:func:`xasml.preprocess.calibrated.prepare_spectra`).
    energy_scale : dict
        ``{simulation: offset_eV}`` of the training data (``"calibrated"`` models).
    elements : list of str or None
        Universal models: the order of the one-hot element code appended to the spectrum (the
        RankAAE takes ``n_points + len(elements)`` inputs, the property ensemble
        ``n_latent + len(elements)``); None for per-element models.
    training_range : dict or None
        The simulated domain the model was fitted on (:func:`training_range`): per latent
        dimension ``latent_min`` / ``latent_max``, per target ``targets`` ``[min, max]``, the
        number of spectra ``n`` and ``source``; encoding flags latents and predictions outside it
        (:meth:`range_check`). None for models saved without it.
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
    alignment: str = "calibrated"
    energy_scale: dict = field(default_factory=dict)
    elements: list | None = None
    training_range: dict | None = None

    def code(self, n: int) -> np.ndarray:
        """One-hot code of :attr:`element` for ``n`` rows, shape (n, len(elements)); (n, 0) per element."""
        from xasml.latent.sites import one_hot

        return one_hot(self.element, self.elements, n)

    def inputs(self, X: np.ndarray) -> np.ndarray:
        """RankAAE input of gridded spectra ``X`` (n, n_points): the element code appended for universal models."""
        X = np.asarray(X, dtype=np.float32)
        return np.concatenate([X, self.code(len(X))], axis=1) if self.elements else X

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Decoded spectra (n, n_points; maximum-1 scale) of latents ``Z`` (n, n_latent), without the element code."""
        return self.rankaae.inverse_transform(Z)[:, :int(self.grid.n_points)]

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
            "targets": self.targets, "info": self.info, "alignment": self.alignment,
            "energy_scale": self.energy_scale, "elements": self.elements, "training_range": self.training_range})
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
                        info=meta.get("info", {}), path=path, alignment=str(meta.get("alignment", "area")),
                        energy_scale={str(k): float(v) for k, v in (meta.get("energy_scale") or {}).items()},
                        elements=[str(e) for e in meta["elements"]] if meta.get("elements") else None,
                        training_range=meta.get("training_range"))
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{meta_path}: malformed latent model ({type(exc).__name__}: {exc})") from None
        n = int(model.grid.n_points)
        n_in = n + len(model.elements or [])
        if model.reference_mu.shape != (n,) or model.rankaae.n_features_in_ != n_in:
            raise DataError(f"{meta_path}: grid ({n} points), element code ({len(model.elements or [])}), reference "
                            f"spectrum ({model.reference_mu.size}) and network input ({model.rankaae.n_features_in_}) "
                            "disagree")
        if model.alignment not in ("calibrated", "area"):
            raise DataError(f"{meta_path}: field 'alignment' is {model.alignment!r}; expected 'calibrated' or 'area'")
        if model.elements is not None and model.element not in model.elements:
            raise DataError(f"{meta_path}: field 'elements' {model.elements} lacks the model's element {model.element!r}")
        tr = model.training_range
        if tr is not None and not (isinstance(tr, dict) and len(tr.get("latent_min") or []) == int(model.rankaae.n_latent)
                                   and len(tr.get("latent_max") or []) == int(model.rankaae.n_latent)
                                   and isinstance(tr.get("targets", {}), dict)):
            raise DataError(f"{meta_path}: field 'training_range' must hold 'latent_min' and 'latent_max' with "
                            f"{model.rankaae.n_latent} values each (and 'targets' as an object)")
        if len(model.descriptors) != int(model.rankaae.n_latent):
            raise DataError(f"{meta_path}: {len(model.descriptors)} descriptor names for {model.rankaae.n_latent} "
                            "latent dimensions")
        return model

    def prepare(self, spectra: Sequence, measured: Sequence[bool] | None = None, calibrate: str = "auto",
                reference=None) -> tuple[np.ndarray, list[dict]]:
        """RankAAE input of spectra (see :attr:`alignment`), element code appended for universal models.

        ``"calibrated"`` models: :func:`xasml.preprocess.calibrated.prepare_calibrated` (computed
        spectra shifted by their simulation's offset; measured ones calibrated with their
        reference foil - ``calibrate``/``reference`` as :func:`xasml.preprocess.calibrate.calibrate`
        - and flattened, no shift of their own), cubic resampling on :attr:`grid`, maximum 1.
        ``"area"`` models: :func:`xasml.preprocess.calibrated.prepare_spectra` (measured spectra
        area-matched to :attr:`reference_mu`).

        Parameters
        ----------
        spectra : sequence of Spectrum
        measured : sequence of bool, optional
            Default: every spectrum not read from FEFF output.
        calibrate : str
        reference : Spectrum, optional
            Reference foil scan of measured spectra.

        Returns
        -------
        X : ndarray, shape (n, n_points [+ len(elements)])
        records : list of dict
            Preprocessing record per spectrum: measured ``calibration``, ``e0`` (eV),
            ``warnings``; computed ``energy_offset_eV`` (``"calibrated"``); measured ``shift_eV``
            (``"area"``).

        Raises
        ------
        SpectrumError
            If a spectrum is of another element, of a simulation whose energy offset the model
            does not know, or measured preprocessing fails.
        """
        from xasml.preprocess.calibrated import prepare_calibrated, prepare_spectra

        if self.alignment == "calibrated":
            X, recs = prepare_calibrated(spectra, self.element, self.edge, self.grid.energy, self.energy_scale,
                                         measured, calibrate=calibrate, reference=reference, max_normalized=True)
        else:
            X, recs = prepare_spectra(spectra, self.element, self.edge, self.grid.energy, self.reference_mu, measured,
                                      what="latent model")
        return self.inputs(X), recs

    def encode_array(self, X: np.ndarray) -> list[dict]:
        """Latent vector, descriptor names and (OS, CN) predictions of prepared inputs ``X`` (:meth:`prepare`:
        n x (n_points [+ len(elements)])).

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
        mean, std = self.properties.predict(np.concatenate([Z, self.code(len(Z))], axis=1), return_std=True)
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

    def range_check(self, result: dict) -> dict:
        """Flags of one :meth:`encode_array` result against :attr:`training_range`.

        A latent coordinate (or a property prediction) is out of range when it lies more than
        :data:`RANGE_MARGIN` of the training span below the training minimum or above the
        maximum: the spectrum then sits where the model saw no training spectrum, and its
        properties are an extrapolation.

        Parameters
        ----------
        result : dict
            ``latent`` and the per-target ``{"prediction", "std"}`` of :meth:`encode_array`.

        Returns
        -------
        dict
            ``latent_in_range`` (bool, or None without a stored training range),
            ``latent_out_of_range`` (per flagged dimension: ``dimension``, ``descriptor``,
            ``value``, ``training_min``, ``training_max``), ``targets_out_of_range`` (the targets
            whose prediction lies outside the training labels' range) and ``warnings``.
        """
        tr = self.training_range
        if not tr:
            return {"latent_in_range": None, "latent_out_of_range": [], "targets_out_of_range": [],
                    "warnings": [f"the latent model {self.path} stores no training range: latents outside it "
                                 "cannot be flagged (re-fit it with `xasml latent fit`)"]}

        def outside(v: float, lo: float, hi: float) -> bool:
            m = RANGE_MARGIN * max(hi - lo, 1e-9)
            return v < lo - m or v > hi + m

        bad = [{"dimension": i, "descriptor": self.descriptors[i], "value": round(float(z), 3),
                "training_min": round(float(lo), 3), "training_max": round(float(hi), 3)}
               for i, (z, lo, hi) in enumerate(zip(result["latent"], tr["latent_min"], tr["latent_max"]))
               if outside(float(z), float(lo), float(hi))]
        targets = [t for t, (lo, hi) in (tr.get("targets") or {}).items()
                   if t in result and outside(float(result[t]["prediction"]), float(lo), float(hi))]
        warns = []
        if bad:
            dims = ", ".join(f"z{b['dimension']} ({b['descriptor'] or 'free'}) {b['value']:+.2f} outside "
                             f"[{b['training_min']:+.2f}, {b['training_max']:+.2f}]" for b in bad)
            warns.append(f"latent outside the training range of the {self.element} model ({dims}): the spectrum "
                         "is unlike every training spectrum and its oxidation state and coordination number are "
                         "extrapolations")
        for t in targets:
            lo, hi = tr["targets"][t]
            warns.append(f"{t} {result[t]['prediction']:.2f} lies outside the training labels' range [{lo:g}, "
                         f"{hi:g}]: not an answer")
        return {"latent_in_range": not bad, "latent_out_of_range": bad, "targets_out_of_range": targets,
                "warnings": warns}


def training_range(Z: np.ndarray, Y: np.ndarray, targets: Sequence[str], source: str) -> dict:
    """The training range stored with a latent model (:attr:`LatentModel.training_range`).

    Parameters
    ----------
    Z : ndarray, shape (n, n_latent)
        Latents of the training spectra.
    Y : ndarray, shape (n, n_targets)
        Their target labels (NaN where unknown).
    targets : sequence of str
        Target names, one per column of ``Y``.
    source : str
        What the spectra are (e.g. "training split, 2,322 Cu sites").

    Returns
    -------
    dict
        ``latent_min``, ``latent_max`` (lists of n_latent floats), ``targets`` (name -> [min, max]
        of the known labels), ``n`` and ``source``.

    Raises
    ------
    DataError
        If ``Z`` is empty.
    """
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2 or len(Z) == 0:
        raise DataError("no training latents to take a range from")
    Y = np.asarray(Y, dtype=float).reshape(len(Z), -1)
    tgt = {}
    for j, t in enumerate(targets):
        y = Y[:, j][np.isfinite(Y[:, j])]
        if len(y):
            tgt[str(t)] = [round(float(y.min()), 3), round(float(y.max()), 3)]
    return {"latent_min": [round(float(v), 4) for v in Z.min(axis=0)],
            "latent_max": [round(float(v), 4) for v in Z.max(axis=0)], "targets": tgt, "n": int(len(Z)),
            "source": str(source)}


def shipped_elements() -> list[str]:
    """Elements with a latent model shipped in ``xasml/data/latent/<El>/``."""
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "latent.json").exists()) if SHIPPED_DIR.exists() else []


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
        if element:  # universal runs hold one folder per element
            candidates += [root / "models" / "latent" / element, root / element]
    else:
        if not element:
            raise DataError("the file does not name its absorbing element; pass --model")
        candidates = [SHIPPED_DIR / element]
    for c in candidates:
        if (c / "latent.json").exists():
            return c
    if model is None:
        shipped = shipped_elements()
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
        ``coordination_number`` (``prediction``, ``std``), and the preprocessing: computed spectra
        ``energy_offset_eV``, measured ones ``calibration``, ``e0`` (eV) and ``warnings``
        (``alignment_shift_eV`` with the first, area-aligned Cu model); the range flags of
        :meth:`LatentModel.range_check` (``latent_in_range``, ``latent_out_of_range``,
        ``targets_out_of_range``, their warnings in ``warnings``) and ``shipped_elements`` (the
        elements with a shipped latent model); or ``file`` and ``error`` when the file could not
        be used.
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
            rec = recs[0]
            if rec and m.alignment == "area":
                r["alignment_shift_eV"] = round(float(rec.get("shift_eV", 0.0)), 2)
            elif rec:
                r.update({k: rec[k] for k in ("calibration", "e0", "energy_offset_eV", "warnings") if k in rec})
            flags = m.range_check(r)
            r["warnings"] = list(r.get("warnings", [])) + flags.pop("warnings")
            r.update(flags)
            r["shipped_elements"] = shipped_elements()
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


def latent_metrics(rankaae, X: np.ndarray, D: np.ndarray, names: Sequence[str], n_points: int | None = None) -> dict:
    """Spearman ρ of each constrained dimension with its descriptor, latent correlations, reconstruction error.

    Parameters
    ----------
    rankaae : RankAAE
    X : ndarray, shape (n, n_points)
    D : ndarray, shape (n, k)
        Descriptors (NaN where unknown), column j for latent dimension j.
    names : sequence of str
        Descriptor names (k).
    n_points : int, optional
        Spectrum columns of ``X`` (the reconstruction error leaves out an element code after them);
        default all.

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
    if n_points is not None:
        R, X = R[:, :n_points], X[:, :n_points]
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
        S = model.decode(Zs)
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

#: RankAAE parameters of ``latent fit`` that differ from the estimator's defaults (chosen on the
#: Cu validation split, docs/latent.md)
DEFAULT_RANKAAE = {"rank_weight": 3.0}


class LatentConfig(XasmlConfig):
    """Options of ``xasml latent fit`` (every one recorded in the run's ``config.json``).

    A :class:`~xasml.config.XasmlConfig`: ``LatentConfig.from_file(path)`` reads a TOML/JSON
    file (unknown keys and wrong types are errors naming the file and the option), ``show()``
    is ``xasml latent fit --show-config``. ``rankaae`` and ``ensemble`` are free-form tables of
    estimator parameters, checked against the estimators' constructors.
    """

    data: str | None = Field(None, description="site table (Parquet, xasml local sites) or FEFF data folder "
                                               "(<material>/FEFF-XANES/<index>_<El>/xmu.dat + POSCAR/structure.cif); "
                                               "null: $XASML_DATA or ../shared/data/omnixas-cu-feff")
    element: str = Field("Cu", description="absorbing element of a per-element model")
    elements: list[str] = Field(default_factory=list, description="universal model: one RankAAE over these "
                                "elements, a one-hot element code appended to the spectrum (empty: a per-element "
                                "model of `element`)")
    split_fractions: list[float] = Field(default_factory=lambda: [0.7, 0.15, 0.15],
                                         description="train/val/test fractions of the split grouped by structure")
    balance_elements: int = Field(400, ge=0, description="universal model: training rows of an element repeated "
                                                         "towards this many (at most 20x); 0 = off")
    descriptor_cache: str | None = Field(None, description="Parquet cache of the geometric descriptors to reuse "
                                                           "(null: <run>/descriptors.parquet)")
    labels: str | None = Field(None, description="label table (Parquet) whose environment, CN and OS replace "
                                                 "those of the matching sites; null: the site table's labels (FEFF "
                                                 "folders: computed and cached, the shipped Cu labels reused)")
    seed: int = Field(0, description="split seed and first model seed")
    candidates: int = Field(1, ge=1, description="RankAAE seeds trained; the one with the best validation score "
                                                 "(mean |rho| of the OS and CN dimensions minus the validation "
                                                 "reconstruction RMSE) is kept")
    rankaae: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_RANKAAE),
                                    description="RankAAE parameters (xasml.models.rankaae.RankAAE: epochs, "
                                                "rank_weight, n_latent, ...); default rank_weight 3 (chosen on the "
                                                "Cu validation split)")
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


def evaluate(model_ae, ens, data, Xin: np.ndarray, Z: np.ndarray, code: np.ndarray, order: Sequence[str] | None,
             split: str, n_points: int) -> dict:
    """Latent and property metrics of one split, pooled and per element.

    Parameters
    ----------
    model_ae : RankAAE
    ens : LatentPropertyEnsemble
        Fitted on ``[Z, code]`` of the training rows.
    data : xasml.latent.sites.LatentData
    Xin : ndarray, shape (n_sites, n_points [+ n_elements])
        RankAAE inputs of every site.
    Z : ndarray, shape (n_sites, n_latent)
    code : ndarray, shape (n_sites, n_elements or 0)
    order : sequence of str or None
    split : str
    n_points : int

    Returns
    -------
    dict
        :func:`latent_metrics` with ``properties`` (:func:`property_metrics`) of the split, and
        ``by_element``: the same per element (with ``n_materials``).
    """
    Ycols = [DESCRIPTORS.index(t) for t in TARGETS]
    D = data.D
    elements = data.table["absorbing_element"].to_numpy()
    F = np.concatenate([Z, code], axis=1)

    def one(mask, train_mask):
        m = latent_metrics(model_ae, Xin[mask], D[mask], DESCRIPTORS, n_points=n_points)
        m["properties"] = property_metrics(ens, F[mask], D[mask][:, Ycols], D[train_mask][:, Ycols], TARGETS)
        return m

    mask = data.mask(split)
    out = one(mask, data.mask("train"))
    out["by_element"] = {}
    for el in data.elements:
        m_el = mask & (elements == el)
        if m_el.sum() >= 3:
            r = one(m_el, data.mask("train", el))
            r["n_materials"] = int(data.table.loc[m_el, "group"].nunique())
            out["by_element"][el] = r
    return out


def fit_latent(cfg: LatentConfig, out: str | Path, overwrite: bool = False) -> dict:
    """Build the data set, train RankAAE candidates and the property ensemble, evaluate, report.

    Data: :func:`xasml.latent.sites.build_latent_data` (site table or FEFF folder; calibrated
    energy scale, element grids relative to the tabulated edge, split grouped by structure).
    Per-element model (``cfg.elements`` empty): sites of ``cfg.element`` only, written to
    ``<out>/models/latent/``. Universal model (``cfg.elements``): one RankAAE over all of them
    with a one-hot element code appended to the spectrum (and to the latent for the ensemble),
    small elements' training rows repeated (``balance_elements``); one model folder per element,
    ``<out>/models/latent/<El>/`` (same weights, the element's grid and code).

    Parameters
    ----------
    cfg : LatentConfig
    out : str or Path
        Run folder (see :class:`xasml.runs.RunFolder`).
    overwrite : bool

    Returns
    -------
    dict
        The metrics written to ``<out>/metrics.json``: per split pooled metrics and ``by_element``.

    Raises
    ------
    DataError
        If the data are missing or too few to split by structure.
    """
    import torch

    from xasml.latent.sites import build_latent_data, one_hot
    from xasml.datasets.sites import balance_rows
    from xasml.models.rankaae import LatentPropertyEnsemble, RankAAE
    from xasml.runs import RunFolder
    from xasml.utils import fingerprint_files

    t_start = time.time()
    if cfg.data is None:
        from xasml.datasets.sites import default_data_path

        cfg = cfg.model_copy(update={"data": str(default_data_path())})
    if not Path(cfg.data).exists():
        raise DataError(f"{cfg.data}: data not found (pass --data: a site table or a FEFF data folder)")
    torch.set_num_threads(int(cfg.n_threads))
    universal = len(cfg.elements) > 1
    wanted = list(cfg.elements) if cfg.elements else [cfg.element]
    run = RunFolder(out, cfg.to_dict(), seed=cfg.seed, overwrite=overwrite)
    data = build_latent_data([cfg.data], wanted, descriptor_cache=cfg.descriptor_cache or run.path / "descriptors.parquet",
                             labels=cfg.labels, seed=cfg.seed, fractions=tuple(cfg.split_fractions),
                             label_cache=run.path / "labels.parquet")
    order = list(data.elements) if universal else None
    el = data.table["absorbing_element"].to_numpy()
    if Path(cfg.data).is_file():
        fp = fingerprint_files([cfg.data], root=Path(cfg.data).parent)
    else:
        structs = [p for p in data.table["structure_path"].unique() if p]
        fp = fingerprint_files(list(data.table["source"]) + structs, root=cfg.data)
    run.set_data(fp, {"path": str(cfg.data), "elements": data.elements, **data.info})
    run.write_splits({s: sorted(f"{m}_{i:03d}" for m, i, sp in zip(data.table["material_id"],
                                                                   data.table["absorbing_index"],
                                                                   data.table["split"]) if sp == s)
                      for s in ("train", "val", "test")})
    t_data = time.time() - t_start
    D = data.D
    _say(f"data: {len(data)} sites of {', '.join(data.elements)}, splits {data.info['split_sizes']}, descriptors known: "
         + ", ".join(f"{n} {int(np.isfinite(D[:, j]).sum())}" for j, n in enumerate(DESCRIPTORS)) + f" ({t_data:.0f} s)")
    code = one_hot(list(el), order)
    n_points = data.X.shape[1]
    Xin = np.concatenate([data.X, code], axis=1).astype(np.float32)
    masks = {s: data.mask(s) for s in ("train", "val", "test")}
    train_rows = np.flatnonzero(masks["train"])
    if universal:
        train_rows = balance_rows(train_rows, el, int(cfg.balance_elements))
    t0 = time.time()
    best, best_score, cand = None, -np.inf, []
    for c in range(max(1, int(cfg.candidates))):
        params = {"n_threads": cfg.n_threads, **cfg.rankaae, "seed": int(cfg.seed) + c}
        ae = RankAAE(**params).fit(Xin[train_rows], D[train_rows])
        vm = latent_metrics(ae, Xin[masks["val"]], D[masks["val"]], DESCRIPTORS, n_points=n_points)
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
    Z = best.transform(Xin)
    F = np.concatenate([Z, code], axis=1)
    ens = LatentPropertyEnsemble(**{"n_threads": cfg.n_threads, "seed": cfg.seed, **cfg.ensemble})
    ens.fit(F[train_rows], D[train_rows][:, Ycols])
    if masks["val"].sum() >= 5:  # spread calibrated on validation materials (never the test split)
        try:
            ens.calibrate(F[masks["val"]], D[masks["val"]][:, Ycols])
        except DataError as exc:
            log.warning("ensemble spread not calibrated: %s", exc)
    t_ens = time.time() - t0
    metrics: dict[str, Any] = {"dataset": data.info, "descriptors": list(DESCRIPTORS), "candidates": cand,
                               "universal": universal, "elements": data.elements}
    for s in ("train", "val", "test"):
        metrics[s] = evaluate(best, ens, data, Xin, Z, code, order, s, n_points)
    metrics["timing_s"] = {"data": round(t_data, 1), "rankaae": round(t_ae, 1), "ensemble": round(t_ens, 1),
                           "threads": int(cfg.n_threads)}
    names = list(DESCRIPTORS) + [None] * (int(best.n_latent) - len(DESCRIPTORS))
    base_info = {k: run.info.get(k) for k in ("xasml_version", "git_revision", "data_fingerprint", "seed")}
    rep = run.report_dir
    for e in data.elements:
        tr_e = masks["train"] & (el == e)
        model = LatentModel(rankaae=best, properties=ens, element=e, edge=data.edge, grid=data.grid(e),
                            reference_mu=data.X[tr_e].mean(axis=0), descriptors=names, alignment="calibrated",
                            energy_scale=data.energy_scale[e], elements=order,
                            training_range=training_range(Z[tr_e], D[tr_e][:, Ycols], TARGETS,
                                                          f"training split, {int(tr_e.sum())} {e} sites"))
        te = metrics["test"]["by_element"].get(e, {})
        model.info = {**base_info, "test": {k: te[k] for k in ("spearman", "reconstruction_mae",
                                                                "max_abs_offdiag_correlation", "n",
                                                                "n_materials") if k in te},
                      "test_properties": te.get("properties"), "n_train": int(tr_e.sum()), "data": str(cfg.data),
                      "universal": universal}
        model.save(run.model_dir("latent") / e if universal else run.model_dir("latent"))
        plot_latent_scan(model, Z[tr_e], rep / (f"latent_scan_{e}.png" if universal else "latent_scan.png"),
                         title=f"{e} K-edge RankAAE latent scan (cf. seed 002 Fig. 6b)")
    _write_report(rep / "report.md", cfg, metrics)
    run.write_metrics(metrics)
    run.finish(timings=metrics["timing_s"])
    for e, t in metrics["test"]["by_element"].items():
        _say(f"test {e} ({t['n']} sites, {t['n_materials']} materials): "
             + " ".join(f"{k}={v['rho']:+.2f}" for k, v in t["spearman"].items())
             + f"; reconstruction MAE {t['reconstruction_mae']:.4f}; max |corr| {t['max_abs_offdiag_correlation']:.2f}")
    _say(f"-> {run.path}")
    return metrics


def _write_report(path: Path, cfg: LatentConfig, m: dict) -> None:
    t = m["test"]
    kind = f"universal model over {', '.join(m['elements'])}" if m.get("universal") else f"{m['elements'][0]} model"
    lines = [f"# RankAAE latent space, K edge, {kind}", "",
             "Method: rank-constrained adversarial autoencoder (seed paper 002 §II.C, Figure 4); latent scan as its "
             "Figure 6b. Spectra on the calibrated energy scale (one offset per element and simulation), element grid "
             "relative to the tabulated edge. Test = held-out structures (grouped split), never used for selection.",
             "", f"Sites: {m['dataset']['split_sizes']}", "",
             "Spearman ρ of each constrained dimension with its descriptor on the test split (ceiling: the largest ρ "
             "the ties of the descriptor allow):", "",
             "| element | sites (materials) | " + " | ".join(f"z{j} {n}" for j, n in enumerate(m["descriptors"]))
             + " | reconstruction MAE | max latent corr |",
             "|---|---|" + "---|" * (len(m["descriptors"]) + 2)]
    for el, r in t["by_element"].items():
        cells = []
        for n in m["descriptors"]:
            v = r["spearman"][n]
            cells.append(f"{v['rho']:+.2f} (≤{v['rho_max_with_ties']:.2f})" if np.isfinite(v["rho"]) else "—")
        lines.append(f"| {el} | {r['n']} ({r['n_materials']}) | " + " | ".join(cells)
                     + f" | {r['reconstruction_mae']:.4f} | {r['max_abs_offdiag_correlation']:.2f} |")
    lines += ["", "Pooled over elements:", "",
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
    scans = sorted(p.name for p in path.parent.glob("latent_scan*.png"))
    lines += ["", f"Timing (s): {m['timing_s']}", ""] + [f"![latent scan]({s})" for s in scans] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
