"""Answers for metallic spectra: "metal" (with the element's lattice) or an abstention, never a
ligand environment.

The environment classes of the local-structure models are ChemEnv polyhedra of compounds (T:4,
O:6, ...): no metal packing is among them, so a classifier shown a metal foil answers some
polyhedron with confidence (T:4 at p 1.00 for V, Co; Cu foil T:4 at 0.91). When a measured
spectrum carries the metal evidence of :func:`xasml.preprocess.calibrated.metal_evidence`
(strength ``"metal"``: edge at the foil energy, no white line, slow rise), the answers become:

* environment: ``"metal"``, with ``lattice`` bcc / fcc / hcp of the element's stable phase at room
  temperature where that is unambiguous (:data:`METAL_LATTICE`) - taken from the element, not read
  from the spectrum (``lattice_source`` says so);
* oxidation state: 0 (the evidence), the model's value kept as ``model_prediction``;
* coordination number: the model's value when it agrees with the lattice's (within
  :data:`CN_TOLERANCE`), else an abstention (``prediction`` null, ``status`` ``"abstained"``).

Weaker evidence (``"metal-or-low-valent"``, e.g. Cu2S) keeps the model's answers with the warning.

The spectral test needs the edge at the foil's energy, so an uncalibrated foil scan a few eV off
escapes it. The measured standards then decide (:func:`metal_from_standards`): when the best
linear-combination fit against the reference library is mostly the element's own metal foil and
fits well, the spectrum is metallic whatever its energy offset (the fit's common shift absorbs it).
"""

from __future__ import annotations

from xasml.references.evidence import FOIL_WEIGHT

#: lattice of each 3d metal's stable phase at room temperature (C. Kittel, Introduction to Solid
#: State Physics, 8th ed., Table 1.3 / the periodic table of crystal structures inside its cover);
#: None where the phase is no simple packing (alpha-Mn: 58 atoms per cubic cell, four site types)
METAL_LATTICE = {"Ti": "hcp", "V": "bcc", "Cr": "bcc", "Mn": None, "Fe": "bcc", "Co": "hcp", "Ni": "fcc",
                 "Cu": "fcc", "Zn": "hcp"}
#: coordination number of each lattice in the convention of the training labels (ChemEnv,
#: neighbours within 1.2 x the nearest distance, :mod:`xasml.labels.site`): fcc and hcp 12; bcc 14,
#: its 8 nearest and 6 second neighbours at 1.155 x that distance (ChemEnv labels the simulated V,
#: Cr and Fe foils UNKNOWN:14, so no bcc CN reached the CN models' training)
LATTICE_CN = {"bcc": 14, "fcc": 12, "hcp": 12}
#: a coordination-number answer within this of the lattice's is kept for a metal
CN_TOLERANCE = 2.0

LATTICE_SOURCE = "the element's stable phase at room temperature, not read from the spectrum"


#: metal_from_standards: largest R-factor of that fit (sum (mu - fit)^2 / sum mu^2 on the flat spectrum)
METAL_LCF_R = 0.03


def metal_from_standards(evidence: dict, element: str, shape: dict | None = None) -> dict | None:
    """Metal evidence from the measured standards: the best LCF is mostly the element's foil, and the
    edge has a metal's shape.

    The fit alone is not enough: with its own compound out of the library, NiS is fitted by 89 % Ni
    foil and 11 % NiO (R 0.007), though its edge rises like a compound's (flattened μ 0.65 at 3 eV
    above e0, where the measured 3d foils have 0.31-0.48); the shape test of
    :func:`xasml.preprocess.calibrated.metal_shape` (no white line, slow rise; the edge energy is
    not used, so a foil scan a few eV off still passes) must hold too.

    Parameters
    ----------
    evidence : dict
        The ``evidence`` of an oxidation-state result (:func:`xasml.references.combine.collect_evidence`),
        whose ``lcf["fits"]`` are ranked best first, each with ``components`` (``compound``,
        ``valence``, ``weight``, ``formula`` or ``id``) and ``r_factor``.
    element : str
        The absorbing element: only standards whose formula is this element alone (the foil)
        count as metal; carbides, nitrides and other valence-0 standards do not.
    shape : dict, optional
        :func:`xasml.preprocess.calibrated.metal_shape` of the spectrum; when given and not
        ``metallic``, no metal evidence (the record says why: ``rejected``).

    Returns
    -------
    dict or None
        A ``metal_evidence`` record (``strength`` ``"metal"``, ``source`` ``"measured standards"``,
        ``foil_weight``, ``r_factor``, ``message``) for :func:`apply_metal_evidence`; a record with
        ``strength`` None and ``message`` when the fit says foil but the shape does not; or None.
    """
    fits = ((evidence or {}).get("lcf") or {}).get("fits") or []
    if not fits:
        return None
    best = fits[0]
    r = best.get("r_factor")
    if r is None or not r <= METAL_LCF_R:
        return None

    from xasml.references.evidence import foil_weight

    w = foil_weight(best.get("components", []), element)
    if w < FOIL_WEIGHT:  # least weight of the foil standards in the best LCF
        return None
    if shape is not None and not shape.get("metallic"):
        return {"strength": None, "source": "measured standards", "foil_weight": round(w, 3), "r_factor": r,
                "message": f"the best linear-combination fit is {100 * w:.0f} % {element} metal foil (R {r:.3f}), but "
                           f"the edge rises like a compound's (flattened mu {shape['flat_at_3eV']:.2f} 3 eV above e0, "
                           f"maximum {shape['max_flat']:.2f}; measured 3d foils 0.31-0.48): not answered as a metal"}
    return {"strength": "metal", "source": "measured standards", "foil_weight": round(w, 3), "r_factor": r,
            "message": f"the best linear-combination fit is {100 * w:.0f} % {element} metal foil (R {r:.3f})"}


def apply_metal_evidence(result: dict, task: str) -> dict:
    """One prediction of :meth:`xasml.models.bundle.ModelBundle.predict` with the metal rule applied.

    Parameters
    ----------
    result : dict
        A result with ``absorbing_element`` and, for a measured spectrum that looks metallic,
        ``metal_evidence`` (:func:`xasml.preprocess.calibrated.metal_evidence`).
    task : {"coordination", "cn", "oxidation"}

    Returns
    -------
    dict
        ``result`` with ``status``: ``"ok"`` (the model's answer), ``"metal"`` (answer from the
        metal evidence; the model's answer moved to ``model_prediction`` and
        ``model_probabilities`` / ``model_std``) or ``"abstained"`` (``prediction`` and ``std``
        null; the model's answer contradicts the metal evidence). Metallic answers carry
        ``lattice`` (bcc / fcc / hcp, or null for Mn), ``lattice_source`` and, for the
        coordination number, ``lattice_cn``.
    """
    ev = result.get("metal_evidence")
    out = dict(result)
    if not ev or ev.get("strength") != "metal" or "prediction" not in result:
        out.setdefault("status", "ok")
        return out
    el = str(result.get("absorbing_element"))
    lattice = METAL_LATTICE.get(el)
    out.update({"lattice": lattice, "lattice_source": LATTICE_SOURCE})
    warns = list(out.get("warnings", []))
    if task == "coordination":
        out["model_prediction"] = out["prediction"]
        out["model_probabilities"] = out.pop("probabilities", {})
        out.pop("environment_name", None)
        out.update({"prediction": "metal", "status": "metal",
                    "environment_name": f"metal ({lattice})" if lattice else "metal"})
        warns.append(f"metal: the model's environment {out['model_prediction']} (p "
                     f"{out['model_probabilities'].get(out['model_prediction'], float('nan')):.2f}) is withheld; "
                     f"the lattice{f' ({lattice})' if lattice else ''} is {LATTICE_SOURCE}")
    elif task == "oxidation":
        out.update({"model_prediction": out["prediction"], "model_std": out.get("std"), "prediction": 0.0,
                    "std": None, "status": "metal"})
        warns.append(f"metal: oxidation state 0 from the metal evidence (the model says "
                     f"{out['model_prediction']:.2f})")
    elif task == "cn":
        cn = LATTICE_CN.get(lattice) if lattice else None
        out["lattice_cn"] = cn
        if cn is not None and abs(float(out["prediction"]) - cn) <= CN_TOLERANCE:
            out["status"] = "metal"
        else:
            out.update({"model_prediction": out["prediction"], "model_std": out.get("std"), "prediction": None,
                        "std": None, "status": "abstained"})
            why = (f"contradicts the {lattice} lattice's {cn}" if cn is not None
                   else f"cannot be checked: the {el} metal has no simple lattice")
            warns.append(f"metal: the model's coordination number {out['model_prediction']:.1f} {why}; no answer")
    else:
        out.setdefault("status", "ok")
    out["warnings"] = warns
    return out
