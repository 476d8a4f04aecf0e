"""``xasml local predict``: coordination environment, coordination number and oxidation state of
spectrum files with the local-structure model bundles (:mod:`xasml.models.bundle`, which holds the
bundle format and how spectra are prepared for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from xasml.errors import DataError, SpectrumError
from xasml.models.bundle import TASKS, ModelBundle, find_bundle
from xasml.preprocess.calibrated import is_computed


#: ``--task all``: every task, in this order
ALL = "all"
#: keys shared by the tasks of one spectrum (top level of a ``--task all`` result)
_SHARED = ("calibration", "e0", "metal_evidence")


def predict_files(files: Sequence[str | Path], task: str, model: str | Path | None = None,
                  element: str | None = None, edge: str | None = None, energy_col: str | None = None,
                  mu: str | None = None, calibrate: str = "auto", reference: str | Path | None = None,
                  evidence: bool = True, references: Sequence[str | Path] | None = None,
                  scan: str | None = None) -> list[dict]:
    """Predict ``task`` for spectrum files (FEFF ``xmu.dat``, XDI, Athena, column files).

    The model is ``model``, or the one shipped for the spectrum's absorbing element (``element``
    when the file does not say; :func:`find_bundle`). Metallic measured spectra get "metal" or an
    abstention instead of a ligand environment (:func:`xasml.local.metal.apply_metal_evidence`).

    Parameters
    ----------
    files : sequence of path
        Spectrum files, or folders (every FEFF ``xmu.dat`` and XDI file in them, see
        :func:`expand_inputs`). An Athena project gives one result per group.
    task : {"coordination", "cn", "oxidation", "all"}
        ``"all"``: the three tasks in one result per spectrum.
    model : path, optional
        See :func:`find_bundle`.
    element, edge : str, optional
        Absorbing element and edge for files that do not state them (and to check those that do).
    energy_col, mu : str, optional
        Column files: energy column and μ (name, 1-based index or expression, e.g. ``ln(i0/it)``).
    calibrate, reference :
        Energy calibration of measured spectra (:func:`xasml.preprocess.calibrate.calibrate`).
    evidence : bool
        Oxidation state of measured spectra: add the evidence of the measured reference standards
        and the combined answer (:func:`xasml.references.combine.collect_evidence`).
    references : sequence of path, optional
        The user's reference libraries, read with the shipped one (``--references DIR``).
    scan : str, optional
        SPEC and HDF5/NeXus files with several scans: which one (default the last; ``--scan``).

    Returns
    -------
    list of dict
        One per spectrum: ``file``, ``absorbing_element``, ``status`` (``"ok"``, ``"metal"`` or
        ``"abstained"``), ``prediction`` (null when abstained), and ``probabilities`` (class ->
        probability) and ``environment_name`` (ChemEnv's name of the predicted symbol) for
        classification, or ``std`` for regression: the standard deviation of the ensemble members
        times the factor calibrated on validation data so that ±2σ covers 95 % of validation
        sites; for measured spectra the ``calibration`` record, ``warnings`` and
        ``metal_evidence`` when the spectrum looks metallic; ``error`` instead when the file could
        not be used. The oxidation state of a measured spectrum also has ``evidence`` (``model``,
        ``lcf``, ``edge_position``, ``nearest``), ``combined`` (the oxidation state and σ from all
        of them, σ calibrated on measured standards), ``flagged`` and ``flag_reasons``. Each
        spectrum goes through :func:`predict_spectrum`. With ``task="all"``:
        ``coordination``, ``cn`` and ``oxidation`` hold the
        per-task results (or their ``error``), and ``calibration``, ``e0``, ``metal_evidence``
        and ``warnings`` (of every task, once each) sit at the top.
    """
    from xasml.io.reader import read_spectra

    tasks = list(TASKS) if task == ALL else [task]
    if task != ALL and task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)} or {ALL}")
    bundles: dict[tuple[str, str], ModelBundle] = {}

    def bundle_for(t: str, el: str) -> ModelBundle:
        key = (t, el if model is None else "given")
        if key not in bundles:
            bundles[key] = ModelBundle.load(find_bundle(t, model, el))
        return bundles[key]

    out = []
    for f in expand_inputs(files):
        try:  # an Athena project's reference ('Ref') groups calibrate its samples; they are not answered
            spectra = read_spectra(f, element, edge, energy_col, mu, include_references=False, scan=scan)
        except (SpectrumError, DataError, OSError, ValueError) as exc:
            out.append({"file": str(f), "error": str(exc)})
            continue
        for s in spectra:
            name = str(f) if len(spectra) == 1 else f"{f}:{s.metadata.get('label') or s.material_id}"
            per_task = predict_spectrum(s, tasks, bundle_for, calibrate=calibrate, reference=reference,
                                        evidence=evidence, references=references, name=name)
            if task != ALL:
                out.append(per_task[task])
            else:
                out.append(_merge_tasks({"file": name, "absorbing_element": s.absorbing_element}, per_task))
        for fail in getattr(spectra, "failed", []):  # Athena groups that could not be read: never silent
            out.append({"file": f"{f}:{fail.label}", "error": str(fail.error)})
    return out


def predict_spectrum(spectrum, tasks: Sequence[str], bundle_for: Callable[[str, str], ModelBundle],
                     calibrate: str = "auto", reference=None, evidence: bool = True,
                     references: Sequence[str | Path] | None = None, name: str | None = None,
                     model_answer: Callable[[str, ModelBundle], dict] | None = None,
                     unknown=None) -> dict[str, dict]:
    """The answers for one spectrum: the one answer path of ``xasml local predict`` and ``xasml serve``.

    For each task the model's answer (:meth:`ModelBundle.predict`), then the metal rule
    (:func:`xasml.local.metal.apply_metal_evidence`); for the oxidation state of a measured
    spectrum, the evidence of the measured reference standards and the combined answer
    (:func:`xasml.references.combine.collect_evidence`: nearest standards, linear-combination
    fit, edge-position valence, inverse-variance combination with calibrated σ, ``flagged``).

    Parameters
    ----------
    spectrum : Spectrum
        One spectrum (measured: absolute eV, with element and edge; or computed).
    tasks : sequence of {"coordination", "cn", "oxidation"}
    bundle_for : callable
        ``bundle_for(task, element)`` -> the :class:`ModelBundle`; raises ``DataError`` when there is none.
    calibrate, reference :
        Energy calibration of measured spectra (:func:`xasml.preprocess.calibrate.calibrate`;
        ``reference``: a foil scan, ``Spectrum`` or path).
    evidence : bool
        Add the measured-standard evidence to the oxidation state of a measured spectrum.
    references : sequence of path, optional
        The user's reference libraries, read with the shipped one (``--references DIR``).
    name : str, optional
        How results and warnings name the spectrum (default its source).
    model_answer : callable, optional
        ``model_answer(task, bundle)`` -> the model's raw record, instead of
        ``bundle.predict([spectrum], calibrate=calibrate, reference=reference)[0]`` (the beamline
        page gives the model the spectrum as the user normalised it).
    unknown : xasml.references.evidence.Unknown, optional
        The spectrum as the evidence compares it, instead of
        :func:`~xasml.references.evidence.unknown_from_spectrum` (larch's e0 and ranges): e.g.
        with the user's own e0 and ranges (:func:`~xasml.references.evidence.unknown_from_curves`).

    Returns
    -------
    dict
        Task -> the result (see :func:`predict_files`), or ``{"file", "absorbing_element",
        "error"}`` for a task that could not be answered (no model, a failed check).
    """
    from xasml.local.metal import apply_metal_evidence

    head = {"file": name or str(spectrum.source), "absorbing_element": spectrum.absorbing_element}
    per_task: dict[str, dict] = {}
    for t in tasks:
        try:
            b = bundle_for(t, spectrum.absorbing_element)
            res = (model_answer(t, b) if model_answer is not None
                   else b.predict([spectrum], calibrate=calibrate, reference=reference)[0])
            per_task[t] = apply_metal_evidence({**head, **res}, t)
        except (SpectrumError, DataError, OSError, ValueError) as exc:
            per_task[t] = {**head, "error": str(exc)}
    ox = per_task.get("oxidation")
    if evidence and ox is not None and "error" not in ox and not is_computed(spectrum):
        per_task["oxidation"] = ox = _with_evidence(ox, spectrum, calibrate, reference, references, unknown)
    if evidence and not is_computed(spectrum):
        ev = _standards_evidence(per_task, ox, spectrum, calibrate, reference, references, unknown)
        if ev is not None:
            per_task = _metal_from_standards(per_task, ev, spectrum, calibrate, reference)
            per_task = _geometry_from_standards(per_task, ev)
    return per_task


def _open_tasks(per_task: dict[str, dict], tasks: Sequence[str] | None = None) -> list[str]:
    """The tasks (of ``tasks``, default all) the model answered and no rule has answered since."""
    return [t for t, r in per_task.items() if (tasks is None or t in tasks) and "error" not in r
            and r.get("status") == "ok" and r.get("prediction") is not None]


def _standards_evidence(per_task: dict[str, dict], ox: dict | None, spectrum, calibrate: str, reference,
                        references, unknown) -> dict | None:
    """The measured-standard evidence of a spectrum, computed once for the rules that check the answers
    against it: the oxidation state's, or (geometry tasks only) computed here; None when no answer is
    open to a check."""
    if not _open_tasks(per_task):
        return None
    if ox is not None and "evidence" in ox:
        return ox["evidence"]
    base = next(iter(per_task.values()))
    return _with_evidence({"file": base["file"], "prediction": None}, spectrum, calibrate, reference, references,
                          unknown).get("evidence")


#: the closest measured standard, when at least this similar (r of
#: :func:`xasml.references.evidence.nearest_standards`), is the same kind of site: leave-one-compound-out
#: on the shipped library, the closest other compound at r >= 0.99, where its structure is known, had the
#: standard's own environment for 37 of 39 standards
SAME_SITE_R = 0.99
#: a CN answer this far from such a standard's is contradicted by it
SAME_SITE_CN = 2.0


def _geometry_from_standards(per_task: dict[str, dict], evidence: dict) -> dict[str, dict]:
    """Check the environment and CN answers against a measured standard of known structure whose spectrum
    is nearly the same (r >= :data:`SAME_SITE_R`): a model that contradicts it is ``flagged``, with the
    standard named (pyrolusite MnO2 measured answered T:4 at p 1.00 by the Mn classifier, the library's
    pyrolusite at r 1.000 being O:6). ``evidence``: :func:`_standards_evidence`'s."""
    open_tasks = _open_tasks(per_task, ("coordination", "cn"))
    nearest = evidence.get("nearest") or []
    if not open_tasks:
        return per_task
    out = dict(per_task)
    for t in open_tasks:
        key = "environment" if t == "coordination" else "cn"
        close = nearest[0] if nearest and nearest[0]["similarity"] >= SAME_SITE_R else None
        if close is None or close.get(key) is None:  # the closest standard's structure decides, or nothing
            continue
        r = per_task[t]
        pred, known = r["prediction"], close[key]
        if t == "coordination" and pred != known:
            why = (f"the measured standard {close['compound']} (r {close['similarity']:.3f}, nearly the same "
                   f"spectrum) is {known} by its structure; the model says {pred} "
                   f"(p {r.get('probabilities', {}).get(pred, float('nan')):.2f})")
        elif t == "cn" and abs(float(pred) - float(known)) >= SAME_SITE_CN:
            why = (f"the measured standard {close['compound']} (r {close['similarity']:.3f}, nearly the same "
                   f"spectrum) has CN {known:g} by its structure; the model says {float(pred):.1f}")
        else:
            continue
        out[t] = {**r, "flagged": True, "flag_reasons": [*r.get("flag_reasons", []), why],
                  "warnings": list(dict.fromkeys([*r.get("warnings", []), f"{r['file']}: {why}"]))}
    return out


def _metal_from_standards(per_task: dict[str, dict], evidence: dict, spectrum, calibrate: str,
                          reference) -> dict[str, dict]:
    """Apply the metal rule from the measured standards (:func:`xasml.local.metal.metal_from_standards`)
    to every task the spectral metal test left to the model (e.g. a foil scan a few eV off its edge).
    ``evidence``: :func:`_standards_evidence`'s. The edge shape is computed only when the fit says foil."""
    from xasml.local.metal import apply_metal_evidence, metal_from_standards

    open_tasks = _open_tasks(per_task)
    if metal_from_standards(evidence, spectrum.absorbing_element) is None:
        return per_task
    found = metal_from_standards(evidence, spectrum.absorbing_element, _edge_shape(spectrum, calibrate, reference))
    if found.get("strength") != "metal":  # a compound the foil fits: said, not answered as a metal
        return {t: ({**r, "warnings": list(dict.fromkeys([*r.get("warnings", []), f"{r['file']}: {found['message']}"]))}
                    if t in open_tasks else r) for t, r in per_task.items()}
    out = dict(per_task)
    for t in open_tasks:
        res = apply_metal_evidence({**per_task[t], "metal_evidence": found}, t)
        res["warnings"] = list(dict.fromkeys([*res.get("warnings", []), f"{res['file']}: metal: {found['message']}"]))
        if t == "oxidation" and "combined" in res:  # the standards' own answer stays beside the metal rule's 0
            res["status"] = "metal"
        out[t] = res
    return out


def _edge_shape(spectrum, calibrate: str, reference) -> dict | None:
    """:func:`xasml.preprocess.calibrated.metal_shape` of a measured spectrum as the evidence sees it
    (``evidence["edge_shape"]`` of :func:`_with_evidence`)."""
    from xasml.preprocess.calibrated import metal_shape
    from xasml.references.evidence import unknown_from_spectrum

    u = unknown_from_spectrum(spectrum, calibrate=calibrate, reference=reference)
    return metal_shape(u.energy, u.flat, u.e0, u.element)


def _with_evidence(result: dict, spectrum, calibrate: str, reference, references, unknown=None) -> dict:
    """An oxidation-state result with the measured-standard evidence and the combined answer added
    (:mod:`xasml.references`); a spectrum the evidence cannot use keeps the model's answer, with a warning."""
    from xasml.references.combine import collect_evidence
    from xasml.references.evidence import unknown_from_spectrum
    from xasml.references.library import cached_library

    # the status tells the evidence that an answer of the metal rule is not the model's to judge
    model = {"prediction": result.get("prediction"), "std": result.get("std"),
             "out_of_domain": result.get("out_of_domain"), "status": result.get("status")}
    try:
        if unknown is None:
            unknown = unknown_from_spectrum(spectrum, calibrate=calibrate, reference=reference)
        ev = collect_evidence(unknown, cached_library(references),
                              model=model if model["prediction"] is not None else None)
    except (SpectrumError, DataError, ValueError) as exc:
        return {**result, "warnings": [*result.get("warnings", []), f"no evidence from measured standards: {exc}"]}
    warns = list(result.get("warnings", [])) + [f"{result['file']}: {w}" for w in ev["warnings"]]
    return {**result, "evidence": ev["evidence"], "combined": ev["combined"], "flagged": ev["flagged"],
            "flag_reasons": ev["flag_reasons"], "warnings": list(dict.fromkeys(warns))}


def _merge_tasks(head: dict, per_task: dict[str, dict]) -> dict:
    """One ``--task all`` result from the per-task results of a spectrum (see :func:`predict_files`)."""
    if all("error" in r for r in per_task.values()):
        return {**head, "error": next(iter(per_task.values()))["error"]}
    merged: dict = dict(head)
    warnings: list[str] = []
    for t, r in per_task.items():
        r = dict(r)
        for k in _SHARED:
            if k in r:
                merged.setdefault(k, r.pop(k))
        for w in r.pop("warnings", []):
            if w not in warnings:
                warnings.append(w)
        merged[t] = {k: v for k, v in r.items() if k not in head}
    merged["warnings"] = warnings
    return merged


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files to predict: each file as given; for a folder, every ``xmu.dat`` (FEFF) and ``*.xdi``
    file below it, sorted.

    Raises
    ------
    DataError
        If a folder holds no such file.
    """
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and (q.name == "xmu.dat" or q.suffix.lower() == ".xdi"))
            if not found:
                raise DataError(f"{p}: folder holds no FEFF xmu.dat or .xdi file")
            out += found
        else:
            out.append(p)
    return out
