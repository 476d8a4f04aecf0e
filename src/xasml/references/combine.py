"""One oxidation state from independent evidence, with σ calibrated on measured standards, and an out-of-domain flag.

Three estimates of the absorber's oxidation state, each with a raw σ:

* ``model``: the simulation-trained model (:mod:`xasml.local`), σ = its ensemble σ;
* ``lcf``: the valence implied by the best linear-combination fit
  (:func:`xasml.references.evidence.linear_combination_fit`), raw σ from the spread of the
  valences of the fits about as good as the best, the fit's R-factor, and whether the answer sits
  at the end of the valence range of the standards (a fit cannot extrapolate; with fewer than 3
  valences it never can);
* ``edge_position``: the edge-energy line (:func:`xasml.references.evidence.edge_position_valence`),
  raw σ = the line's prediction σ.

Each raw σ is multiplied by a scale fitted on measured standards by split-conformal calibration
(Vovk et al., *Algorithmic Learning in a Random World* (2005); Angelopoulos & Bates,
arXiv:2107.07511): the scale is the finite-sample ⌈(n+1)·0.95⌉/n weighted quantile of |error|/σ_raw
over the development standards, halved, so that ±2σ holds the truth for 95 % of exchangeable
spectra (each compound weighs 1, split over its files). The scales are group-conditional
("Mondrian", Vovk et al. §4.5): one set where the lines of evidence agree, one where two of them
lie :data:`DISAGREE_GAP` or more apart. ``benchmarks/references.py`` fits them leave-one-compound-out
(a standard's own compound is out of the library and out of the calibration) and writes the shipped
``xasml/data/references/calibration.json``.

The combination (:func:`assemble_evidence`) is the inverse-variance mean of the calibrated
estimates, σ widened by their spread; a metal answer is the metal evidence's. The answer is flagged
only on evidence that it is unreliable (nothing measured to check it, an extrapolation beyond the
standards' valences, lines of evidence :data:`FLAG_GAP` apart, the model out of its domain).
"""

from __future__ import annotations

import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["METHODS", "LEVEL", "load_calibration", "conformal_scale", "lcf_raw_sigma", "combine",
           "collect_evidence", "gather_evidence", "assemble_evidence"]

#: the evidence lines combined, in order
METHODS = ("model", "lcf", "edge_position")
#: coverage the conformal scales aim at (±2σ)
LEVEL = 0.95
#: R-factor of the best linear-combination fit above which no combination of the standards reproduces
#: the spectrum (flagged); None: no such flag. The shipped value (``flag.max_r_factor`` of
#: calibration.json) is chosen by nested leave-one-compound-out in benchmarks/references.py; on the
#: development standards each threshold raised the share of right answers flagged more than the share
#: of wrong ones caught, so none is shipped
MAX_R_FACTOR = None
#: the χ² test of :func:`combine` reports disagreement above its (1 − CHI2_ALPHA) point
CHI2_ALPHA = 0.05
#: two lines of evidence this far apart (oxidation state) describe different compounds: the answer
#: takes the σ scales of the "disagree" regime
DISAGREE_GAP = 1.0
#: default gap between two lines of evidence that flags the answer: this far apart, at least one
#: of them is off by 1 or more. The shipped value (``flag.max_gap`` of calibration.json) is chosen by
#: nested leave-one-compound-out in benchmarks/references.py
FLAG_GAP = 2.0
#: an answer this far outside the valences of the element's standards is an extrapolation (flagged)
SPAN_MARGIN = 0.5


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
    if len(set(vals)) < 3:  # two valences: every answer lies on the one segment between them
        edge = 1.0
    else:
        edge = min(1.0, rf / 0.005) if vals and (v <= min(vals) + 0.05 or v >= max(vals) - 0.05) else 0.0
    return float(np.sqrt(spread ** 2 + 0.09 + 0.09 * rf / 0.005 + edge))


def combine(estimates: Mapping[str, tuple[float, float] | None], calibration: Mapping[str, Any] | None = None,
            alpha: float = CHI2_ALPHA) -> dict[str, Any]:
    """Inverse-variance combination of calibrated estimates, σ widened by their spread, and a disagreement test.

    Parameters
    ----------
    estimates : mapping
        Method (``model``, ``lcf``, ``edge_position``) -> (value, raw σ) or None (no answer).
    calibration : mapping, optional
        :func:`load_calibration`'s dict (default: the shipped one); ``scales`` multiply the raw σ.
    alpha : float
        Significance of the disagreement test.

    Returns
    -------
    dict
        ``oxidation_state``, ``sigma`` (calibrated; None when no method answered), ``methods``
        (those used), ``calibrated`` (each method's value and calibrated σ), ``chi2``, ``dof``,
        ``disagree`` (χ² above its 1 − ``alpha`` point), ``widened_by`` (σ is the inverse-variance
        σ and the sample standard deviation of the answers added in quadrature, then times the
        ``combined`` scale: answers that scatter widen σ; this is the factor) and ``warnings``.
    """
    # χ² quantile from scipy.special (chdtri: the inverse of the upper tail) rather than scipy.stats,
    # whose import alone costs ~0.3 s of a one-file `xasml local predict` (benchmarks/shell_speed.py)
    from scipy.special import chdtri

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
    disagree = bool(dof > 0 and chi2 > chdtri(dof, alpha))
    spread = float(np.std(v, ddof=1)) if dof > 0 else 0.0
    widen = float(np.hypot(sig, spread) / sig)
    sig = float(np.hypot(sig, spread)) * float(scales.get("combined", 1.0) or 1.0)
    if disagree:
        parts = ", ".join(f"{m} {x[0]:.2f} ± {x[1]:.2f}" for m, x in used.items())
        out["warnings"].append(f"the evidence disagrees beyond its σ ({parts}; χ² {chi2:.1f} on {dof} dof)")
    if widen > 1.05:
        out["warnings"].append(f"σ widened ×{widen:.1f} by the spread of the answers ({spread:.2f})")
    if len(used) == 1:
        out["warnings"].append(f"only one line of evidence ({next(iter(used))})")
    return {**out, "oxidation_state": round(mean, 3), "sigma": round(sig, 3), "chi2": round(chi2, 3), "dof": dof,
            "disagree": disagree, "widened_by": round(widen, 3)}


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
        valences of the standards used), ``element``, ``edge``, ``shape`` (the edge shape,
        :func:`xasml.preprocess.calibrated.metal_shape`, or None).
    """
    from xasml.preprocess.calibrated import metal_shape
    from xasml.references.evidence import (edge_position_valence, linear_combination_fit, nearest_standards,
                                           standards_for)

    ex = list(exclude_compounds)
    stds = standards_for(library, unknown.element, unknown.edge, ex, known_valence=True)
    return {"element": unknown.element, "edge": unknown.edge,
            "shape": metal_shape(unknown.energy, unknown.flat, unknown.e0, unknown.element),
            "nearest": nearest_standards(unknown, library, k=k_nearest, exclude_compounds=ex),
            "lcf": linear_combination_fit(unknown, library, max_components=max_components, exclude_compounds=ex),
            "edge_position": edge_position_valence(unknown, library, exclude_compounds=ex),
            "valences": sorted(set(float(v) for v in stds["valence"].tolist()))}


def assemble_evidence(gathered: Mapping[str, Any], model: Mapping[str, Any] | None = None,
                      calibration: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Calibrate, combine and flag the evidence of :func:`gather_evidence` and the model's answer.

    1. An answer of the metal evidence (``status == "metal"``: edge at the foil's tabulated energy,
       no white line; :func:`xasml.preprocess.calibrated.metal_evidence`) is a physical check of its
       own: it is the answer, the standards are reported beside it.
    2. Every other line of evidence is averaged in, the model's too, even where standards fit the
       spectrum closely and the model lies far from them: their disagreement is what the regime, σ
       and the flag report. (Leaving such a model out, as an earlier version did, hid exactly the
       disagreements that mark wrong answers: on the development standards, nested
       leave-one-compound-out, answers off by ≥ 1 caught 31 % → 77 % for elements with a model,
       benchmarks/references.py.)
    3. Regime: ``"disagree"`` when two of the lines used lie :data:`DISAGREE_GAP` or more apart, else
       ``"agree"``; each regime has its own conformal σ scales (``scales_disagree`` and ``scales``
       of the calibration; group-conditional, "Mondrian" conformal prediction, Vovk et al. 2005
       §4.5), so mild disagreement widens σ instead of raising a flag. :func:`combine` averages the
       calibrated lines.
    4. The answer is **flagged** (out of domain) only on evidence that it is unreliable: no measured
       standard to check it against (none of the element and edge, or fewer than 2 valences among
       them and no edge line) or a single line of evidence that nothing cross-checks; a best fit
       that is mostly the element's metal foil (:data:`xasml.references.evidence.FOIL_WEIGHT`)
       for a spectrum whose edge is not a metal's (:func:`xasml.preprocess.calibrated.metal_shape`:
       the foil stands in for a compound the library lacks, as for NiS without NiS); no
       combination of the standards reproduces the spectrum (best R-factor above
       ``flag.max_r_factor``, default :data:`MAX_R_FACTOR`); the model's out-of-domain score
       above its warning level (:data:`xasml.models.bundle.OOD_WARN`); the answer more than
       :data:`SPAN_MARGIN` outside the valences of the standards (an extrapolation nothing measured
       confirms); or two lines of evidence ``flag.max_gap`` (default :data:`FLAG_GAP`) or more
       apart.

    Parameters
    ----------
    gathered : mapping
        :func:`gather_evidence`'s result.
    model : mapping, optional
        The model's answer: ``prediction``, ``std``, and where known ``status`` and
        ``out_of_domain`` (``xasml local predict``'s record).
    calibration : mapping, optional
        σ scales and flag thresholds (:func:`load_calibration`; default the shipped ones).

    Returns
    -------
    dict
        ``evidence``: ``model`` (value, σ calibrated, ``used``: averaged in, always true now, kept
        for readers of earlier output), ``lcf`` (valence, σ, the best fits), ``edge_position``
        (valence, σ, the line), ``nearest`` (standards with similarity, shift, environment, CN); ``combined`` (:func:`combine`, with ``regime``); ``flagged``,
        ``flag_reasons`` and ``warnings``.
    """
    from xasml.models.bundle import OOD_WARN

    cal = calibration if calibration is not None else load_calibration()
    max_r = (cal.get("flag") or {}).get("max_r_factor", MAX_R_FACTOR)
    max_r = np.inf if max_r is None else float(max_r)
    max_gap = (cal.get("flag") or {}).get("max_gap", FLAG_GAP)
    max_gap = np.inf if max_gap is None else float(max_gap)
    nearest, lcf, edge, vals = gathered["nearest"], gathered["lcf"], gathered["edge_position"], gathered["valences"]
    el, ed = gathered["element"], gathered["edge"]
    warnings: list[str] = []
    reasons: list[str] = []
    lcf_est = edge_est = model_est = None
    if lcf is not None and len(vals) >= 2:
        lcf_est = (lcf["valence"], lcf_raw_sigma(lcf, vals))
        if len(vals) < 3:
            warnings.append(f"only {len(vals)} valences among the {el} {ed} standards: the linear combination "
                            "cannot reach beyond them, and its σ is widened")
    elif lcf is not None:
        warnings.append(f"fewer than 2 valences among the {el} {ed} standards: the linear combination implies "
                        "no valence")
        lcf = {**lcf, "valence": None}
    if edge is not None:
        edge_est = (edge["valence"], edge["sigma"])
    if model is not None and model.get("prediction") is not None:
        model_est = (float(model["prediction"]), float(model.get("std") or 0.0) or 0.5)
    metal = model_est is not None and model.get("status") == "metal"
    rf = float(lcf["best"]["r_factor"]) if lcf_est is not None else None
    standards = {} if metal else {k: v for k, v in (("lcf", lcf_est), ("edge_position", edge_est)) if v is not None}
    if metal:
        warnings.append("the metal evidence (edge at the foil's energy, no white line) gives the answer; the "
                        "standards are shown beside it")
    used = {k: v for k, v in (("model", model_est), *standards.items()) if v is not None}
    gaps = [(m1, a[0], m2, b[0]) for (m1, a), (m2, b) in itertools.combinations(used.items(), 2)]
    regime = "disagree" if any(abs(a - b) >= DISAGREE_GAP for _, a, _, b in gaps) else "agree"
    scales = dict(cal.get("scales_disagree" if regime == "disagree" and "scales_disagree" in cal else "scales", {}))
    cal_s = lambda m, est: round(est[1] * float(scales.get(m, 1.0) or 1.0), 3)  # noqa: E731
    if lcf_est is not None:
        lcf = {**lcf, "sigma_raw": round(lcf_est[1], 3), "sigma": cal_s("lcf", lcf_est)}
    if edge is not None:
        edge = {**edge, "sigma_raw": edge["sigma"], "sigma": cal_s("edge_position", edge_est)}
    model_ev = None
    if model_est is not None:
        model_ev = {"value": round(model_est[0], 3), "sigma_raw": round(model_est[1], 3),
                    "sigma": cal_s("model", model_est), "used": True}
        if model.get("out_of_domain") is not None:
            model_ev["out_of_domain"] = model["out_of_domain"]
    combined = combine(used, {"scales": scales})
    names = {"model": "model", "lcf": "LCF", "edge_position": "edge position"}
    if not nearest and not metal:
        reasons.append(f"no {el} {ed} standard in the reference library: nothing measured checks the answer")
    elif lcf_est is None and edge_est is None and not metal:
        reasons.append(f"fewer than 2 valences among the {el} {ed} standards: nothing measured checks the answer")
    elif len(used) == 1 and not metal:
        reasons.append(f"one line of evidence ({names[next(iter(used))]}): nothing cross-checks it")
    if rf is not None and not metal and rf > max_r:
        reasons.append(f"no combination of the {el} {ed} standards reproduces the spectrum (best R-factor "
                       f"{rf:.3f} > {max_r:g}; nearest {nearest[0]['compound']})")
    shape = gathered.get("shape")
    if lcf_est is not None and not metal and shape is not None and not shape["metallic"]:
        from xasml.references.evidence import FOIL_WEIGHT, foil_weight

        w = foil_weight(lcf["best"]["components"], el)
        if w >= FOIL_WEIGHT:
            reasons.append(f"the best fit is {100 * w:.0f} % {el} metal foil, but the edge rises like a compound's "
                           f"(flattened mu {shape['flat_at_3eV']:.2f} 3 eV above e0; metal foils below 0.6): no "
                           f"{el} {ed} standard is like this spectrum, and the foil stands in for it")
    ood = (model or {}).get("out_of_domain")
    if ood is not None and not metal and float(ood) > OOD_WARN:
        reasons.append(f"the spectrum is unlike the model's training spectra (out-of-domain score {ood:.1f} > "
                       f"{OOD_WARN:g})")
    v = combined["oxidation_state"]
    if v is not None and vals and not metal and not (min(vals) - SPAN_MARGIN <= v <= max(vals) + SPAN_MARGIN):
        reasons.append(f"the answer {v:.2f} lies outside the valences of the {el} {ed} standards "
                       f"({min(vals):g} to {max(vals):g}): an extrapolation that no standard confirms")
    for m1, a, m2, b in gaps:
        if abs(a - b) >= max_gap:
            reasons.append(f"the {names[m1]} ({a:.2f}) and the {names[m2]} ({b:.2f}) differ by {abs(a - b):.1f} in "
                           "oxidation state")
    warnings += combined["warnings"] + reasons
    return {"evidence": {"model": model_ev, "lcf": lcf, "edge_position": edge, "nearest": nearest},
            "combined": {**{k: combined[k] for k in ("oxidation_state", "sigma", "methods", "calibrated", "chi2",
                                                     "dof", "disagree", "widened_by")}, "regime": regime},
            "flagged": bool(reasons), "flag_reasons": reasons,
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
