"""Model bundles of the local-structure models: a fitted estimator with everything needed to prepare its input.

A model *bundle* is a folder::

    <bundle>/bundle.json            task, element, edge, grid, feature window, one-hot element order,
                                    alignment, normalization, reference spectrum, provenance
                                    (energy offsets of the training simulations, CV metrics)
    <bundle>/estimator/             the fitted estimator (estimator.json + weights.safetensors)
    <bundle>/training_spectra.npz   model-input spectra of (up to 1,000) training sites, optional

so that prediction applies exactly the preprocessing of training (:meth:`ModelBundle.prepare_full`):
the spectrum reaches the stored grid as the bundle's ``alignment`` says (computed spectra shifted
by their simulation's energy offset; measured spectra calibrated with their reference foil and
flattened, then used on their own energies for the oxidation state, or area-matched to the
bundle's mean training spectrum for environment and CN; the first Cu bundles area-matched
every measured spectrum; :mod:`xasml.preprocess.calibrated`), is resampled with a cubic spline
and scaled to maximum 1; the estimator then applies its own per-point standardisation.

Bundles ship with the package in ``xasml/data/local/<El>/<task>/`` (Ti-Zn); ``xasml local run
--elements`` writes them to ``<run>/models/<El>/<task>/`` and the single-element protocol to
``<run>/models/<task>/``. The capabilities that use them (``xasml local predict``, ``xasml measure
map``, the latent models' calibrated input) import them from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xasml.errors import DataError, XasmlError
from xasml.models.validate import check_element
from xasml.preprocess.calibrated import prepare_calibrated, prepare_spectra
from xasml.preprocess.grid import EnergyGrid
from xasml.utils import atomic_write_json

TASKS = ("coordination", "cn", "oxidation")
#: how a bundle brings spectra onto its grid (see ModelBundle.alignment)
ALIGNMENTS = ("area", "calibrated", "measured-area")
#: out-of-domain scores above this are warned about (distance to the nearest training spectrum in
#: units of the training spectra's median nearest-neighbour distance)
OOD_WARN = 5.0
#: the shipped local-structure bundles, ``<El>/<task>/`` (and the shipped Cu labels)
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "local"


@dataclass
class ModelBundle:
    """A fitted estimator with everything needed to prepare its input.

    Attributes
    ----------
    task : str
        ``"coordination"`` (classes), ``"cn"`` or ``"oxidation"`` (regression).
    estimator : XasmlEstimator
        The fitted scikit-learn estimator. A bundle read by :meth:`load` restores it from
        ``estimator/`` when it is first accessed, and predicts with :attr:`predictor` meanwhile.
    element, edge : str
    grid : EnergyGrid
        Absolute energies (eV) of the input.
    feature_slice : (int, int)
        Grid points used (all of them, or the pre-edge part).
    reference_mu : ndarray, shape (n_points,)
        Mean max-normalised training spectrum on ``grid`` (alignment reference for measured data).
    info : dict
        Provenance (protocol, metrics, data fingerprint, ...).
    path : Path or None
    training_spectra : ndarray, shape (n_train, n_points), optional
        The model-input spectra of the training sites on ``grid`` (max-normalised, before the
        estimator's standardisation): the simulated domain that spectral domain mapping
        (:mod:`xasml.measure.sdm`) and out-of-domain scores compare measured spectra with. Saved
        as ``training_spectra.npz`` (key ``X``, float32) beside ``bundle.json``.
    elements : list of str, optional
        Multi-element models (``xasml local run --elements``, :mod:`xasml.local.multi`): the order of the one-hot element code
        appended to the spectrum; the estimator takes ``feature width + len(elements)`` inputs.
    normalization : {"max", "edge-step"}
        Input scaling: maximum 1 (Carbone et al.), or the edge-step normalised spectrum as it is
        (FEFF's normalised μ; measured spectra flattened, larch).
    alignment : {"area", "calibrated", "measured-area"}
        How spectra reach the grid. ``"area"``: measured spectra area-matched to
        ``reference_mu``, computed ones used as they are (the first Cu models, whose grid is on
        the FEFF scale). ``"calibrated"``: the grid is on the experimental scale; measured
        spectra are calibrated with their reference foil (:mod:`xasml.preprocess.calibrate`),
        flattened and used on their own energies, keeping the chemical shift (oxidation state);
        computed spectra get the energy offset of their simulation (``info["energy_scale"]``,
        :mod:`xasml.preprocess.energy_scale`). ``"measured-area"``: computed spectra as
        ``"calibrated"``, measured spectra area-matched to ``reference_mu`` (an option for the
        geometry tasks, ``MultiConfig.geometry_alignment``; the shipped models use
        ``"calibrated"`` for every task, which gave the better environments and CNs of measured
        standards once the energy scale was corrected).
    """

    task: str
    estimator: Any
    element: str
    edge: str
    grid: EnergyGrid
    feature_slice: tuple[int, int]
    reference_mu: np.ndarray
    info: dict
    path: Path | None = None
    training_spectra: np.ndarray | None = None
    elements: list[str] | None = None
    alignment: str = "area"
    normalization: str = "max"

    @property
    def is_classifier(self) -> bool:
        """Whether the model gives class probabilities (coordination) rather than a value with σ (cn, oxidation)."""
        return hasattr(self.predictor, "predict_proba")

    def save(self, path: str | Path) -> Path:
        """Write the bundle folder (JSON + safetensors; no pickle).

        Parameters
        ----------
        path : str or Path
            The folder (created if needed): ``bundle.json``, ``estimator/`` and, with training
            spectra, ``training_spectra.npz``; each file written atomically.

        Returns
        -------
        Path
            ``path``, also stored as :attr:`path`.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.estimator.save(path / "estimator")
        atomic_write_json(path / "bundle.json", {
            "format": "xasml.local.bundle/1", "task": self.task, "element": self.element, "edge": self.edge,
            "grid": self.grid.to_dict(), "feature_slice": list(self.feature_slice),
            "reference_mu": [round(float(v), 6) for v in self.reference_mu], "info": self.info,
            "elements": self.elements, "alignment": self.alignment, "normalization": self.normalization})
        if self.training_spectra is not None:
            from xasml.utils import atomic_path

            with atomic_path(path / "training_spectra.npz") as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(fh, X=np.asarray(self.training_spectra, dtype=np.float32))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ModelBundle":
        """Read a bundle folder.

        Parameters
        ----------
        path : str or Path
            A folder written by :meth:`save`.

        Returns
        -------
        ModelBundle
            Checked; shipped network ensembles predict with NumPy (:attr:`predictor`) and restore the
            estimator itself only when :attr:`estimator` is asked for.

        Raises
        ------
        DataError
            Naming the file: ``bundle.json`` missing or malformed, estimator files that fail
            :func:`xasml.models.validate.load_checked_estimator`, or parts that do not fit
            together (grid, reference spectrum, feature window and network input lengths).
        """
        from xasml.models.inference import load_predictor
        from xasml.models.validate import load_checked_estimator, read_model_json

        path = Path(path)
        meta_path = path / "bundle.json"
        if not meta_path.exists():
            raise DataError(f"{path}: not a local-structure model (no bundle.json)")
        meta = read_model_json(meta_path, "the bundle.json")
        # the shipped network ensembles predict with NumPy (no torch, no scikit-learn: see
        # xasml.models.inference); other models, or folders it refuses, load the estimator itself
        predictor = load_predictor(path / "estimator")
        estimator = load_checked_estimator(path / "estimator") if predictor is None else None
        try:
            if not isinstance(meta, dict):
                raise TypeError("expected a JSON object")
            bundle = cls(task=str(meta["task"]), estimator=estimator, element=str(meta["element"]),
                         edge=str(meta["edge"]), grid=EnergyGrid.from_dict(meta["grid"]),
                         feature_slice=tuple(int(v) for v in meta["feature_slice"]),
                         reference_mu=np.asarray(meta["reference_mu"], dtype=float),
                         info=meta.get("info", {}), path=path,
                         training_spectra=_read_training_spectra(path / "training_spectra.npz"),
                         elements=[str(e) for e in meta["elements"]] if meta.get("elements") else None,
                         alignment=str(meta.get("alignment", "area")),
                         normalization=str(meta.get("normalization", "max")))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise DataError(f"{meta_path}: malformed bundle ({type(exc).__name__}: {exc})") from None
        if predictor is not None:  # the estimator is loaded from its folder when first asked for
            del bundle.estimator
            bundle._estimator_dir = path / "estimator"
            bundle._predictor = predictor
        bundle._check(meta_path)
        return bundle

    def __getattr__(self, name: str):
        """``estimator`` of a loaded bundle, restored from its folder on first access (see :meth:`load`)."""
        if name == "estimator" and "_estimator_dir" in self.__dict__:
            from xasml.models.validate import load_checked_estimator

            est = self.__dict__["_loaded_estimator"] = load_checked_estimator(self.__dict__["_estimator_dir"])
            self.estimator = est
            return est
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def predictor(self):
        """What predicts: for a bundle read by :meth:`load` whose estimator is a local network
        ensemble, its NumPy twin (:class:`xasml.models.inference.EnsemblePredictor`: same numbers,
        no torch or scikit-learn to import); else the estimator."""
        d = self.__dict__
        loaded = d.get("_loaded_estimator")
        if d.get("_predictor") is not None and d.get("estimator", loaded) is loaded:
            return d["_predictor"]  # (an estimator assigned after loading replaces it)
        return self.estimator

    def _check(self, meta_path: Path) -> None:
        """Raise :class:`DataError` (naming ``meta_path``) when the bundle's parts do not fit together."""
        n = int(self.grid.n_points)
        if self.task not in TASKS:
            raise DataError(f"{meta_path}: field 'task' is {self.task!r}; expected one of {', '.join(TASKS)}")
        check_element(self.element, meta_path)
        if not (2 <= n <= 100_000 and np.isfinite([self.grid.start, self.grid.stop]).all()):
            raise DataError(f"{meta_path}: field 'grid' ({self.grid.start}, {self.grid.stop}, {n} points) must give "
                            "2-100000 finite, increasing energies")
        if self.reference_mu.shape != (n,) or not np.isfinite(self.reference_mu).all():
            raise DataError(f"{meta_path}: field 'reference_mu' has {self.reference_mu.size} values (finite: "
                            f"{bool(np.isfinite(self.reference_mu).all())}); expected {n} finite values, one per "
                            "grid point")
        if len(self.feature_slice) != 2 or not 0 <= self.feature_slice[0] < self.feature_slice[1] <= n:
            raise DataError(f"{meta_path}: field 'feature_slice' is {list(self.feature_slice)}; expected [a, b] "
                            f"with 0 <= a < b <= {n}")
        if self.normalization not in ("max", "edge-step"):
            raise DataError(f"{meta_path}: field 'normalization' is {self.normalization!r}; expected 'max' or "
                            "'edge-step'")
        if not isinstance(self.info, dict):
            raise DataError(f"{meta_path}: field 'info' is {type(self.info).__name__}; expected an object "
                            "(provenance, energy scale)")
        if self.alignment not in ALIGNMENTS:
            raise DataError(f"{meta_path}: field 'alignment' is {self.alignment!r}; expected one of "
                            f"{', '.join(ALIGNMENTS)}")
        if self.elements is not None and self.element not in self.elements:
            raise DataError(f"{meta_path}: field 'elements' {self.elements} lacks the bundle's element {self.element!r}")
        n_in = getattr(self.predictor, "n_features_in_", None)
        width = self.feature_slice[1] - self.feature_slice[0] + len(self.elements or [])
        if n_in is not None and int(n_in) != width:
            raise DataError(f"{meta_path}: field 'feature_slice' (and 'elements') give {width} inputs but the network "
                            f"takes {int(n_in)}; expected the bundle.json saved with these weights")
        est_dir = meta_path.parent / "estimator"
        try:  # a dry run on the reference spectrum: parameters the network cannot run with show up here
            x = self.inputs(np.asarray(self.reference_mu, dtype=float)[None, :])
            if self.is_classifier:
                out = np.asarray(self.predictor.predict_proba(x), dtype=float)
            else:
                out = np.asarray(self.predictor.predict(x, return_std=True), dtype=float)
        except XasmlError:
            raise
        except Exception as exc:  # what torch/numpy raise for parameters that do not fit
            raise DataError(f"{est_dir}: the model files do not fit together ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}); expected estimator.json and weights saved "
                            "together by xasml") from None
        if not np.isfinite(out).all():
            raise DataError(f"{est_dir}: the model gives non-finite outputs; its parameters or weights are corrupt")

    # -- input preparation ---------------------------------------------------------------
    def prepare_full(self, spectra: Sequence, measured: Sequence[bool] | None = None, calibrate: str = "auto",
                     reference=None) -> tuple[np.ndarray, list[dict]]:
        """Spectra on the bundle's whole grid as the model takes them (before the feature window).

        Measured ones are aligned by area (``alignment="area"``) or calibrated and flattened
        (``"calibrated"``); computed ones of a calibrated bundle get their simulation's energy
        offset; then every spectrum is resampled on ``grid`` (cubic spline) and scaled to maximum 1.

        Parameters
        ----------
        spectra : sequence of Spectrum
        measured : sequence of bool, optional
            Which spectra are measured; default: every spectrum not read from FEFF output
            (no ``feff_version`` in its metadata).
        calibrate, reference :
            Energy calibration of measured spectra for ``alignment="calibrated"`` bundles
            (:func:`xasml.preprocess.calibrate.calibrate`: ``"auto"`` uses a reference foil scan
            ``reference``, else the file's reference channel, else none).

        Returns
        -------
        X : ndarray, shape (n, n_points)
        records : list of dict
            Preprocessing record per spectrum (empty for computed spectra of area-aligned bundles).

        Raises
        ------
        SpectrumError
            If a spectrum is of another element or measured preprocessing fails.
        """
        if self.alignment in ("calibrated", "measured-area"):
            return prepare_calibrated(spectra, self.element, self.edge, self.grid.energy,
                                      self.info.get("energy_scale", {}), measured, calibrate=calibrate,
                                      reference=reference,
                                      align_to=self.reference_mu if self.alignment == "measured-area" else None,
                                      max_normalized=self.normalization == "max")
        return prepare_spectra(spectra, self.element, self.edge, self.grid.energy, self.reference_mu, measured,
                               what="model")

    def inputs(self, X_full: np.ndarray) -> np.ndarray:
        """Estimator input from whole-grid spectra.

        Parameters
        ----------
        X_full : ndarray, shape (n, n_points)
            Spectra on the bundle's whole grid (:meth:`prepare_full`).

        Returns
        -------
        ndarray, shape (n, n_features)
            The feature window ``feature_slice``, with the one-hot code of :attr:`element` among
            :attr:`elements` appended for multi-element models.
        """
        a, b = self.feature_slice
        X = np.asarray(X_full, dtype=float)[:, a:b]
        if not self.elements:
            return X
        code = np.zeros((len(X), len(self.elements)))
        code[:, self.elements.index(self.element)] = 1.0
        return np.concatenate([X, code], axis=1)

    def prepare(self, spectra: Sequence, measured: Sequence[bool] | None = None, calibrate: str = "auto",
                reference=None) -> tuple[np.ndarray, list[dict]]:
        """Estimator input of spectra: :meth:`prepare_full`, then :meth:`inputs`.

        Parameters
        ----------
        spectra, measured, calibrate, reference :
            As :meth:`prepare_full`.

        Returns
        -------
        X : ndarray, shape (n, n_features)
        records : list of dict
            One preprocessing record per spectrum (:meth:`prepare_full`).

        Raises
        ------
        SpectrumError
            See :meth:`prepare_full`.
        """
        X, records = self.prepare_full(spectra, measured, calibrate=calibrate, reference=reference)
        return self.inputs(X), records

    def predict(self, spectra: Sequence, measured: Sequence[bool] | None = None, calibrate: str = "auto",
                reference=None) -> list[dict]:
        """Predictions as dictionaries: ``prediction`` and ``probabilities`` or ``std`` (and for measured
        spectra the preprocessing: ``alignment_shift_eV``, or ``calibration`` and ``warnings``).

        Parameters
        ----------
        spectra, measured, calibrate, reference :
            Prepared by :meth:`prepare_full` (calibration of measured spectra, energy offset of computed ones).

        Returns
        -------
        list of dict
            One per spectrum, as :meth:`predict_prepared`.

        Raises
        ------
        SpectrumError
            See :meth:`prepare_full`.
        DataError
            If the model gives non-finite outputs (corrupt weights; the bundle is named).
        """
        X, records = self.prepare_full(spectra, measured, calibrate=calibrate, reference=reference)
        return self.predict_prepared(X, records)

    def predict_prepared(self, X_full: np.ndarray, records: Sequence[dict] | None = None) -> list[dict]:
        """Predictions for whole-grid spectra already prepared (:meth:`prepare_full`, or spectra
        mapped by :mod:`xasml.measure.sdm`), as :meth:`predict` formats them.

        Parameters
        ----------
        X_full : ndarray, shape (n, n_points)
        records : sequence of dict, optional
            Preprocessing records to merge into the results.

        Returns
        -------
        list of dict
            One per spectrum: ``prediction`` and ``probabilities`` (classifiers, with
            ``environment_name`` for coordination) or ``std`` (regressors, the task's units); for
            measured spectra the preprocessing (``alignment_shift_eV``, or ``calibration``,
            ``energy_offset_eV``, ``e0``, ``warnings``) and ``out_of_domain`` (:meth:`domain_distance`,
            with a warning above ``OOD_WARN``).

        Raises
        ------
        DataError
            If the model gives non-finite outputs (corrupt weights; the bundle is named).
        """
        X = self.inputs(X_full)
        records = list(records) if records is not None else [{}] * len(X)
        out = []
        if self.is_classifier:
            P = self.predictor.predict_proba(X)
            if not np.isfinite(P).all():
                raise DataError(f"{self.path}: the model gives non-finite probabilities; its weights are corrupt")
            classes = [str(c) for c in self.predictor.classes_]
            from xasml.labels.site import environment_name

            for p in P:
                pred = classes[int(np.argmax(p))]
                res = {"prediction": pred, "probabilities": {c: round(float(v), 4) for c, v in zip(classes, p)}}
                if self.task == "coordination":
                    res["environment_name"] = environment_name(pred)
                out.append(res)
        else:
            mean, std = self.predictor.predict(X, return_std=True)
            if not (np.isfinite(mean).all() and np.isfinite(std).all()):
                raise DataError(f"{self.path}: the model gives non-finite predictions; its weights are corrupt")
            for m, sd in zip(mean, std):  # 3 significant digits: a small spread is never printed as 0
                out.append({"prediction": round(float(m), 3), "std": float(f"{float(sd):.3g}")})
        ood = self.domain_distance(X_full) if any("calibration" in r for r in records) else None
        for i, (o, rec) in enumerate(zip(out, records)):
            if rec and self.alignment == "area":
                o["alignment_shift_eV"] = round(float(rec.get("shift_eV", 0.0)), 2)
            elif rec:
                o.update({k: rec[k] for k in ("calibration", "energy_offset_eV", "e0", "alignment_shift_eV", "warnings",
                                                "metal_evidence")
                          if k in rec})
                if ood is not None and "calibration" in rec:
                    o["out_of_domain"] = round(float(ood[i]), 2)
                    if ood[i] > OOD_WARN:
                        o["warnings"] = list(o.get("warnings", [])) + [
                            f"the spectrum is unlike the model's training spectra (out-of-domain score "
                            f"{ood[i]:.1f} > {OOD_WARN:g}): the answer is an extrapolation; spectral domain mapping "
                            "(xasml measure map) or a model trained nearer to it may help"]
        return out

    def domain_distance(self, X_full: np.ndarray) -> np.ndarray | None:
        """Out-of-domain score of whole-grid spectra: the RMS distance to the nearest training
        spectrum over the median nearest-neighbour distance among training spectra (1 = as close
        as training spectra are to each other). None without ``training_spectra``.

        Parameters
        ----------
        X_full : ndarray, shape (n, n_points)

        Returns
        -------
        ndarray, shape (n,) or None
        """
        T = self.training_spectra
        if T is None or T.shape[1] != np.asarray(X_full).shape[1] or len(T) < 3:
            return None
        T = np.asarray(T, dtype=float)

        def nearest(A: np.ndarray, exclude_self: bool = False) -> np.ndarray:
            d2 = (A ** 2).sum(1)[:, None] + (T ** 2).sum(1)[None, :] - 2 * A @ T.T
            if exclude_self:
                d2[d2 < 1e-12] = np.inf
            return np.sqrt(np.maximum(d2.min(axis=1), 0) / T.shape[1])

        if not hasattr(self, "_nn_ref"):
            rng = np.random.default_rng(0)
            sub = T[rng.choice(len(T), size=min(len(T), 500), replace=False)]
            ref = nearest(sub, exclude_self=True)
            self._nn_ref = float(np.median(ref[np.isfinite(ref)])) or 1e-6
        return nearest(np.asarray(X_full, dtype=float)) / self._nn_ref


def find_bundle(task: str, model: str | Path | None = None, element: str | None = None) -> Path:
    """Locate the bundle of ``task``.

    Parameters
    ----------
    task : {"coordination", "cn", "oxidation"}
    model : str or Path, optional
        A bundle folder, a folder holding ``<task>/`` (or ``<element>/<task>/``), or a run
        folder (``models/<task>/`` or ``models/<element>/<task>/``). Default: the models shipped
        in ``xasml/data/local/<element>/<task>``.
    element : str, optional
        Absorbing element, to choose among per-element models.

    Returns
    -------
    Path
        The bundle folder (holding ``bundle.json``).

    Raises
    ------
    DataError
        If no bundle is found (the places looked at, and the shipped elements, are listed).
    """
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    root = Path(model) if model is not None else SHIPPED_DIR
    candidates = [root]
    if element:
        candidates += [root / element / task, root / "models" / element / task]
    candidates += [root / task, root / "models" / task]
    for c in candidates:
        if (c / "bundle.json").exists():
            if c == root and model is not None:
                try:
                    meta = json.loads((c / "bundle.json").read_text())
                except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, huge ints
                    raise DataError(f"{c / 'bundle.json'}: not readable JSON ({type(exc).__name__}: "
                                    f"{str(exc)[:100]}); expected a model bundle written by xasml") from None
                if not isinstance(meta, dict):
                    raise DataError(f"{c / 'bundle.json'}: a JSON {type(meta).__name__}, expected an object (a model "
                                    "bundle written by xasml)")
                if meta.get("task") != task:
                    raise DataError(f"{c}: bundle is for task {meta.get('task')!r}, not {task!r}")
            return c
    shipped = ", ".join(shipped_elements(task)) or "none"
    what = f"{element} {task}" if element else task
    raise DataError(f"no {what} model found; looked in {', '.join(str(c) for c in candidates)} (models shipped "
                    f"for: {shipped})")


def shipped_elements(task: str) -> list[str]:
    """Elements with a shipped model of a task.

    Parameters
    ----------
    task : {"coordination", "cn", "oxidation"}

    Returns
    -------
    list of str
        Sorted element symbols with ``xasml/data/local/<El>/<task>/bundle.json``.
    """
    return sorted(p.parent.parent.name for p in SHIPPED_DIR.glob(f"*/{task}/bundle.json"))


def _read_training_spectra(path: Path) -> np.ndarray | None:
    """The ``training_spectra.npz`` of a bundle (key ``X``), or None when the bundle has none.

    Raises
    ------
    DataError
        Naming the file, if it is not a readable ``.npz`` with a finite 2-D array ``X``.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            X = np.asarray(z["X"], dtype=np.float32)
    except Exception as exc:  # zipfile/numpy raise several types for a damaged file
        raise DataError(f"{path}: unreadable training spectra ({type(exc).__name__}: {exc}); expected an .npz "
                        "with a 2-D array 'X'") from None
    if X.ndim != 2 or not np.isfinite(X).all():
        raise DataError(f"{path}: 'X' has shape {X.shape} (finite: {bool(np.isfinite(X).all())}); expected a finite "
                        "2-D array, one training spectrum per row")
    return X
