"""Reading, physical checks, calibration and normalisation of measured spectra, as one record each.

The checks follow the issue's "physical checks on every measured input": the element and edge the
file states are compared with the measured edge (``xraydb.guess_edge``, Elam et al. 2002 tables),
and the edge must lie inside the scan with enough pre- and post-edge for the normalisation.
Contradictions are :class:`~xasml.errors.SpectrumError` naming the file; doubts are warnings in the
record.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


from xasml.errors import SpectrumError

__all__ = ["check_edge", "check_measured", "check_scan_range", "measure_spectrum", "measure_file", "EDGE_MISMATCH_ERROR", "EDGE_MISMATCH_WARN",
           "MIN_PRE_EDGE", "MIN_POST_EDGE"]

#: measured e0 this far (eV) from the stated element's tabulated edge is a contradiction
EDGE_MISMATCH_ERROR = 100.0
#: ... and this far a doubt (calibration or label)
EDGE_MISMATCH_WARN = 20.0
#: a scan that ends this far (eV) below the tabulated edge (or starts this far above) holds no edge
SCAN_EDGE_MARGIN = 30.0
#: pre-edge span (eV below e0) under which the pre-edge line is doubtful
MIN_PRE_EDGE = 20.0
#: post-edge span (eV above e0) under which the edge step is doubtful
MIN_POST_EDGE = 40.0


def check_scan_range(spectrum) -> float:
    """The stated edge must lie inside the scan; returns its tabulated energy (eV).

    Raises
    ------
    SpectrumError
        Naming the file, when the scan ends more than :data:`SCAN_EDGE_MARGIN` eV below the
        tabulated edge of the stated element and edge, or starts as far above it.
    """
    from xasml.edges import edge_energy

    e = spectrum.energy
    el, ed = spectrum.absorbing_element, spectrum.edge
    try:
        tab = edge_energy(el, ed)
    except SpectrumError as exc:  # e.g. --element H --edge L3: name the file
        raise SpectrumError(exc.message, source=spectrum.source, field=exc.field) from None
    if e[-1] < tab - SCAN_EDGE_MARGIN or e[0] > tab + SCAN_EDGE_MARGIN:
        where = "ends" if e[-1] < tab else "starts"
        raise SpectrumError(f"the scan ({e[0]:.1f}..{e[-1]:.1f} eV) {where} {'before' if where == 'ends' else 'after'} "
                            f"the {el} {ed} edge ({tab:.1f} eV): no edge to normalise{_edge_in_data(spectrum)}",
                            source=spectrum.source, field="energy")
    return tab


def _edge_in_data(spectrum) -> str:
    """'; the data have an edge at ... (xraydb.guess_edge: El Edge) ...' when one is found inside the scan."""
    from xasml.edges import guess_edge
    from xasml.preprocess.normalize import find_e0

    e = spectrum.energy
    try:
        e0 = float(find_e0(e, spectrum.mu))
    except (SpectrumError, ValueError, IndexError):
        return ""
    span = e[-1] - e[0]
    if not (e[0] + 0.05 * span < e0 < e[-1] - 0.05 * span):
        return ""
    import numpy as np

    mu = spectrum.mu
    below, above = mu[e < e0 - 5.0], mu[e > e0 + 10.0]
    rng = float(np.ptp(mu))
    if below.size < 3 or above.size < 3 or not rng > 0 or np.median(above) - np.median(below) < 0.25 * rng:
        return ""  # no clear absorption step (e.g. a pre-edge region only)
    g_el, g_ed = guess_edge(e0)
    return (f"; the data have an edge at {e0:.1f} eV (xraydb.guess_edge: {g_el} {g_ed}): wrong element label? "
            "give the right --element/--edge")


def check_measured(spectrum, e0: float | None = None) -> tuple[float, list[str]]:
    """Every physical check of a measured spectrum, before anything is fitted to it.

    The one entry point for commands that take measured files (``measure read``, ``topology
    predict``): the scan must contain the stated edge (:func:`check_scan_range`), then larch's
    e0 is found (:func:`xasml.preprocess.normalize.pre_edge`) and compared with the stated
    element and edge (:func:`check_edge`).

    Parameters
    ----------
    spectrum : Spectrum
        Measured spectrum (absolute eV) with its stated ``absorbing_element`` and ``edge``.
    e0 : float, optional
        The edge energy (eV) the user stated for these data (an Athena group's ``bkg_e0``,
        which its normalisation uses); larch's finder when None.

    Returns
    -------
    (float, list of str)
        The e0 (eV) checked and the warnings (doubts), each starting with the file.

    Raises
    ------
    SpectrumError
        Contradictions, naming the file: no edge in the scan, an edge far from the stated
        element's (wrong label), e0 at an end of the scan.
    """
    from xasml.preprocess.normalize import pre_edge

    src = spectrum.source
    check_scan_range(spectrum)
    e0 = float(pre_edge(spectrum.energy, spectrum.mu, source=src).e0) if e0 is None else float(e0)
    return e0, [w if src is None or w.startswith(str(src)) else f"{src}: {w}" for w in check_edge(spectrum, e0)]


def check_edge(spectrum, e0: float) -> list[str]:
    """Physical checks of a measured spectrum against its stated absorber and its own edge.

    Parameters
    ----------
    spectrum : Spectrum
        Measured spectrum (absolute eV) with its stated ``absorbing_element`` and ``edge``.
    e0 : float
        Measured edge energy, eV (larch's finder).

    Returns
    -------
    list of str
        Warnings: e0 20–100 eV from the tabulated edge (calibration or label doubtful), a
        pre-edge shorter than :data:`MIN_PRE_EDGE` eV or a post-edge shorter than
        :data:`MIN_POST_EDGE` eV.

    Raises
    ------
    SpectrumError
        When the scan does not contain the stated edge (it ends more than
        :data:`SCAN_EDGE_MARGIN` eV below or starts as far above the tabulated edge), when the measured e0 is more than :data:`EDGE_MISMATCH_ERROR` eV from
        it (the message gives ``xraydb.guess_edge``'s element and edge: data labelled with the
        wrong element), or when e0 sits at an end of the scan (no edge in the data).
    """
    from xasml.edges import guess_edge

    src = spectrum.source
    e = spectrum.energy
    el, ed = spectrum.absorbing_element, spectrum.edge
    tab = check_scan_range(spectrum)
    out: list[str] = []
    d = e0 - tab
    if abs(d) > EDGE_MISMATCH_ERROR:
        g_el, g_ed = guess_edge(e0)
        raise SpectrumError(f"the file says {el} {ed} (tabulated {tab:.1f} eV) but the measured edge is at {e0:.1f} eV "
                            f"({d:+.1f} eV; xraydb.guess_edge: {g_el} {g_ed}); give the right --element/--edge",
                            source=src, field="element")
    if abs(d) > EDGE_MISMATCH_WARN:
        g_el, g_ed = guess_edge(e0)
        out.append(f"measured e0 {e0:.1f} eV is {d:+.1f} eV from the tabulated {el} {ed} edge ({tab:.1f} eV; "
                   f"xraydb.guess_edge: {g_el} {g_ed}): check the energy calibration and the element label "
                   "(high oxidation states shift e0 by up to ~20 eV)")
    span = e[-1] - e[0]
    if e0 - e[0] < 0.02 * span or e[-1] - e0 < 0.02 * span:
        raise SpectrumError(f"the edge found at {e0:.1f} eV is at an end of the scan ({e[0]:.1f}..{e[-1]:.1f} eV): "
                            "the scan does not contain the edge", source=src, field="energy")
    if e0 - e[0] < MIN_PRE_EDGE:
        out.append(f"only {e0 - e[0]:.1f} eV of pre-edge below e0 = {e0:.1f} eV (< {MIN_PRE_EDGE:.0f} eV): the "
                   "pre-edge line and edge step are uncertain")
    if e[-1] - e0 < MIN_POST_EDGE:
        out.append(f"only {e[-1] - e0:.1f} eV of post-edge above e0 = {e0:.1f} eV (< {MIN_POST_EDGE:.0f} eV): the "
                   "edge step is uncertain")
    return out


def measure_spectrum(spectrum, calibrate: str = "auto", reference=None, nnorm: int | None = None,
                     use_stored: bool = True) -> dict[str, Any]:
    """Check, calibrate and normalise one measured spectrum (larch conventions).

    Parameters
    ----------
    spectrum : Spectrum
        As read by :func:`xasml.io.read_spectrum`.
    calibrate : {"auto", "reference", "none"}
        See :func:`xasml.preprocess.calibrate.calibrate`.
    reference : Spectrum or str or Path, optional
        A separate reference foil scan.
    nnorm : int, optional
        Post-edge degree (larch's rule when None).
    use_stored : bool
        Athena groups: normalise with the stored e0 (plus the calibration shift), pre/post-edge
        ranges and degree, as xraylarch's ``read_athena`` does (falling back to larch's
        defaults, with a warning, when they do not fit the data). False: larch's defaults.

    Returns
    -------
    dict
        ``file``, ``label``, ``absorbing_element``, ``edge``, ``n_points``, ``energy_range``
        (eV, calibrated), ``e0`` (eV, calibrated), ``e0_source``, ``edge_step``, ``pre1``, ``pre2``, ``norm1``,
        ``norm2``, ``nnorm``, ``calibration`` (method, reference, reference_e0, tabulated_e0,
        shift in eV), ``mu_source`` and ``warnings`` (the reader's and the checks').

    Raises
    ------
    SpectrumError
        From :func:`check_edge`, the calibration, or the normalisation (file named).
    """
    return _measure(spectrum, calibrate, reference, nnorm, use_stored)[0]


def _measure(spectrum, calibrate: str, reference, nnorm: int | None, use_stored: bool):
    """:func:`measure_spectrum`'s work: (record, calibrated spectrum, larch ``pre_edge`` result)."""
    from xasml.preprocess.calibrate import calibrate as _calibrate
    from xasml.preprocess.normalize import pre_edge

    src = spectrum.source
    warns = [w for w in spectrum.metadata.get("warnings", [])]
    stored = spectrum.metadata.get("athena") if spectrum.metadata.get("format") == "athena" else None
    e0_user = stored.get("e0") if use_stored and stored else None
    if e0_user is not None and not spectrum.energy[0] < e0_user < spectrum.energy[-1]:
        e0_user = None
    warns += check_measured(spectrum, e0_user)[1]  # the user's Athena e0 is the edge checked, as it is used
    cal_spec, cal = _calibrate(spectrum, method=calibrate, reference=reference)
    warns += [f"{src}: {w}" for w in cal.warnings]
    r, e0_source = None, "find_e0 (larch)"
    if use_stored and stored and stored.get("e0") is not None:
        # the user's own Athena parameters, as xraylarch's read_athena uses them
        e0s = float(stored["e0"]) + cal.shift
        if cal_spec.energy[0] < e0s < cal_spec.energy[-1]:
            try:
                r = pre_edge(cal_spec.energy, cal_spec.mu, e0=e0s, pre1=stored.get("pre1"), pre2=stored.get("pre2"),
                             norm1=stored.get("norm1"), norm2=stored.get("norm2"),
                             nnorm=stored.get("nnorm") if nnorm is None else nnorm, source=src)
                e0_source = "Athena bkg_e0" + (" + calibration shift" if cal.shift else "")
            except SpectrumError as exc:
                warns.append(f"{src}: stored Athena normalisation parameters unusable ({exc.message}); larch "
                             "defaults used")
        else:
            warns.append(f"{src}: stored Athena e0 {e0s:.1f} eV is outside the data; e0 found instead")
    if r is None:
        r = pre_edge(cal_spec.energy, cal_spec.mu, nnorm=nnorm, source=src)
    for w in r.warnings:
        if "not positive" in w:
            raise SpectrumError(f"no absorption edge: {w}", source=src, field="edge_step")
        warns.append(f"{src}: {w}")
    meta = spectrum.metadata
    label = meta.get("label") or spectrum.material_id or (Path(src).stem if src else None)
    record = {
        "file": src,
        "label": label,
        "status": "ok",
        "absorbing_element": spectrum.absorbing_element,
        "edge": spectrum.edge,
        "element_source": meta.get("element_source"),
        "n_points": int(len(spectrum)),
        "energy_range": [float(cal_spec.energy[0]), float(cal_spec.energy[-1])],
        "e0": float(r.e0),
        "e0_source": e0_source,
        "edge_step": float(r.edge_step),
        "pre1": r.pre1, "pre2": r.pre2, "norm1": r.norm1, "norm2": r.norm2, "nnorm": r.nnorm,
        "calibration": cal.to_dict(),
        "mu_source": meta.get("mu_source"),
        **{k: meta[k] for k in ("mu_reason", "columns", "convention", "energy_source", "element_source",
                                "edge_source", "scan") if meta.get(k) is not None},
        **({"athena": meta["athena"]} if meta.get("format") == "athena" else {}),
        "warnings": list(dict.fromkeys(warns)),
    }
    return record, cal_spec, r


def measure_file(path: str | Path, absorbing_element: str | None = None, edge: str | None = None,
                 energy_col: str | int | None = None, mu: str | int | None = None, calibrate: str = "auto",
                 reference=None, include_references: bool = True, use_stored: bool = True,
                 scan: str | int | None = None) -> list[dict[str, Any]]:
    """Read a measured file (XDI, Athena project, plain columns) and measure every spectrum in it.

    Parameters
    ----------
    path : str or Path
        The file.
    absorbing_element, edge : str, optional
        For files that do not say (or say wrongly).
    energy_col, mu : str or int, optional
        Column choice for column files (name, 1-based index, or μ expression such as ``ln(i0/it)``).
    calibrate : {"auto", "reference", "none"}
        See :func:`xasml.preprocess.calibrate.calibrate`.
    reference : str or Path or Spectrum, optional
        Separate reference foil scan.
    include_references : bool
        Athena projects: also report the reference-channel groups.
    use_stored : bool
        Athena projects: normalise with the stored parameters (see :func:`measure_spectrum`).
    scan : str or int, optional
        SPEC column files with several ``#S`` scans: which one (default the last).

    Returns
    -------
    list of dict
        One :func:`measure_spectrum` record per spectrum (an Athena project gives one per group),
        ``status`` ``"ok"``. In a file of several spectra (an Athena project) a group that could
        not be read or measured gives ``{"file", "label", "group", "status": "error", "error"}``
        instead (after the groups that read), and the others are still measured; a group that is
        not μ(E) data (χ(k)) gives such a record with ``status`` ``"skipped"``.

    Raises
    ------
    SpectrumError
        From the reader, the checks, the calibration or the normalisation (file named); for a
        project, only when none of its groups can be read.
    """
    from xasml.io.reader import read_spectra

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectra = read_spectra(path, absorbing_element, edge, energy_col, mu, include_references=include_references,
                               scan=scan)
    ref = reference
    if isinstance(reference, (str, Path)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = read_spectra(reference, absorbing_element, edge)[0]
    failed = list(getattr(spectra, "failed", []))
    several = len(spectra) + len(failed) > 1  # a project: one group's failure does not stop the others
    out = []
    for s in spectra:
        try:
            if s.metadata.get("is_reference_channel") and calibrate != "none":
                rec = measure_spectrum(s, calibrate="none", use_stored=use_stored)  # not calibrated against itself
            else:
                rec = measure_spectrum(s, calibrate=calibrate, reference=ref, use_stored=use_stored)
        except SpectrumError as exc:
            if not several:
                raise
            label = s.metadata.get("label") or s.material_id
            msg = exc.message if str(exc).startswith(str(s.source)) else str(exc)
            rec = {"file": str(s.source), "label": label, "group": s.metadata.get("group"), "status": "error",
                   "error": str(SpectrumError(f"group {label!r}: {msg}", source=exc.source or str(path),
                                              line=exc.line, field=exc.field))}
        out.append(rec)
    out += [f.to_dict(str(path)) for f in failed + list(getattr(spectra, "skipped", []))]
    return out


def normalized_measured(spectrum, calibrate: str = "auto", reference=None) -> tuple[Any, dict[str, Any]]:
    """A measured spectrum checked, calibrated and flattened, as models on calibrated scales take it.

    :func:`measure_spectrum` (physical checks, calibration, larch ``pre_edge``), then the
    flattened spectrum (larch's ``flat``: edge-step normalised, post-edge curvature removed) on the
    calibrated energies.

    Parameters
    ----------
    spectrum : Spectrum
        Measured spectrum (absolute eV).
    calibrate : {"auto", "reference", "none"}
        See :func:`xasml.preprocess.calibrate.calibrate`.
    reference : Spectrum or path, optional
        A separate reference foil scan.

    Returns
    -------
    (Spectrum, dict)
        ``kind="norm"`` spectrum with ``mu`` = flat on the calibrated energies (eV), and the
        :func:`measure_spectrum` record.

    Raises
    ------
    SpectrumError
        As :func:`measure_spectrum`.
    """
    rec, cal_spec, r = _measure(spectrum, calibrate, reference, None, True)
    return cal_spec.replace(energy=r.energy, mu=r.flat, kind="norm"), rec
