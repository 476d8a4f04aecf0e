"""One entry point for spectrum files: :func:`read_spectrum` recognises the format by content.

Recognised formats (file extensions are not trusted: the XAS Data Library has ``.xd`` and
``.xxdi`` files, FEFF output is always ``xmu.dat``):

* **XDI** — first line ``# XDI/<version>`` → :func:`xasml.io.xdi.read_xdi`.
* **FEFF xmu.dat** — a ``#`` header line with the column names ``omega e k mu mu0 chi`` →
  :func:`xasml.io.feff.read_feff_xmu`.
* **Materials Project XAS document** — JSON (``{`` or ``[`` first) →
  :func:`xasml.io.mp.read_mp_xas_document`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xasml.errors import SpectrumError
from xasml.spectrum import Spectrum

__all__ = ["read_spectrum", "detect_format"]

_FEFF_HEADER = re.compile(r"^#\s*omega\s+e\s+k\s+mu\s+mu0\s+chi\b", re.IGNORECASE)
_HEAD_BYTES = 16384


def detect_format(path: str | Path) -> str:
    """Return ``"xdi"``, ``"feff"`` or ``"mp"`` for a spectrum file, by its content.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        The format name.

    Raises
    ------
    SpectrumError
        If the file is missing, a directory, binary, empty, or of no recognised format.
    """
    path = Path(path)
    src = str(path)
    if path.is_dir():
        hint = (" (a FEFF compound folder: use xasml.io.read_feff_compound)"
                if (path / "FEFF-XANES").is_dir() else "")
        raise SpectrumError(f"is a directory, expected a spectrum file{hint}", source=src)
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise SpectrumError("file not found", source=src) from None
    if b"\0" in head:
        raise SpectrumError("binary file: expected a text spectrum file (XDI, FEFF xmu.dat or MP JSON)",
                            source=src)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise SpectrumError("empty file", source=src)
    if re.match(r"#\s*XDI/", stripped, re.IGNORECASE):
        return "xdi"
    if stripped[0] in "{[":
        return "mp"
    lines = text.splitlines()
    if any(_FEFF_HEADER.match(line.strip()) for line in lines):
        return "feff"
    first = lines[0].strip()[:60] if lines else ""
    raise SpectrumError(
        "unknown spectrum format: expected XDI (first line '# XDI/1.0 ...'), FEFF xmu.dat (a header "
        "line '#  omega  e  k  mu  mu0  chi') or a Materials Project XAS document (JSON); first line is "
        f"{first!r}", source=src)


def read_spectrum(path: str | Path, **kwargs: Any) -> Spectrum | list[Spectrum]:
    """Read a spectrum file of any supported format (detected from the content).

    Parameters
    ----------
    path : str or Path
        XDI file, FEFF ``xmu.dat``, or Materials Project XAS document (JSON).
    **kwargs
        Passed to the format's reader: :func:`~xasml.io.xdi.read_xdi` (``absorbing_element``,
        ``edge``, ``mode``, ``strict``) or :func:`~xasml.io.feff.read_feff_xmu`
        (``absorbing_element``, ``edge``, ``material_id``, ``absorbing_index``,
        ``multiplicity``, ``column``). MP documents take none.

    Returns
    -------
    Spectrum or list of Spectrum
        A list only for a JSON file holding a list of MP documents.

    Raises
    ------
    SpectrumError
        For unknown formats (the file named, with the formats expected) and everything the
        format's reader raises.
    TypeError
        For keyword arguments the detected format's reader does not take.
    """
    fmt = detect_format(path)
    if fmt == "xdi":
        from xasml.io.xdi import read_xdi

        return read_xdi(path, **kwargs)
    if fmt == "feff":
        from xasml.io.feff import read_feff_xmu

        return read_feff_xmu(path, **kwargs)
    from xasml.io.mp import read_mp_xas_document

    if kwargs:
        raise TypeError(f"{path}: Materials Project documents take no reader options, got {sorted(kwargs)}")
    return read_mp_xas_document(path)
