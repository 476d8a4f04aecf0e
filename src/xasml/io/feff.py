"""Readers for FEFF9/FEFF10 ``xmu.dat`` output and compound folders of site spectra.

FEFF writes ``xmu.dat`` with a ``#`` header and six columns: ``omega`` (absolute photon energy,
eV), ``e`` (energy relative to the Fermi level, eV), ``k`` (Å⁻¹), ``mu``, ``mu0`` and ``chi``.
The absorber's atomic number is on the header line ``Abs   Z=29 ...``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from xasml.errors import SpectrumError
from xasml.spectrum import Spectrum, element_symbol

FEFF_COLUMNS = ("omega", "e", "k", "mu", "mu0", "chi")
_ABS_RE = re.compile(r"Abs\s+Z\s*=\s*(\d+)")
#: searched only after the first ``Abs Z=`` match of a line: one pass, linear in the line length
#: (the former single pattern ``Abs Z=\d+.*?(K|..) shell`` restarted at every ``Abs Z=`` of a
#: line, quadratic on a long header line)
_EDGE_RE = re.compile(r"\b(K|L1|L2|L3|M1|M2|M3|M4|M5)\s+shell", re.IGNORECASE)
_SITE_DIR_RE = re.compile(r"^(\d+)_([A-Z][a-z]?)$")


def read_feff_xmu(path: str | Path, absorbing_element: str | None = None, edge: str | None = None,
                  material_id: str | None = None, absorbing_index: int | None = None,
                  multiplicity: int = 1, column: str = "mu") -> Spectrum:
    """Read a FEFF9 or FEFF10 ``xmu.dat`` file.

    Parameters
    ----------
    path : str or Path
        The ``xmu.dat`` file.
    absorbing_element : str, optional
        Absorber symbol; read from the ``Abs Z=`` header line when not given.
    edge : str, optional
        Edge; read from the header (``K shell``) when not given, else ``"K"``.
    material_id, absorbing_index, multiplicity
        Metadata. ``absorbing_index`` and the element default to the parent folder name when it
        has the ``<index>_<El>`` form used by Lightshow / OmniXAS (e.g. ``008_Cu``).
    column : {"mu", "mu0", "chi"}
        Which column to return as ``mu``.

    Returns
    -------
    Spectrum
        ``energy`` is the absolute ``omega`` column (eV); ``metadata["e_fermi_rel"]`` holds the
        ``e`` column (eV relative to the Fermi level) and ``metadata["feff_version"]`` the
        version string from the header.

    Raises
    ------
    SpectrumError
        If the file is missing or empty, a data line does not have 6 numeric columns, the
        ``Abs Z=`` atomic number is outside 1-118, the absorber cannot be determined, or the
        spectrum is invalid (see :class:`Spectrum`).
    """
    path = Path(path)
    src = str(path)
    if column not in ("mu", "mu0", "chi"):
        raise ValueError(f"column must be 'mu', 'mu0' or 'chi', got {column!r}")
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        raise SpectrumError("file not found", source=src) from None
    except IsADirectoryError:
        raise SpectrumError("is a directory, expected an xmu.dat file", source=src) from None
    if not text.strip():
        raise SpectrumError("empty file", source=src)
    z = None
    edge_found = None
    version = None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if z is None and (m := _ABS_RE.search(stripped)):
                digits = m.group(1)
                z = int(digits) if len(digits) <= 3 else 10**3
                if not 1 <= z <= 118:
                    raise SpectrumError(f"'Abs Z={digits[:12]}{'...' if len(digits) > 12 else ''}': atomic number "
                                        "out of range; expected 1-118", source=src, line=lineno,
                                        field="Abs Z")
                if (me := _EDGE_RE.search(stripped, m.end())):
                    edge_found = me.group(1).upper()
            if version is None and (mv := re.search(r"FEFF\s*([\d.]+)", stripped)):
                version = mv.group(1)
            continue
        parts = stripped.split()
        if len(parts) != 6:
            raise SpectrumError(f"expected 6 columns ({', '.join(FEFF_COLUMNS)}), found {len(parts)}",
                                source=src, line=lineno)
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise SpectrumError(f"non-numeric value in data line: {stripped[:60]!r}", source=src,
                                line=lineno) from None
    if not rows:
        raise SpectrumError("no data lines (expected columns omega e k mu mu0 chi)", source=src)
    data = np.asarray(rows)
    folder = _SITE_DIR_RE.match(path.parent.name)
    if absorbing_element is None:
        if z is not None:
            absorbing_element = element_symbol(z)
        elif folder:
            absorbing_element = folder.group(2)
        else:
            raise SpectrumError("cannot tell the absorbing element: no 'Abs Z=' header line; pass "
                                "absorbing_element", source=src, field="absorbing_element")
    if absorbing_index is None and folder:
        absorbing_index = int(folder.group(1))
    col = FEFF_COLUMNS.index(column)
    return Spectrum(energy=data[:, 0], mu=data[:, col], absorbing_element=absorbing_element,
                    edge=edge or edge_found or "K", material_id=material_id,
                    absorbing_index=absorbing_index, multiplicity=multiplicity, source=src,
                    metadata={"e_fermi_rel": data[:, 1], "feff_version": version})


def read_feff_compound(folder: str | Path) -> list[Spectrum]:
    """Read every site spectrum of one compound folder.

    The layout is that of ``feff10-topology-v0`` and ``omnixas-cu-feff``::

        <folder>/material.json            (optional: key, sites[element, absorbing_index, multiplicity])
        <folder>/FEFF-XANES/<index>_<El>/xmu.dat

    Parameters
    ----------
    folder : str or Path
        The compound folder.

    Returns
    -------
    list of Spectrum
        One per site, with ``material_id`` (``material.json`` ``key`` or the folder name),
        ``absorbing_index`` and ``multiplicity`` (1 when ``material.json`` is absent).

    Raises
    ------
    SpectrumError
        If the folder has no ``FEFF-XANES/*/xmu.dat`` or ``material.json`` is malformed.
    """
    folder = Path(folder)
    meta_path = folder / "material.json"
    mult: dict[int, int] = {}
    material_id = folder.name
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise SpectrumError(f"invalid JSON: {exc.msg}", source=str(meta_path), line=exc.lineno) from None
        material_id = str(meta.get("key", material_id))
        for i, site in enumerate(meta.get("sites", [])):
            try:
                mult[int(site["absorbing_index"])] = int(site["multiplicity"])
            except (KeyError, TypeError, ValueError):
                raise SpectrumError(f"sites[{i}] needs integer 'absorbing_index' and 'multiplicity'",
                                    source=str(meta_path), field=f"sites[{i}]") from None
    files = sorted((folder / "FEFF-XANES").glob("*/xmu.dat"))
    if not files:
        raise SpectrumError("no FEFF-XANES/<index>_<El>/xmu.dat files", source=str(folder))
    out = []
    for f in files:
        m = _SITE_DIR_RE.match(f.parent.name)
        idx = int(m.group(1)) if m else None
        out.append(read_feff_xmu(f, material_id=material_id, absorbing_index=idx,
                                 multiplicity=mult.get(idx, 1) if idx is not None else 1))
    return out
