"""Spectra on a model's grid of the calibrated experimental energy scale (or area-aligned to its mean
training spectrum): the input preparation shared by the local-structure bundles
(:class:`xasml.models.bundle.ModelBundle`), spectral domain mapping (:mod:`xasml.measure.sdm`)
and the latent models (:mod:`xasml.latent.model`).

Measured spectra are checked, calibrated with their reference foil and flattened
(:func:`xasml.measure.core.normalized_measured`) and keep their own energies, so the chemical
shift reaches the model; computed spectra get the energy offset of their simulation
(:mod:`xasml.preprocess.energy_scale`). Nothing is aligned per spectrum unless asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from xasml.errors import SpectrumError
from xasml.preprocess.augment import max_normalize, shifted_resample


def prepare_calibrated(spectra: Sequence, element: str, edge: str, energy: np.ndarray,
                       energy_scale: dict[str, float], measured: Sequence[bool] | None = None,
                       calibrate: str = "auto", reference=None,
                       align_to: np.ndarray | None = None, max_normalized: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Spectra on a grid of the calibrated experimental energy scale, keeping chemical shifts.

    Measured spectra: physical checks, calibration with the reference foil, larch ``pre_edge``
    and ``flat`` (:func:`xasml.measure.core.normalized_measured`); no shift of their own.
    Computed spectra: the energy offset of their simulation (``energy_scale``; the simulation
    is named by :func:`xasml.datasets.sites.simulation_tag` from the ``material.json`` beside a
    FEFF folder, else the ``xmu.dat`` header; FEFF10 files without settings are taken as the
    ``"FEFF10 v0"`` settings, with a warning). Then every spectrum is resampled on ``energy``
    (cubic spline) and scaled to maximum 1.

    Parameters
    ----------
    spectra : sequence of Spectrum
    element, edge : str
    energy : ndarray, shape (n_points,)
        Model grid, eV on the experimental scale.
    energy_scale : dict
        ``{simulation: offset_eV}`` of the model's training data.
    measured : sequence of bool, optional
        Default: the spectra not read from FEFF output.
    calibrate, reference :
        See :func:`xasml.preprocess.calibrate.calibrate`.
    align_to : ndarray, shape (n_points,), optional
        A reference spectrum on ``energy``: measured spectra are then shifted onto it by area
        matching after the calibration (:func:`xasml.preprocess.normalize.preprocess_measured`),
        for tasks that should not depend on the absolute energy scale.
    max_normalized : bool
        Scale each spectrum to maximum 1 (else keep the edge-step normalisation: FEFF's μ,
        measured ``flat``).

    Returns
    -------
    X : ndarray, shape (n, n_points)
    records : list of dict
        Per spectrum: measured ``calibration``, ``e0`` (eV, calibrated), ``warnings`` (and
        ``alignment_shift_eV`` with ``align_to``); computed ``energy_offset_eV`` and ``warnings``.

    Raises
    ------
    SpectrumError
        Another element, a failed physical check, or a computed spectrum of a simulation whose
        offset is unknown to the model.
    """
    from xasml.measure.core import normalized_measured

    prepared, records = [], []
    for s, meas in _checked(spectra, element, edge, measured, "model"):
        if meas:
            s, rec = normalized_measured(s, calibrate=calibrate, reference=reference)
            warns = list(rec.get("warnings", []))
            metal = metal_evidence(s, float(rec["e0"]), element, edge)
            if metal:
                warns.append(f"{s.source}: {metal['message']}")
            if rec["calibration"]["method"] == "none":
                warns.append(f"{s.source}: no reference foil (reference channel or --reference): the energies are "
                             "taken as calibrated; 1 eV of calibration error moves the oxidation state by about "
                             "0.3-0.5")
            out_rec = {"calibration": rec["calibration"], "e0": round(float(rec["e0"]), 2), "warnings": warns}
            if metal:
                out_rec["metal_evidence"] = {k: v for k, v in metal.items() if k != "message"}
            if align_to is not None:
                from xasml.preprocess.normalize import preprocess_measured

                s, arec = preprocess_measured(s, energy, align_to)
                out_rec["alignment_shift_eV"] = round(float(arec.get("shift_eV", 0.0)), 2)
                out_rec["warnings"] = warns + list(arec.get("warnings", []))
            records.append(out_rec)
        else:
            sim, warns = _simulation_of(s)
            if sim not in energy_scale:
                raise SpectrumError(f"the model knows the energy scale of {', '.join(sorted(energy_scale))}, not of "
                                    f"{sim!r} spectra", source=s.source, field="simulation")
            off = float(energy_scale[sim])
            s = s.replace(energy=s.energy + off)
            records.append({"energy_offset_eV": off, "warnings": warns})
        prepared.append(s)
    X = shifted_resample(prepared, energy, 0.0, kind="cubic")
    return (max_normalize(X) if max_normalized else X), records


def prepare_spectra(spectra: Sequence, element: str, edge: str, energy: np.ndarray, reference_mu: np.ndarray,
                    measured: Sequence[bool] | None = None, what: str = "model") -> tuple[np.ndarray, list[dict]]:
    """Spectra as a model trained on computed spectra of ``element`` takes them.

    Measured spectra are background-subtracted, edge-step normalised and shifted onto the computed
    energy scale by area matching to ``reference_mu``
    (:func:`xasml.preprocess.normalize.preprocess_measured`); then every spectrum is resampled on
    ``energy`` with a cubic spline and scaled to maximum 1 (Carbone et al. 2019).

    Parameters
    ----------
    spectra : sequence of Spectrum
    element, edge : str
        What the model is for.
    energy : ndarray, shape (n_points,)
        The model's grid, absolute eV.
    reference_mu : ndarray, shape (n_points,)
        Mean training spectrum on ``energy`` (alignment reference for measured spectra).
    measured : sequence of bool, optional
        Which spectra are measured; default: those not read from FEFF output.
    what : str
        The kind of model, for the error message.

    Returns
    -------
    X : ndarray, shape (n, n_points)
    records : list of dict
        Preprocessing record per spectrum (empty for computed spectra).

    Raises
    ------
    SpectrumError
        If a spectrum is of another element, or measured preprocessing fails.
    """
    from xasml.preprocess.normalize import preprocess_measured

    prepared, records = [], []
    for s, meas in _checked(spectra, element, edge, measured, what):
        if meas:
            s, rec = preprocess_measured(s, energy, reference_mu)
            records.append(rec)
        else:
            records.append({})
        prepared.append(s)
    return max_normalize(shifted_resample(prepared, energy, 0.0, kind="cubic")), records


def _checked(spectra: Sequence, element: str, edge: str, measured: Sequence[bool] | None, what: str):
    """(spectrum, is_measured) pairs, after checking each spectrum's element against the model's.

    Raises
    ------
    SpectrumError
        Naming the file, for a spectrum of another element.
    """
    if measured is None:
        measured = [not is_computed(s) for s in spectra]
    for s, meas in zip(spectra, measured):
        if s.absorbing_element != element:
            raise SpectrumError(f"this {what} is for {element} {edge}-edge spectra, got {s.absorbing_element}",
                                source=s.source, field="absorbing_element")
        yield s, meas


def is_computed(spectrum) -> bool:
    """True for spectra read from FEFF output (they need no measured-data preprocessing)."""
    return bool(spectrum.metadata.get("feff_version")) or "e_fermi_rel" in spectrum.metadata


#: metal evidence: the edge (e0) within this many eV of the element's tabulated (metal-foil) edge energy
METAL_EDGE_TOLERANCE = 2.0
#: ... and the flattened spectrum below this within 40 eV above e0 (no white line; measured foils
#: V-Zn of the XAS Data Library: 1.01-1.22, their oxides 1.12-2.11 with the edge 3-18 eV higher)
METAL_MAX_FLAT = 1.25
#: ... and, for "metal" rather than "metal or low-valent", the flattened spectrum below this 3 eV
#: above e0 (a slow rise through the 1s->4p shoulder: measured foils 0.31-0.48; Cu2S 0.65)
METAL_RISE_FLAT = 0.6


def metal_shape(energy, flat, e0: float, element: str) -> dict | None:
    """The edge shape of :func:`metal_evidence`, whatever the edge energy.

    Parameters
    ----------
    energy, flat : array_like, shape (n,)
        Energies (eV) and flattened μ (larch's ``flat``) of a measured spectrum.
    e0 : float
        Edge energy of the spectrum, eV.
    element : str
        Absorbing element (Zn needs no slow rise, see :func:`metal_evidence`).

    Returns
    -------
    dict or None
        ``max_flat`` (flattened maximum within 40 eV above e0), ``flat_at_3eV`` (flattened μ 3 eV
        above e0) and ``metallic``: no white line (``max_flat`` < :data:`METAL_MAX_FLAT`) and a slow
        rise (``flat_at_3eV`` < :data:`METAL_RISE_FLAT`, or Zn). Measured XAS Data Library spectra:
        the 3d foils rise 0.31-0.48 (Zn 0.84-0.90); NiS 0.65, Cu2S 0.65, FeS2 0.78, Fe3C 0.91. None
        when the spectrum has no point within 40 eV above e0.
    """
    e = np.asarray(energy, float)
    m = np.asarray(flat, float)
    w = (e >= e0) & (e <= e0 + 40.0) & np.isfinite(m)
    if not w.any():
        return None
    top = float(m[w].max())
    rise = float(np.interp(e0 + 3.0, e, m))
    return {"max_flat": round(top, 3), "flat_at_3eV": round(rise, 3),
            "metallic": bool(top < METAL_MAX_FLAT and (rise < METAL_RISE_FLAT or element == "Zn"))}


def metal_evidence(flat_spectrum, e0: float, element: str, edge: str) -> dict | None:
    """Whether a measured spectrum looks metallic, and how strongly.

    The criteria are read off measured spectra, not fitted to a model: the edge of a metal foil
    sits at the element's tabulated edge energy (which is defined by the foil; Bearden & Burr,
    Rev. Mod. Phys. 39, 125 (1967), as tabulated by xraydb), and a metal has no white line (no
    unoccupied d/p states piled up by ligands). On the calibrated flattened spectrum:

    * ``"metal-or-low-valent"``: ``|e0 - edge energy| <= METAL_EDGE_TOLERANCE`` and the
      flattened maximum within 40 eV above e0 below ``METAL_MAX_FLAT``. Cu(I) sulfides (Cu2S)
      also match;
    * ``"metal"``: in addition a slow rise (flattened value 3 eV above e0 below
      ``METAL_RISE_FLAT``), which separates the measured 3d foils (0.31-0.48) from Cu2S (0.65);
      for Zn the first two criteria suffice, as every Zn compound is Zn(II) with a white line (the
      Zn foils of the XAS Data Library: maximum 1.19-1.22, ZnS 1.37, ZnO 2.11).

    Parameters
    ----------
    flat_spectrum : Spectrum
        Calibrated, flattened measured spectrum (``mu`` = larch's ``flat``; energies in eV).
    e0 : float
        Edge energy of the spectrum, eV (calibrated).
    element, edge : str
        Absorbing element and edge (``"K"``).

    Returns
    -------
    dict or None
        None when the spectrum does not look metallic; else ``strength`` (``"metal"`` or
        ``"metal-or-low-valent"``), ``edge_shift_eV`` (e0 minus the tabulated edge energy),
        ``max_flat`` (flattened maximum within 40 eV), ``flat_at_3eV`` and ``message`` (the
        warning text).
    """
    from xasml.edges import edge_energy

    shape = metal_shape(flat_spectrum.energy, flat_spectrum.mu, e0, element)
    if shape is None:
        return None
    d = e0 - edge_energy(element, edge)
    top, rise = shape["max_flat"], shape["flat_at_3eV"]
    if abs(d) > METAL_EDGE_TOLERANCE or top >= METAL_MAX_FLAT:
        return None
    strong = shape["metallic"]
    what = "looks metallic" if strong else "looks metallic or low-valent"
    return {"strength": "metal" if strong else "metal-or-low-valent", "edge_shift_eV": round(float(d), 2),
            "max_flat": top, "flat_at_3eV": rise,
            "message": (f"{what} (edge {d:+.1f} eV from the {element} foil's, no white line, flattened mu "
                        f"{rise:.2f} 3 eV above the edge): the environment classes hold no metal packing and the "
                        "models know metals from a few simulated foils and alloys per element")}


def _simulation_of(spectrum) -> tuple[str, list[str]]:
    """(energy-scale key, warnings) of a computed spectrum (see :func:`prepare_calibrated`): the
    simulation tag, with ``" metal"`` for a structure of metals only (``material.json`` formula)."""
    from xasml.datasets.sites import simulation_tag

    meta = None
    if spectrum.source:
        p = Path(spectrum.source).parent.parent.parent / "material.json"
        if p.exists():
            try:
                meta = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                meta = None
    from xasml.preprocess.energy_scale import scale_key

    tag = simulation_tag(meta, spectrum.metadata.get("feff_version"))
    formula = (meta or {}).get("formula")
    if tag.startswith("FEFF 10"):
        return scale_key("FEFF10 v0", formula), [f"{spectrum.source}: FEFF10 output without its settings "
                                                 "(material.json); taken as the v0 settings of the training data"]
    return scale_key(tag, formula), []
