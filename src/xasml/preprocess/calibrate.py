"""Energy calibration of measured spectra against a reference foil.

The monochromator's energy scale drifts by eV between beamlines and beam times; the standard
remedy (Athena's "calibrate" and "align to reference"; B. Ravel & M. Newville, J. Synchrotron
Rad. 12, 537 (2005); larch docs, "XAFS: Pre-edge Subtraction and Normalization") is to measure
a metal foil with the sample (the *reference channel*, ln(itrans/irefer) downstream of the
sample) or in a separate scan, find the foil's e0, and shift the sample's energies by the
amount that puts the foil's e0 on its tabulated edge energy (xraydb, Elam et al. 2002).

:func:`calibrate` does this from, in order of preference for ``method="auto"``:

1. a separate reference scan (``reference=`` a :class:`~xasml.spectrum.Spectrum` or a file);
2. the reference channel measured with the sample: XDI ``murefer`` or ``irefer`` (with the
   element of ``Element.reference``/``Element.ref_edge`` when given), a column-file channel
   (``mu_ref``, ``murefer``, ``iref``/``irefer`` with ``it``), or the Athena group paired with the
   sample (Athena's "Ref" group);
3. none: no shift is applied; the record says so and gives the tabulated edge energy.

The e0 of the reference is its first inflection point (:func:`xasml.preprocess.normalize.find_e0`,
``method="first-inflection"``), as the tabulated edge energies are defined; it equals larch's e0
on thin foils.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import SpectrumError
from xasml.edges import edge_energy

__all__ = ["Calibration", "calibrate", "reference_channel", "CALIBRATION_METHODS", "MAX_CALIBRATION_SHIFT"]

#: choices of :func:`calibrate`'s ``method``
CALIBRATION_METHODS = ("auto", "reference", "none")
#: larger shifts (eV) mean the reference is not the foil of the expected edge: an error
MAX_CALIBRATION_SHIFT = 100.0
#: shifts above this (eV) are kept but warned about
WARN_CALIBRATION_SHIFT = 20.0
_REF_MU = ("mu_ref", "muref", "murefer", "mu_refer", "mu_reference", "mref", "ref")
_REF_I = ("irefer", "iref", "i_ref", "ir", "i2")
_REF_IT = ("itrans", "it", "i1", "i_t")


@dataclass
class Calibration:
    """Record of one energy calibration (stored in ``Spectrum.metadata["calibration"]``).

    Attributes
    ----------
    method : str
        ``"reference-file"``, ``"reference-channel"``, ``"athena-reference-group"`` or ``"none"``.
    reference : str or None
        What the reference was (file, channel expression or Athena group label).
    element, edge : str
        Element and edge of the reference foil (tabulated energy looked up for these).
    reference_e0 : float or None
        e0 found on the reference, eV (before the shift).
    tabulated_e0 : float
        Tabulated edge energy (xraydb), eV.
    shift : float
        Energy shift applied to the sample, eV (0 for ``"none"``).
    warnings : list of str
        Doubts (large shift, reference edge of another element, ...).
    """

    method: str
    reference: str | None
    element: str
    edge: str
    reference_e0: float | None
    tabulated_e0: float
    shift: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def _xdi_reference(spectrum) -> tuple[np.ndarray, np.ndarray, str, str | None, str | None] | None:
    from xasml.io.xdi import read_xdi

    header = spectrum.metadata.get("header") or {}
    names = {str(header[k]).split()[0].lower() for k in header if k.lower().startswith("column.") and header[k]}
    if not ({"murefer", "normrefer"} & names or "irefer" in names):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref = read_xdi(spectrum.source, absorbing_element=spectrum.absorbing_element, edge=spectrum.edge,
                           mode="reference")
        except SpectrumError:
            return None
    el = header.get("Element.reference") or None
    ed = header.get("Element.ref_edge") or None
    return ref.energy, ref.mu, f"XDI {ref.metadata.get('mu_source')}", el, ed


def _columns_reference(spectrum) -> tuple[np.ndarray, np.ndarray, str] | None:
    from xasml.io.columns import evaluate_expression

    chans = spectrum.metadata.get("channels") or {}
    low = {k.lower(): k for k in chans}
    if "reference_source" in spectrum.metadata:  # the reader found the reference channel (with an edge) or none
        expr = spectrum.metadata["reference_source"]
        if expr is None:
            return None
    else:
        expr = next((n for n in _REF_MU if n in low), None)
    if expr is None:
        ir = next((n for n in _REF_I if n in low), None)
        it = next((n for n in _REF_IT if n in low), None)
        if ir is None or it is None:
            return None
        expr = f"ln({it}/{ir})"
    mu = evaluate_expression(expr, chans, spectrum.source)
    if mu.size != spectrum.energy.size or not np.all(np.isfinite(mu)):
        return None
    return spectrum.energy, mu, f"column {expr}"


@lru_cache(maxsize=4)
def _athena_project(path: str, mtime_ns: int, size: int):
    """The parsed project behind an Athena group, once per file version: a project of n groups is
    calibrated once per group and task (``local predict --task all``: 4n times), and parsing a
    large Perl project takes ~0.4 s (NiO.prj: 8 s of re-parsing before this cache)."""
    from xasml.io.athena import read_athena_project

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_athena_project(path)


def _athena_reference(spectrum) -> tuple[np.ndarray, np.ndarray, str] | None:
    if spectrum.metadata.get("format") != "athena" or not spectrum.metadata.get("reference_group"):
        return None
    try:
        st = Path(spectrum.source).stat()
    except OSError:  # gone since it was read: the reader names the file
        st = None
    proj = (_athena_project(str(spectrum.source), st.st_mtime_ns, st.st_size) if st is not None
            else _athena_project.__wrapped__(str(spectrum.source), 0, 0))
    for g in proj.groups:
        if g.name == spectrum.metadata.get("group"):
            ref = proj.reference_of(g)
            if ref is not None:
                return ref.energy, ref.mu, f"Athena group {ref.label.strip()!r}"
    return None


def reference_channel(spectrum) -> tuple[np.ndarray, np.ndarray, str, str | None, str | None] | None:
    """The reference foil measured with a sample, if its file holds one.

    Parameters
    ----------
    spectrum : Spectrum
        A spectrum read by :func:`xasml.io.read_spectrum` (XDI, column file or Athena project).

    Returns
    -------
    (energy, mu, description, element, edge) or None
        Reference energies (eV, shape (n,)) and μ, what it is, and the reference element/edge
        when the file names them (XDI ``Element.reference``/``Element.ref_edge``; else None,
        meaning the sample's). None when the file has no reference channel.
    """
    fmt = spectrum.metadata.get("format")
    if fmt == "xdi" and spectrum.source:
        return _xdi_reference(spectrum)
    if fmt == "columns":
        got = _columns_reference(spectrum)
        return None if got is None else (*got, None, None)
    if fmt == "athena":
        got = _athena_reference(spectrum)
        return None if got is None else (*got, None, None)
    return None


def calibrate(spectrum, method: str = "auto", reference=None, e0_method: str = "first-inflection"):
    """Shift a spectrum's energies so that its reference foil's e0 lies on the tabulated edge.

    Parameters
    ----------
    spectrum : Spectrum
        The sample (absolute eV).
    method : {"auto", "reference", "none"}
        ``"auto"``: the reference scan if given, else the reference channel, else no shift.
        ``"reference"``: as auto but an error when there is no reference. ``"none"``: no shift.
    reference : Spectrum or str or Path, optional
        A separate reference (foil) scan; read with :func:`xasml.io.read_spectrum` when a path
        (an Athena project gives its first group).
    e0_method : str
        e0 finder for the reference (:func:`xasml.preprocess.normalize.find_e0`); default the
        foil's first inflection point, the definition of the tabulated edge energies (larch's
        finder picks the main rise of thick foils, 12 eV off on the XAS Data Library Ni scans).

    Returns
    -------
    (Spectrum, Calibration)
        The shifted spectrum (``metadata["calibration"]`` holds the record as a dict) and the
        record.

    Raises
    ------
    SpectrumError
        For ``method="reference"`` without a reference, a reference whose e0 is more than
        :data:`MAX_CALIBRATION_SHIFT` eV from the tabulated edge (it is not that foil), or an
        unreadable reference file. With ``method="auto"``, a reference channel found in the
        file (not asked for) that cannot calibrate leaves the spectrum uncalibrated with a
        warning instead.
    ValueError
        For an unknown ``method``.
    """
    from xasml.preprocess.normalize import find_e0

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"method must be one of {CALIBRATION_METHODS}, got {method!r}")
    src = spectrum.source
    el, ed = spectrum.absorbing_element, spectrum.edge
    found = None
    if method != "none":
        if reference is not None:
            if isinstance(reference, (str, Path)):
                from xasml.io.reader import read_spectrum

                ref = read_spectrum(reference, absorbing_element=el, edge=ed)
                ref = ref[0] if isinstance(ref, list) else ref
            else:
                ref = reference
            found = (ref.energy, ref.mu, str(ref.source or ref.material_id or "reference scan"), ref.absorbing_element,
                     ref.edge, "reference-file")
        else:
            ch = reference_channel(spectrum)
            if ch is not None:
                how = "athena-reference-group" if spectrum.metadata.get("format") == "athena" else "reference-channel"
                found = (*ch, how)
        if found is None and method == "reference":
            raise SpectrumError("no reference to calibrate with: the file has no reference channel (XDI irefer/"
                                "murefer, a mu_ref/iref column, an Athena 'Ref' group); give --reference FILE or "
                                "--calibrate none", source=src, field="reference")
    warns: list[str] = []
    if found is None:
        tab = edge_energy(el, ed)
        cal = Calibration(method="none", reference=None, element=el, edge=ed, reference_e0=None, tabulated_e0=tab,
                          shift=0.0, warnings=warns)
    else:
        re_, rm, desc, rel, red, how = found
        rel = rel or el
        red = red or ed
        try:
            tab = edge_energy(rel, red)
        except SpectrumError:
            tab = edge_energy(el, ed)
            warns.append(f"reference element/edge {rel} {red} unknown to xraydb; used the sample's {el} {ed}")
            rel, red = el, ed
        order = np.argsort(re_)
        re_, rm = np.asarray(re_, float)[order], np.asarray(rm, float)[order]
        keep = np.concatenate(([True], np.diff(re_) > 0)) & np.isfinite(re_) & np.isfinite(rm)
        # a channel found in the file (not asked for) that cannot calibrate is a doubt, not an error
        found_in_file = how in ("reference-channel", "athena-reference-group") and method == "auto"
        problem = None
        try:
            e0r = find_e0(re_[keep], rm[keep], method=e0_method)
        except SpectrumError as exc:
            if not found_in_file:
                raise SpectrumError(f"reference ({desc}): {exc.message}", source=src, field="reference") from None
            e0r, problem = float("nan"), f"reference ({desc}) unusable ({exc.message})"
        shift = tab - e0r
        if problem is None and abs(shift) > MAX_CALIBRATION_SHIFT:
            from xasml.edges import guess_edge

            guess = guess_edge(e0r)
            problem = (f"reference ({desc}) has its edge at {e0r:.1f} eV, {shift:+.1f} eV from the tabulated "
                       f"{rel} {red} edge ({tab:.1f} eV); xraydb.guess_edge says {guess[0]} {guess[1]}: "
                       "not the expected foil")
            if not found_in_file:
                raise SpectrumError(problem, source=src, field="reference")
        if problem is not None:
            warns.append(f"{problem}; not calibrated")
            cal = Calibration(method="none", reference=None, element=el, edge=ed, reference_e0=None,
                              tabulated_e0=edge_energy(el, ed), shift=0.0, warnings=warns)
            meta = dict(spectrum.metadata)
            meta["calibration"] = cal.to_dict()
            return spectrum.replace(metadata=meta), cal
        if abs(shift) > WARN_CALIBRATION_SHIFT:
            warns.append(f"calibration shift {shift:+.1f} eV is large (reference e0 {e0r:.1f} eV vs tabulated "
                         f"{tab:.1f} eV): check the reference")
        cal = Calibration(method=how, reference=desc, element=rel, edge=red, reference_e0=float(e0r),
                          tabulated_e0=float(tab), shift=float(shift), warnings=warns)
    meta = dict(spectrum.metadata)
    meta["calibration"] = cal.to_dict()
    return spectrum.replace(energy=spectrum.energy + cal.shift, metadata=meta), cal
