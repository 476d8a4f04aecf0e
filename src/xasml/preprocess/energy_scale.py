"""The energy scale of a simulation against the calibrated experimental one: one offset per
(absorbing element, simulation code and settings).

Measured spectra are calibrated so that the element's metal foil has its first inflection
at the tabulated edge energy (xraydb; :mod:`xasml.preprocess.calibrate`). FEFF's
absolute energies are off from that scale by several eV, by an amount that depends on the code,
its settings and the element, but not on the compound: the *chemical shift* between compounds
of one element is what FEFF gets (roughly) right. So one constant per (element, simulation),

    offset = E_experimental - E_simulated,

fitted once on reference compounds, puts every simulated spectrum of that element on the
experimental scale and keeps the chemical shifts; a per-spectrum alignment would erase them
(and with them the oxidation state).

Reference compounds (issue 9 §4), in order of preference:

* **standards whose structures are simulated** with the same code and settings: measured
  oxides, carbonates, sulfides, selenides of the element (XAS Data Library) matched to the
  simulated structure's site-averaged spectrum by correlating the measured flattened spectrum
  with the simulated μ as computed over -10...+40 eV around the edge (:func:`match_offset`;
  r 0.93-0.99 for FEFF10 v0); the element's offset is the median over its standards. These are
  the compounds the local-structure models are trained on;
* for a simulation with a standard in another code only, structures computed with both codes
  (chained: FEFF10 v0 Cu through CuBi2O4 to OmniXAS's FEFF 9.9.1, whose CuO matches tenorite);
* the element's **metal foil** simulated with the same settings: its first inflection put on the
  tabulated edge. FEFF10 v0 places a metal's edge far from an insulator's (Fermi level of
  non-self-consistent potentials): its foil rule gives offsets 4-11 eV lower than the standards of
  the same element (about 7-11 eV for Ti-Fe, 4-6 eV for Ni-Zn). So an element without
  standards (Co) takes its foil offset plus that difference interpolated in Z; the foil offsets
  are the scale of structures of metals only (:func:`scale_key`;
  ``benchmarks/results/energy_scales/foils.png``).

The fitted offsets ship in ``xasml/data/local/energy_scales.json`` (made by
``benchmarks/energy_scales.py`` from the XAS Data Library standards, the simulated sets and
``data/feff10-foils.parquet``) and every local-structure model stores the offsets of its
training data. The standards used here are development data: held-back measured standards score
the models independently.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from xasml.errors import DataError

SCALES_PATH = Path(__file__).resolve().parents[1] / "data" / "local" / "energy_scales.json"

#: window around the tabulated edge (eV) where simulated and measured foils are compared
MATCH_WINDOW = (-10.0, 40.0)
#: largest offset searched (eV)
MAX_OFFSET = 30.0


def _norm_on(spectrum, energy: np.ndarray) -> np.ndarray:
    """Flattened spectrum (larch ``pre_edge`` defaults, ``flat``) interpolated on ``energy``."""
    from xasml.preprocess.normalize import pre_edge

    e = np.asarray(spectrum.energy, float)
    pe = pre_edge(e, np.asarray(spectrum.mu, float))
    return np.interp(energy, e, pe.flat, left=np.nan, right=np.nan)


def match_offset(simulated, measured, e_ref: float, step: float = 0.05,
                 window: tuple[float, float] = MATCH_WINDOW, mode: str = "norm") -> tuple[float, float]:
    """Energy offset (eV) that best puts a simulated spectrum on a measured one.

    The measured edge-step normalised spectrum (larch ``flat``) and the simulated μ as computed
    (``mode="norm"``), or their derivatives (``"derivative"``), are compared on a fine grid over
    ``e_ref + window``; the offset maximises their Pearson correlation over ±``MAX_OFFSET``.

    Parameters
    ----------
    simulated, measured : Spectrum
        Same element and edge; ``measured`` already calibrated.
    e_ref : float
        Reference energy of the window, eV (the tabulated edge energy).
    step : float
        Offset resolution, eV.
    window : (float, float)
        Compared energies relative to ``e_ref``, eV.
    mode : {"norm", "derivative"}
        What is correlated.

    Returns
    -------
    offset : float
        eV to add to the simulated energies.
    correlation : float
        Pearson r of the compared curves at that offset.

    Raises
    ------
    DataError
        If the spectra do not cover the window.
    """
    if mode not in ("norm", "derivative"):
        raise ValueError(f"mode must be 'norm' or 'derivative', got {mode!r}")
    grid = np.arange(e_ref + window[0], e_ref + window[1], step)
    m = _norm_on(measured, grid)
    m = np.gradient(m, grid) if mode == "derivative" else m
    if not np.isfinite(m).all():
        raise DataError(f"{measured.source}: the measured spectrum does not cover {grid[0]:.0f}-{grid[-1]:.0f} eV")
    # The simulated mu is compared as computed (FEFF normalises it to the embedded atom's edge
    # step), not through larch's pre_edge: a simulation covers ~-10...+60 eV, too little for
    # pre-edge and post-edge lines (the fits bend the spectrum into a hump of height 3-100 and
    # the matches reach r 0.03-0.6 at offsets 4-10 eV off). Pearson r is blind to the scale
    # and constant that a proper edge-step normalisation would change.
    return _best_offset(grid, m, simulated, step, mode)


def match_simulations(simulated, reference, reference_offset: float, e_ref: float, step: float = 0.05,
                      window: tuple[float, float] = (-5.0, 30.0)) -> tuple[float, float]:
    """Energy offset (eV) of one simulation code's spectrum against another code's spectrum of the
    same structure whose offset is known: chains a code without standards to one with them.

    Parameters
    ----------
    simulated, reference : Spectrum
        The same site or structure computed by two codes (μ as computed).
    reference_offset : float
        eV that put ``reference`` on the experimental scale.
    e_ref, step, window :
        As in :func:`match_offset`.

    Returns
    -------
    (offset, correlation)
        eV to add to ``simulated``'s energies, and the Pearson r of the two μ at that offset.
    """
    grid = np.arange(e_ref + window[0], e_ref + window[1], step)
    mu = np.asarray(reference.mu, float)
    ref = np.interp(grid, np.asarray(reference.energy, float) + reference_offset, mu, left=mu[0], right=np.nan)
    if not np.isfinite(ref).all():
        raise DataError(f"{reference.source}: the reference simulation does not cover {grid[0]:.0f}-{grid[-1]:.0f} eV")
    return _best_offset(grid, ref, simulated, step, "norm")


def _best_offset(grid: np.ndarray, target: np.ndarray, simulated, step: float, mode: str) -> tuple[float, float]:
    """The offset within ±``MAX_OFFSET`` (eV, resolution ``step``) that maximises the Pearson r of
    the simulated μ shifted by it with ``target`` on ``grid`` (or of their derivatives)."""
    e = np.asarray(simulated.energy, float)
    norm = np.asarray(simulated.mu, float)
    offsets = np.arange(-MAX_OFFSET, MAX_OFFSET + step / 2, step)
    # simulated norm at grid - offset for every offset: one interpolation of an (n_off, n_grid) array
    # below its first point the simulation is taken as flat at its first value: FEFF starts a few
    # eV below its own edge, and requiring coverage would forbid the offsets that put an
    # insulator's edge 10 eV above the metal's
    shifted = np.interp((grid[None, :] - offsets[:, None]).ravel(), e, norm, left=norm[0], right=np.nan)
    S = shifted.reshape(len(offsets), len(grid))
    S = np.gradient(S, grid, axis=1) if mode == "derivative" else S
    ok = np.isfinite(S).all(axis=1)
    if not ok.any():
        raise DataError(f"{simulated.source}: the simulated spectrum does not cover {grid[0]:.0f}-{grid[-1]:.0f} eV")
    Sc = S - S.mean(axis=1, keepdims=True)
    mc = target - target.mean()
    r = (Sc @ mc) / (np.linalg.norm(Sc, axis=1) * np.linalg.norm(mc) + 1e-30)
    r[~ok] = -np.inf
    i = int(np.argmax(r))
    return float(offsets[i]), float(r[i])


def foil_offset(simulated_foil, element: str, edge: str = "K", measured_foil=None) -> dict[str, Any]:
    """Offset of a simulation's energy scale from a simulated metal foil of ``element``.

    Parameters
    ----------
    simulated_foil : Spectrum
        The metal computed with the simulation's code and settings.
    element, edge : str
    measured_foil : Spectrum, optional
        A measured foil of the element (calibrated here with its own e0, the usual reference).

    Returns
    -------
    dict
        ``offset_eV`` (the one to use: tabulated edge minus the simulated foil's e0; also as
        ``offset_e0_eV``), ``offset_match_eV`` and ``match_correlation`` (with a measured foil: the
        whole-derivative match, a diagnostic),
        ``simulated_e0_eV``, ``tabulated_e0_eV``, ``method``.
    """
    from xasml.edges import edge_energy
    from xasml.preprocess.normalize import find_e0

    e_tab = float(edge_energy(element, edge))
    e0_sim = float(find_e0(simulated_foil.energy, simulated_foil.mu, method="first-inflection"))
    out: dict[str, Any] = {"tabulated_e0_eV": round(e_tab, 2), "simulated_e0_eV": round(e0_sim, 2),
                           "offset_e0_eV": round(e_tab - e0_sim, 2), "method": "foil e0 on the tabulated edge"}
    out["offset_eV"] = out["offset_e0_eV"]
    if measured_foil is not None:  # diagnostic only (see the module docstring)
        from xasml.preprocess.calibrate import calibrate

        measured_cal, _ = calibrate(measured_foil, reference=measured_foil)
        off, r = match_offset(simulated_foil, measured_cal, e_tab, mode="derivative")
        out.update(offset_match_eV=round(off, 2), match_correlation=round(r, 4),
                   measured_foil=str(measured_foil.source))
    return out


@lru_cache(maxsize=4)
def _load_scales(path: str) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: cannot read the energy scales ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("offsets"), dict):
        raise DataError(f"{p}: expected an object with 'offsets': {{simulation: {{element: {{offset_eV: ...}}}}}}")
    return data


def energy_scales(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Every shipped offset: ``{simulation: {element: offset_eV}}`` (eV to add to simulated energies).

    Metals get their own scale, ``"<simulation> metal"`` (:func:`scale_key`): the simulated foil's
    first inflection on the tabulated edge (``offset_foil_eV``), since FEFF10 v0 places metal edges
    4-11 eV away from insulator edges relative to experiment.
    """
    data = _load_scales(str(path or SCALES_PATH))
    out = {sim: {el: float(v["offset_eV"]) for el, v in els.items()} for sim, els in data["offsets"].items()}
    for sim, els in data["offsets"].items():
        metal = {el: float(v["offset_foil_eV"]) for el, v in els.items() if "offset_foil_eV" in v}
        if metal:
            out[sim + METAL_SUFFIX] = metal
    return out


#: suffix of the energy-scale key of metallic structures (see :func:`scale_key`)
METAL_SUFFIX = " metal"


def scale_key(simulation: str, formula: str | None) -> str:
    """The energy-scale key of a simulated spectrum: its simulation (code and settings), with
    :data:`METAL_SUFFIX` for a structure of metals only (a foil, an intermetallic), whose energy
    scale differs (the element's metal-foil offset).

    Parameters
    ----------
    simulation : str
        E.g. ``"FEFF10 v0"`` (:func:`xasml.datasets.sites.simulation_tag`).
    formula : str or None
        The structure's formula (``"Fe"``, ``"NiAl"``, ``"Fe2O3"``); None or unparsable: not a metal.
    """
    if not formula or simulation.endswith(METAL_SUFFIX):
        return simulation
    from pymatgen.core import Composition

    try:
        metallic = all(el.is_metal for el in Composition(str(formula)).elements)
    except (ValueError, KeyError):
        return simulation
    return simulation + METAL_SUFFIX if metallic else simulation


def energy_offset(element: str, simulation: str, scales: Mapping[str, Mapping[str, float]] | None = None) -> float:
    """Offset (eV) to add to the energies of ``element`` spectra made by ``simulation``.

    Parameters
    ----------
    element : str
        Absorbing element.
    simulation : str
        Code and settings, as :func:`xasml.datasets.sites.simulation_tag` names them
        (``"FEFF10 v0"``, ``"FEFF 9.9.1"``).
    scales : mapping, optional
        ``{simulation: {element: offset}}``; default: the shipped table.

    Raises
    ------
    DataError
        If no offset is known for the pair (the known ones are listed).
    """
    scales = energy_scales() if scales is None else scales
    try:
        return float(scales[simulation][element])
    except KeyError:
        known = ", ".join(f"{s}: {','.join(sorted(v))}" for s, v in scales.items())
        raise DataError(f"no energy offset for {element} spectra of {simulation!r}; known: {known}. Fit one with "
                        "benchmarks/energy_scales.py from a simulated metal foil") from None
