"""One oxidation state from independent evidence, with σ calibrated on measured standards.

Three estimates of the absorber's oxidation state, each with a raw σ:

* ``model``: the simulation-trained model (:mod:`xasml.local`), σ = its ensemble σ;
* ``lcf``: the valence implied by the best linear-combination fit
  (:func:`xasml.references.evidence.linear_combination_fit`), raw σ from the spread of the
  valences of the fits about as good as the best, the fit's R-factor, and whether the answer sits
  at the end of the valence range of the standards (a fit cannot extrapolate);
* ``edge_position``: the edge-energy line (:func:`xasml.references.evidence.edge_position_valence`),
  raw σ = the line's prediction σ.

Each raw σ is multiplied by a scale fitted on measured standards by split-conformal calibration
(Vovk et al., *Algorithmic Learning in a Random World* (2005); Angelopoulos & Bates,
arXiv:2107.07511): the scale is the finite-sample ⌈(n+1)·0.95⌉/n weighted quantile of |error|/σ_raw
over the development standards, halved, so that ±2σ holds the truth for 95 % of exchangeable
spectra (each compound weighs 1, split over its files). ``benchmarks/references.py`` fits the
scales leave-one-compound-out (a standard's own compound is out of the library and out of the
calibration) and writes the shipped ``xasml/data/references/calibration.json``.

The combination is the inverse-variance mean of the calibrated estimates. Their disagreement is
tested by χ² = Σ (vᵢ − v̄)²/σᵢ² on k − 1 degrees of freedom: above the 95 % point the output
says so and σ is widened by √(χ²/(k − 1)) (the Birge ratio). The combined σ then gets its own
conformal scale.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["METHODS", "LEVEL", "load_calibration", "conformal_scale", "lcf_raw_sigma", "combine",
           "collect_evidence", "gather_evidence", "assemble_evidence", "doubts"]

#: the evidence lines combined, in order
METHODS = ("model", "lcf", "edge_position")
#: coverage the conformal scales aim at (±2σ)
LEVEL = 0.95
#: a nearest standard less similar than this (Pearson r of flat) means the library has nothing like the spectrum
MIN_SIMILARITY = 0.96
#: two lines of evidence this far apart (oxidation state) make the answer doubtful
MAX_DISAGREEMENT = 1.5
#: the model this far from the measured standards' combined LCF and edge-position valence: flagged
MODEL_STANDARDS_GAP = 1.0


def calibration_path() -> Path:
    """Path of the shipped calibration (``xasml/data/references/calibration.json``)."""
    return Path(str(resources.files("xasml") / "data" / "references" / "calibration.json"))


def load_calibration(path: str | Path | None = None) -> dict[str, Any]:
    """The σ scales per evidence line (``scales``: method -> factor), shipped or from ``path``.

    Without a calibration file every scale is 1 (raw σ), and ``calibrated`` is False.
    """
    p = Path(path) if path else calibration_path()
    if not p.is_file():
        return {"scales": {m: 1.0 for m in (*METHODS, "combined")}, "calibrated": False}
    d = json.loads(p.read_text())
    d.setdefault("calibrated", True)
    return d


def conformal_scale(errors: Sequence[float], sigmas: Sequence[float], weights: Sequence[float] | None = None,
                    level: float = LEVEL) -> float | None:
    """Split-conformal σ scale: the weighted ⌈(n+1)·level⌉/n quantile of |error|/σ, halved.

    Parameters
    ----------
    errors, sigmas : sequence of float, shape (n,)
        Errors (prediction − truth) and raw σ of the calibration spectra.
    weights : sequence of float, optional
        Weights (default 1 each); n is their sum.
    level : float
        Coverage aimed at for ±2σ.

    Returns
    -------
    float or None
        The factor k such that ±2kσ covers ``level`` of the calibration spectra (None without data).
    """
    e = np.abs(np.asarray(errors, float))
    s = np.asarray(sigmas, float)
    w = np.ones_like(e) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(e) & np.isfinite(s) & (s > 0) & (w > 0)
    if not ok.any():
        return None
    z, w = e[ok] / s[ok], w[ok]
    order = np.argsort(z)
    z, w = z[order], w[order]
    n = w.sum()
    q = min(1.0, np.ceil((n + 1) * level) / n) if n >= 1 else 1.0
    cum = np.cumsum(w) / n
    i = int(np.searchsorted(cum, q - 1e-12))
    return float(max(z[min(i, len(z) - 1)] / 2.0, 1e-3))


def lcf_raw_sigma(lcf: Mapping[str, Any], valences: Iterable[float]) -> float | None:
    """Raw σ of the LCF valence (before the conformal scale).

    σ² = spread² + 0.3² + 0.3²·(R/0.005) + min(1, R/0.005)·[the valence is at an end of the
    standards' valence range], with spread the weighted spread of the valences of the fits whose
    R-factor is within 1.5× the best (:func:`~xasml.references.evidence.linear_combination_fit`)
    and R the best fit's R-factor: several fits as good but different, a poor fit, and a value a
    fit could not have exceeded (unless the end standard matches closely) all make the valence
    less certain. The scale is set by the conformal calibration that follows.
    """
    v = lcf.get("valence")
    if v is None:
        return None
    vals = [x for x in valences if x is not None and np.isfinite(x)]
    spread = lcf.get("valence_spread") or 0.0
    rf = float(lcf["best"]["r_factor"])
    edge = min(1.0, rf / 0.005) if vals and (v <= min(vals) + 0.05 or v >= max(vals) - 0.05) else 0.0
    return float(np.sqrt(spread ** 2 + 0.09 + 0.09 * rf / 0.005 + edge))


def combine(estimates: Mapping[str, tuple[float, float] | None], calibration: Mapping[str, Any] | None = None
            ) -> dict[str, Any]:
    """Inverse-variance combination of calibrated estimates, with a disagreement test.

    Parameters
    ----------
    estimates : mapping
        Method (``model``, ``lcf``, ``edge_position``) -> (value, raw σ) or None (no answer).
    calibration : mapping, optional
        :func:`load_calibration`'s dict (default: the shipped one).

    Returns
    -------
    dict
        ``oxidation_state``, ``sigma`` (calibrated; None when no method answered), ``methods``
        (those used), ``calibrated`` (each method's value and calibrated σ), ``chi2``, ``dof``,
        ``disagree`` (bool), ``widened_by`` (the Birge ratio applied, 1 when none) and
        ``warnings``.
    """
    from scipy.stats import chi2 as chi2_dist

    cal = calibration if calibration is not None else load_calibration()
    scales = cal.get("scales", {})
    used = {}
    for m, est in estimates.items():
        if est is None or est[0] is None or est[1] is None or not np.isfinite(est[0]):
            continue
        used[m] = (float(est[0]), float(est[1]) * float(scales.get(m, 1.0) or 1.0))
    out: dict[str, Any] = {"methods": list(used), "calibrated": {m: {"value": round(v, 3), "sigma": round(s, 3)}
                                                                 for m, (v, s) in used.items()},
                           "warnings": []}
    if not used:
        return {**out, "oxidation_state": None, "sigma": None, "chi2": None, "dof": 0, "disagree": False,
                "widened_by": 1.0, "warnings": ["no evidence: no model and no measured standard of this element "
                                                "and edge with known valence"]}
    v = np.array([x[0] for x in used.values()])
    s = np.maximum(np.array([x[1] for x in used.values()]), 1e-3)
    w = 1 / s ** 2
    mean = float(np.sum(w * v) / w.sum())
    sig = float(np.sqrt(1 / w.sum()))
    dof = len(v) - 1
    chi2 = float(np.sum((v - mean) ** 2 * w))
    disagree = bool(dof > 0 and chi2 > chi2_dist.ppf(0.95, dof))
    widen = float(np.sqrt(chi2 / dof)) if disagree else 1.0
    sig *= widen * float(scales.get("combined", 1.0) or 1.0)
    if disagree:
        parts = ", ".join(f"{m} {x[0]:.2f} ± {x[1]:.2f}" for m, x in used.items())
        out["warnings"].append(f"the evidence disagrees beyond its σ ({parts}; χ² {chi2:.1f} on {dof} dof): "
                               f"σ widened ×{widen:.1f}")
    if len(used) == 1:
        out["warnings"].append(f"only one line of evidence ({next(iter(used))})")
    return {**out, "oxidation_state": round(mean, 3), "sigma": round(sig, 3), "chi2": round(chi2, 3), "dof": dof,
            "disagree": disagree, "widened_by": round(widen, 3)}


def doubts(nearest: Sequence[Mapping[str, Any]], model: tuple[float, float] | None,
           lcf: tuple[float, float] | None, edge: tuple[float, float] | None, element: str, edge_name: str) -> list[str]:
    """Why an answer is doubtful, from the raw evidence (no σ calibration involved): the reasons.

    Doubtful when no standard of the element and edge is in the library, when the nearest one is
    less similar than :data:`MIN_SIMILARITY` (nothing like the spectrum was measured), or when two
    lines of evidence differ by :data:`MAX_DISAGREEMENT` or more (the model against the LCF or the
    edge position; without a model, the LCF against the edge position). Doubtful answers get the
    σ scales calibrated on doubtful standards (``scales_doubtful``; group-conditional, "Mondrian"
    conformal calibration, Vovk et al. 2005 §4.5), the others those calibrated on the others.
    """
    out = []
    if not nearest:
        out.append(f"no {element} {edge_name} standard in the reference library")
    elif nearest[0]["similarity"] < MIN_SIMILARITY:
        out.append(f"no measured standard resembles this spectrum (best: {nearest[0]['compound']}, "
                   f"r = {nearest[0]['similarity']:.3f} < {MIN_SIMILARITY})")
    pairs = [("model", model, "LCF", lcf), ("model", model, "edge position", edge)] if model is not None \
        else [("LCF", lcf, "edge position", edge)]
    for n1, a, n2, b in pairs:
        if a is not None and b is not None and abs(a[0] - b[0]) >= MAX_DISAGREEMENT:
            out.append(f"the {n1} ({a[0]:.2f}) and the {n2} ({b[0]:.2f}) differ by {abs(a[0] - b[0]):.1f} in "
                       "oxidation state")
    return out


def gather_evidence(unknown, library, exclude_compounds: Iterable[str] = (), k_nearest: int = 5,
                    max_components: int = 3) -> dict[str, Any]:
    """The measured-standard evidence of one spectrum before any σ calibration.

    Parameters
    ----------
    unknown : xasml.references.evidence.Unknown
        The measured spectrum (:func:`~xasml.references.evidence.unknown_from_spectrum`).
    library : pandas.DataFrame
        Reference library (:func:`xasml.references.library.load_library`).
    exclude_compounds : iterable of str
        Compounds left out of the library (leave-one-compound-out).
    k_nearest, max_components : int
        Number of nearest standards; most LCF components.

    Returns
    -------
    dict
        ``nearest``, ``lcf`` (or None), ``edge_position`` (or None), ``valences`` (distinct
        valences of the standards used), ``element``, ``edge``.
    """
    from xasml.references.evidence import (edge_position_valence, linear_combination_fit, nearest_standards,
                                           standards_for)

    ex = list(exclude_compounds)
    stds = standards_for(library, unknown.element, unknown.edge, ex, known_valence=True)
    return {"element": unknown.element, "edge": unknown.edge,
            "nearest": nearest_standards(unknown, library, k=k_nearest, exclude_compounds=ex),
            "lcf": linear_combination_fit(unknown, library, max_components=max_components, exclude_compounds=ex),
            "edge_position": edge_position_valence(unknown, library, exclude_compounds=ex),
            "valences": sorted(set(float(v) for v in stds["valence"].tolist()))}


def assemble_evidence(gathered: Mapping[str, Any], model: Mapping[str, Any] | None = None,
                      calibration: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Calibrate, combine and flag the evidence of :func:`gather_evidence` and the model's answer.

    Parameters
    ----------
    gathered : mapping
        :func:`gather_evidence`'s result.
    model : mapping, optional
        The model's answer: ``prediction``, ``std`` and ``status`` (``xasml local predict``'s
        record; ``status == "metal"``: the answer of the metal evidence, not judged against the
        standards).
    calibration : mapping, optional
        σ scales (:func:`load_calibration`; default the shipped ones).

    Returns
    -------
    dict
        ``evidence``: ``model`` (value, σ calibrated), ``lcf`` (valence, σ, the best fits),
        ``edge_position`` (valence, σ, the line), ``nearest`` (standards with similarity and
        shift); ``combined`` (:func:`combine`); ``flagged`` (the answer is doubtful: :func:`doubts`,
        the model :data:`MODEL_STANDARDS_GAP` or more from the combined LCF and edge-position
        valence, or the χ² test), ``doubtful`` (:func:`doubts` only: which σ scales were used),
        ``flag_reasons`` and ``warnings``.
    """
    cal = calibration if calibration is not None else load_calibration()
    nearest, lcf, edge, vals = gathered["nearest"], gathered["lcf"], gathered["edge_position"], gathered["valences"]
    el, ed = gathered["element"], gathered["edge"]
    warnings: list[str] = []
    lcf_est = edge_est = model_est = None
    if lcf is not None and len(vals) >= 2:
        lcf_est = (lcf["valence"], lcf_raw_sigma(lcf, vals))
    elif lcf is not None:
        warnings.append(f"fewer than 2 valences among the {el} {ed} standards: the linear combination implies "
                        "no valence")
        lcf = {**lcf, "valence": None}
    if edge is not None:
        edge_est = (edge["valence"], edge["sigma"])
    if model is not None and model.get("prediction") is not None:
        model_est = (float(model["prediction"]), float(model.get("std") or 0.0) or 0.5)
    # an answer from the metal evidence (edge at the foil's tabulated energy, no white line;
    # xasml.local.metal) is a physical check of its own: it is not judged against the standards
    metal = model is not None and model.get("status") == "metal"
    reasons = doubts(nearest, None if metal else model_est, lcf_est, edge_est, el, ed)
    group = "scales_doubtful" if reasons and "scales_doubtful" in cal else "scales"
    scales = dict(cal.get(group, {}))
    if group == "scales":  # an element's own scales where its standards gave them
        scales.update((cal.get("scales_by_element") or {}).get(el, {}))
    cal_used = {**cal, "scales": scales}
    if lcf_est is not None:
        lcf = {**lcf, "sigma_raw": round(lcf_est[1], 3), "sigma": round(lcf_est[1] * float(scales.get("lcf", 1.0)), 3)}
    if edge is not None:
        edge = {**edge, "sigma_raw": edge["sigma"],
                "sigma": round(edge["sigma"] * float(scales.get("edge_position", 1.0)), 3)}
    model_ev = None
    if model_est is not None:
        model_ev = {"value": round(model_est[0], 3), "sigma_raw": round(model_est[1], 3),
                    "sigma": round(model_est[1] * float(scales.get("model", 1.0)), 3)}
        if model.get("out_of_domain") is not None:
            model_ev["out_of_domain"] = model["out_of_domain"]
    combined = combine({"model": model_est, "lcf": lcf_est, "edge_position": edge_est}, cal_used)
    doubt_reasons = list(reasons)
    flag_reasons = list(reasons)
    if model_est is not None and not metal and (lcf_est is not None or edge_est is not None):
        standards = combine({"lcf": lcf_est, "edge_position": edge_est}, cal_used)
        d = abs(model_est[0] - standards["oxidation_state"])
        if d >= MODEL_STANDARDS_GAP and not any(r.startswith("the model") for r in reasons):
            flag_reasons.append(f"the model ({model_est[0]:.2f}) is {d:.1f} from the measured standards' "
                                f"{standards['oxidation_state']:.2f} ± {standards['sigma']:.2f}")
    flagged = bool(flag_reasons) or bool(combined.get("disagree"))
    reasons = flag_reasons
    warnings += combined["warnings"] + reasons
    return {"evidence": {"model": model_ev, "lcf": lcf, "edge_position": edge, "nearest": nearest},
            "combined": {k: combined[k] for k in ("oxidation_state", "sigma", "methods", "calibrated", "chi2", "dof",
                                                  "disagree", "widened_by")},
            "flagged": flagged, "doubtful": bool(doubt_reasons), "flag_reasons": reasons,
            "warnings": list(dict.fromkeys(warnings)),
            "sigma_calibration": "measured standards (leave-one-compound-out split conformal)" if cal.get("calibrated")
            else "none (raw σ)"}


def collect_evidence(unknown, library, model: Mapping[str, Any] | None = None,
                     calibration: Mapping[str, Any] | None = None, exclude_compounds: Iterable[str] = (),
                     k_nearest: int = 5, max_components: int = 3) -> dict[str, Any]:
    """Every line of evidence for one measured spectrum, and the combined oxidation state.

    :func:`gather_evidence` then :func:`assemble_evidence`.

    Parameters
    ----------
    unknown : xasml.references.evidence.Unknown
        The measured spectrum (:func:`~xasml.references.evidence.unknown_from_spectrum`).
    library : pandas.DataFrame
        Reference library (:func:`xasml.references.library.load_library`).
    model : mapping, optional
        The model's answer: ``prediction`` and ``std`` (``xasml local predict``'s record).
    calibration : mapping, optional
        σ scales (:func:`load_calibration`; default the shipped ones).
    exclude_compounds : iterable of str
        Compounds left out of the library (leave-one-compound-out).
    k_nearest, max_components : int
        Number of nearest standards; most LCF components.

    Returns
    -------
    dict
        See :func:`assemble_evidence`.
    """
    return assemble_evidence(gather_evidence(unknown, library, exclude_compounds, k_nearest, max_components),
                             model, calibration)
