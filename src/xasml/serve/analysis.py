"""The analysis step of the beamline page: one file in, one JSON-ready record out.

:func:`analyze` (or :meth:`Analyzer.analyze`, which keeps models and reference scans loaded
between calls) reads a measured file with :func:`xasml.io.reader.read_spectra` (every format the readers know:
XDI, Athena projects, column and SPEC files, HDF5/NeXus), normalises each spectrum with
:func:`xasml.measure.core.measure_spectrum` and :func:`xasml.preprocess.normalize.pre_edge`
(larch conventions: Ravel & Newville, J. Synchrotron Rad. 12, 537 (2005)) and answers it with
:func:`xasml.local.predict.predict_spectrum`, the function ``xasml local predict`` answers with:
the shipped local-structure models (oxidation state, coordination number, environment), the metal
rule, and for the oxidation state the evidence of the measured reference standards
(:mod:`xasml.references`: nearest standards, linear-combination fit, edge-position valence) with
the combined answer ± σ and the ``flagged`` verdict. Every field of those answers is passed to the
page as it is; the page adds the spectra behind the evidence
(:func:`xasml.references.evidence.evidence_curves`) to draw them.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import DataError, SpectrumError, XasmlError, file_message

__all__ = ["AnalysisOptions", "Analyzer", "analyze", "header_numbers"]

#: at most this many points per curve are sent to the page (plots need no more)
MAX_CURVE_POINTS = 1500


@dataclass
class AnalysisOptions:
    """The choices a user can edit on the page for one file.

    Parameters
    ----------
    absorbing_element, edge : str, optional
        For files that do not say (or say wrongly), e.g. ``"Fe"``, ``"K"``.
    energy_col, mu : str, optional
        Column files and XDI read as columns: the energy column and μ (a column name, a 1-based
        index, or an expression of the channels such as ``ln(i0/it)``).
    e0 : float, optional
        Edge energy, eV (after calibration); default larch's ``find_e0`` or the Athena project's.
    pre1, pre2, norm1, norm2 : float, optional
        Pre-edge and post-edge fit ranges, eV relative to ``e0``; default larch's.
    nnorm : int, optional
        Degree of the post-edge polynomial (0-3); default larch's rule.
    calibrate : {"auto", "reference", "none"}
        Energy calibration (:func:`xasml.preprocess.calibrate.calibrate`).
    reference : str, optional
        Name of a reference foil scan of the ``--references`` folder to calibrate against.
    scan : str, optional
        SPEC and HDF5/NeXus files with several scans: which one (default the last).
    tasks : tuple of str
        Local-structure tasks to answer (``oxidation``, ``cn``, ``coordination``).
    """

    absorbing_element: str | None = None
    edge: str | None = None
    energy_col: str | None = None
    mu: str | None = None
    e0: float | None = None
    pre1: float | None = None
    pre2: float | None = None
    norm1: float | None = None
    norm2: float | None = None
    nnorm: int | None = None
    calibrate: str = "auto"
    reference: str | None = None
    scan: str | None = None
    tasks: tuple[str, ...] = ("oxidation", "cn", "coordination")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, source: str = "options") -> "AnalysisOptions":
        """Options from a JSON object (the page's form); empty strings count as not given.

        Raises
        ------
        SpectrumError
            Naming the field, for unknown fields or values of the wrong kind.
        """
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SpectrumError(f"unknown option(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}",
                                source=source)
        out: dict[str, Any] = {}
        for k, v in d.items():
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            try:
                if k in ("e0", "pre1", "pre2", "norm1", "norm2"):
                    v = float(v)
                    if not math.isfinite(v):
                        raise ValueError
                elif k == "nnorm":
                    v = int(v)
                    if not 0 <= v <= 3:
                        raise ValueError
                elif k == "tasks":
                    v = tuple(str(t) for t in ([v] if isinstance(v, str) else v))
                elif k == "calibrate":
                    v = str(v)
                    if v not in ("auto", "reference", "none"):
                        raise ValueError
                else:
                    v = str(v).strip()
            except (TypeError, ValueError):
                expected = {"nnorm": "an integer 0-3", "calibrate": "auto, reference or none",
                            "tasks": "a list of task names"}.get(k, "a number (eV)")
                raise SpectrumError(f"{v!r} is not {expected}", source=source, field=k) from None
            out[k] = v
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """The options given (not None), JSON-ready."""
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return {k: v for k, v in d.items() if v is not None}

    @property
    def normalisation_edited(self) -> bool:
        """True when e0, a fit range or the post-edge degree was chosen by the user."""
        return any(getattr(self, k) is not None for k in ("e0", "pre1", "pre2", "norm1", "norm2", "nnorm"))


def header_numbers(spectrum) -> dict[str, float]:
    """Numeric header fields of a spectrum (XDI ``Namespace.tag``: temperature, time, position
    ...), for plotting a series against them.

    Parameters
    ----------
    spectrum : Spectrum

    Returns
    -------
    dict
        Field name -> value, for fields that are one number with or without a unit (``"300 K"``);
        dates and texts are left out.
    """
    import re

    out = {}
    header = spectrum.metadata.get("header") or {}
    for k, v in header.items():
        if k.lower().startswith(("column.", "element.")):
            continue
        m = re.match(r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*([A-Za-z\u00b0%/]{0,8})\s*$", str(v))
        if m:
            x = float(m.group(1))
            if math.isfinite(x):
                out[str(k)] = x
    return out


def _curve(x: np.ndarray) -> list[float]:
    """An array as a short JSON list (6 significant digits)."""
    return [float(f"{v:.6g}") for v in np.asarray(x, dtype=float)]


def _thin(n: int) -> np.ndarray:
    """Indices of at most :data:`MAX_CURVE_POINTS` of ``n`` points, evenly spread (ends kept)."""
    if n <= MAX_CURVE_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(int))


class Analyzer:
    """Keeps models and reference scans loaded; :meth:`analyze` does one file.

    Parameters
    ----------
    references : dict, optional
        Reference foil scans by name (``Spectrum``), offered to the page as calibration choices.
    model : str or Path, optional
        A model folder for :func:`xasml.models.bundle.find_bundle` (default: the shipped models).
    library : sequence of path, optional
        The user's reference libraries (``references.parquet`` folders), read with the shipped one
        for the evidence of measured standards (``--references DIR`` of ``xasml local predict``).

    Notes
    -----
    Thread-safe: one lock serialises the analyses (the models run single-threaded; on two
    cores a second analysis in parallel only slows the first).
    """

    def __init__(self, references: dict | None = None, model: str | Path | None = None,
                 library: list[str | Path] | None = None):
        self.references = dict(references or {})
        self.model = model
        self.library = [str(p) for p in library or []] or None
        self._bundles: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    def bundle(self, task: str, element: str):
        """The model of ``task`` for ``element``, loaded once (``None`` when none is shipped).

        Raises
        ------
        DataError
            For a model folder that is found but unreadable.
        """
        from xasml.models.bundle import ModelBundle, find_bundle

        key = (task, element)
        if key not in self._bundles:
            try:
                path = find_bundle(task, self.model, element)
            except DataError:
                self._bundles[key] = None
            else:
                self._bundles[key] = ModelBundle.load(path)
        return self._bundles[key]

    def standards(self):
        """The reference library the evidence uses (shipped plus :attr:`library`; cached,
        re-read when a library file changes).

        Raises
        ------
        DataError
            For a library that cannot be read (file named).
        """
        from xasml.references.library import cached_library

        return cached_library(self.library)

    def loaded_elements(self) -> list[str]:
        """Elements with at least one model loaded."""
        return sorted({el for (_, el), b in self._bundles.items() if b is not None})

    def warm_up(self, elements: list[str] | None = None, tasks=("oxidation", "cn", "coordination")) -> list[str]:
        """Load the models of ``elements`` (default: every shipped element) now rather than on the first file.

        Returns
        -------
        list of str
            The elements with an oxidation-state model.
        """
        from xasml.models.bundle import shipped_elements

        elements = elements or shipped_elements("oxidation")
        with self._lock:
            for el in elements:
                for t in tasks:
                    self.bundle(t, el)
        return [el for el in elements if self._bundles.get(("oxidation", el)) is not None]

    def analyze(self, path: str | Path, options: AnalysisOptions | dict | None = None) -> dict[str, Any]:
        """Read, normalise and answer every spectrum of one file.

        Parameters
        ----------
        path : str or Path
            A measured file (XDI, Athena project, plain columns, ...).
        options : AnalysisOptions or dict, optional
            The user's choices (see :class:`AnalysisOptions`).

        Returns
        -------
        dict
            ``file``, ``name``, ``status`` (``"ok"`` or ``"error"``), ``error`` (one line naming
            the file, for a file that cannot be used), ``options``, ``elapsed_s`` and
            ``spectra``: per spectrum ``label``, ``absorbing_element``, ``edge``, ``e0`` (eV),
            ``edge_step``, ``pre1``/``pre2``/``norm1``/``norm2`` (eV relative to e0),
            ``nnorm``, ``calibration``, ``warnings``, ``header`` (numeric header fields),
            ``curves`` (``energy`` eV, ``mu``, ``pre_edge``, ``post_edge``, ``norm``, ``flat``),
            ``answers`` (task -> the record of :func:`xasml.local.predict.predict_spectrum`, as
            ``xasml local predict`` gives it: ``prediction``, ``std`` or ``probabilities``,
            ``out_of_domain``, ``status``, ``warnings``; the oxidation state of a measured spectrum
            also ``evidence``, ``combined``, ``flagged``, ``flag_reasons``), ``answer_errors``
            (task -> message), ``evidence_curves`` (:func:`xasml.references.evidence.evidence_curves`:
            the best linear-combination fit and the nearest standards, ``energy`` eV and ``flat``)
            and ``model_input`` (``energy``, ``x``: the spectrum as the oxidation model takes it),
            or ``error``. Each Athena group that could not be read is a spectrum with its
            one-line ``error``.

        Notes
        -----
        Never raises for a bad file: the error is in the record.
        """
        t0 = time.perf_counter()
        path = Path(path)
        rec: dict[str, Any] = {"file": str(path), "name": path.name, "status": "ok", "spectra": []}
        try:
            opts = options if isinstance(options, AnalysisOptions) else AnalysisOptions.from_dict(options, str(path))
            rec["options"] = opts.to_dict()
            with self._lock:
                rec["spectra"] = self._analyze(path, opts)
            if rec["spectra"] and all("error" in s for s in rec["spectra"]):
                rec["status"] = "error"
                rec["error"] = rec["spectra"][0]["error"]
        except (XasmlError, OSError, ValueError) as exc:
            rec["status"] = "error"
            rec["error"] = _one_line(exc, path)
        rec["elapsed_s"] = round(time.perf_counter() - t0, 4)
        return rec

    # -- the work --------------------------------------------------------------------------
    def _analyze(self, path: Path, opts: AnalysisOptions) -> list[dict[str, Any]]:
        from xasml.io.reader import read_spectra

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # an Athena project's reference ('Ref') groups calibrate its samples; they are not answered
            spectra = read_spectra(path, opts.absorbing_element, opts.edge, opts.energy_col, opts.mu,
                                   include_references=False, scan=opts.scan)
        read_warnings = _warning_lines(caught, path)
        if not spectra:
            raise SpectrumError("no spectrum in the file", source=str(path))
        reference = None
        if opts.reference:
            if opts.reference not in self.references:
                raise SpectrumError(f"unknown reference {opts.reference!r}; expected one of "
                                    f"{', '.join(sorted(self.references)) or '(none loaded: --references)'}",
                                    source=str(path), field="reference")
            reference = self.references[opts.reference]
        out = []
        for i, s in enumerate(spectra):
            # named as `xasml local predict` names it (FILE, or FILE:LABEL in a file of several spectra)
            name = str(path) if len(spectra) == 1 else f"{path}:{s.metadata.get('label') or s.material_id}"
            try:
                out.append(self._spectrum(s, i, opts, reference, read_warnings if i == 0 else [], name))
            except (XasmlError, OSError, ValueError) as exc:
                label = s.metadata.get("label") or s.material_id or f"{path.name}[{i}]"
                out.append({"label": str(label), "absorbing_element": s.absorbing_element, "edge": s.edge,
                            "error": _one_line(exc, path)})
        for fail in getattr(spectra, "failed", []):  # Athena groups that could not be read: shown, not dropped
            out.append({"label": fail.label, "absorbing_element": None, "edge": None,
                        "error": _one_line(fail.error, path)})
        return out

    def _bundle_or_error(self, task: str, element: str):
        """:meth:`bundle`, raising ``DataError`` (naming the shipped elements) when there is none."""
        b = self.bundle(task, element)
        if b is None:
            from xasml.models.bundle import shipped_elements

            raise DataError(f"no {task} model for {element} (models shipped for "
                            f"{', '.join(shipped_elements(task))})")
        return b

    def _spectrum(self, s, index: int, opts: AnalysisOptions, reference, read_warnings: list[str],
                  name: str | None = None) -> dict:
        from xasml.measure.core import measure_spectrum
        from xasml.preprocess.calibrate import calibrate
        from xasml.preprocess.normalize import pre_edge

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = measure_spectrum(s, calibrate=opts.calibrate, reference=reference)
            cal_spec, _ = calibrate(s, method=opts.calibrate, reference=reference)
            # the parameters measure_spectrum used (larch's or the Athena project's), the user's edits over them
            params = {k: (getattr(opts, k) if getattr(opts, k) is not None else m[k])
                      for k in ("e0", "pre1", "pre2", "norm1", "norm2", "nnorm")}
            if params["e0"] is not None and not cal_spec.energy[0] < params["e0"] < cal_spec.energy[-1]:
                raise SpectrumError(f"e0 = {params['e0']:.2f} eV is outside the data ({cal_spec.energy[0]:.1f}-"
                                    f"{cal_spec.energy[-1]:.1f} eV)", source=s.source, field="e0")
            r = pre_edge(cal_spec.energy, cal_spec.mu, source=s.source, **params)
        warns = list(m.get("warnings", [])) + read_warnings + _warning_lines(caught, s.source)
        if opts.normalisation_edited:
            warns += [f"{s.source}: {w}" for w in r.warnings if f"{s.source}: {w}" not in warns]
        idx = _thin(len(r.energy))
        label = m.get("label") or f"{Path(str(s.source)).name}[{index}]"
        result: dict[str, Any] = {
            "label": str(label), "index": index, "absorbing_element": s.absorbing_element, "edge": s.edge,
            "e0": round(float(r.e0), 3), "e0_source": "user" if opts.e0 is not None else m.get("e0_source"),
            "edge_step": float(f"{r.edge_step:.6g}"),
            "pre1": round(float(r.pre1), 3), "pre2": round(float(r.pre2), 3), "norm1": round(float(r.norm1), 3),
            "norm2": round(float(r.norm2), 3), "nnorm": int(r.nnorm),
            "calibration": m.get("calibration"), "mu_source": m.get("mu_source"),
            "header": header_numbers(s),
            "curves": {"energy": _curve(r.energy[idx]), "mu": _curve(cal_spec.mu[idx]),
                       "pre_edge": _curve(r.pre_edge[idx]), "post_edge": _curve(r.post_edge[idx]),
                       "norm": _curve(r.norm[idx]), "flat": _curve(r.flat[idx])},
            "answers": {}, "answer_errors": {},
        }
        from xasml.local.predict import predict_spectrum
        from xasml.references.evidence import evidence_curves, unknown_from_curves

        flat = cal_spec.replace(energy=r.energy, mu=r.flat, kind="norm")
        inputs: dict[str, Any] = {}

        def model_answer(task, bundle):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ans, X = self._predict(bundle, s, flat, result, opts, reference)
            inputs[task] = (bundle, X)
            return ans

        # the evidence compares the spectrum as the page normalised it: larch's e0 and ranges
        # (exactly as `xasml local predict`), or the user's edits of them
        unknown = (unknown_from_curves(s.absorbing_element, s.edge, r.energy, r.flat, r.e0, name=str(s.source))
                   if opts.normalisation_edited else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answers = predict_spectrum(s, opts.tasks, self._bundle_or_error, calibrate=opts.calibrate,
                                       reference=reference, evidence=True, references=self.library, name=name,
                                       model_answer=model_answer, unknown=unknown)
        for task, ans in answers.items():
            if "error" in ans:
                result["answer_errors"][task] = _one_line(ans["error"], s.source)
                continue
            result["answers"][task] = ans
            if task == "oxidation" and inputs.get(task) and inputs[task][1] is not None:
                b, X = inputs[task]
                result["model_input"] = {"energy": _curve(b.grid.energy), "x": _curve(X[0])}
        ox = result["answers"].get("oxidation", {})
        if ox.get("evidence"):
            curves = evidence_curves(ox["evidence"], self.standards())
            result["evidence_curves"] = {
                "lcf": None if curves["lcf"] is None else {
                    **{k: v for k, v in curves["lcf"].items() if k not in ("energy", "flat")},
                    "energy": _curve(curves["lcf"]["energy"]), "flat": _curve(curves["lcf"]["flat"])},
                "nearest": [{**{k: v for k, v in n.items() if k not in ("energy", "flat")},
                             "energy": _curve(n["energy"]), "flat": _curve(n["flat"])} for n in curves["nearest"]]}
            ep = ox["evidence"].get("edge_position") or {}
            if opts.e0 is not None and ep.get("measure") == "e0":
                warns.append(f"{s.source}: the edge-position valence uses your e0 ({opts.e0:.2f} eV) against the "
                             "standards' larch e0 (maximum of the derivative): an e0 chosen otherwise biases it")
        for ans in result["answers"].values():  # the model's warnings are the page's warnings
            for w in ans.get("warnings", []):
                if w not in warns:
                    warns.append(w)
        result["warnings"] = warns
        return result

    def _predict(self, bundle, s, flat, result: dict, opts: AnalysisOptions, reference):
        """One model's answer: as ``xasml local predict`` gives it, or, after the user edited the
        normalisation, from the flattened spectrum the page shows (same grid and scaling)."""
        if not opts.normalisation_edited or bundle.alignment != "calibrated":
            X, records = bundle.prepare_full([s], calibrate=opts.calibrate, reference=reference)
            ans = bundle.predict_prepared(X, records)[0]
            if opts.normalisation_edited:
                ans.setdefault("warnings", []).append(
                    f"{s.source}: this model aligns spectra by area; the edited e0 and ranges do not change its answer")
            return ans, X
        from xasml.preprocess.augment import max_normalize, shifted_resample

        # the warnings of the unedited answer (calibration, metal-like, ...) still hold; the
        # out-of-domain one is recomputed for the edited spectrum
        X0, records0 = bundle.prepare_full([s], calibrate=opts.calibrate, reference=reference)
        kept = [w for w in records0[0].get("warnings", [])]
        X = shifted_resample([flat], bundle.grid.energy, 0.0, kind="cubic")
        if bundle.normalization == "max":
            X = max_normalize(X)
        record = {"calibration": result["calibration"], "e0": result["e0"], "warnings": kept}
        return bundle.predict_prepared(X, [record])[0], X


def _warning_lines(caught, source) -> list[str]:
    """The messages of caught warnings (pedantic XDI ones dropped), each naming the file once."""
    from xasml.io.xdi import XDIPedanticWarning

    out = []
    for w in caught:
        if issubclass(w.category, XDIPedanticWarning):
            continue
        text = str(w.message)
        if source and not text.startswith(str(source)):
            text = f"{source}: {text}"
        if text not in out:
            out.append(text)
    return out


def _one_line(exc: BaseException, path) -> str:
    """An error as one line naming the file (``FILE: message``, :func:`xasml.errors.file_message`)."""
    return file_message(path, " ".join(str(exc).split()))


_DEFAULT: Analyzer | None = None


def analyze(path: str | Path, options: AnalysisOptions | dict | None = None) -> dict[str, Any]:
    """Analyse one file with a process-wide :class:`Analyzer` (models loaded on first use).

    Parameters
    ----------
    path : str or Path
    options : AnalysisOptions or dict, optional

    Returns
    -------
    dict
        See :meth:`Analyzer.analyze`.
    """
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Analyzer()
    return _DEFAULT.analyze(path, options)
