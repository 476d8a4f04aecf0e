"""One entry point for spectrum files: :func:`read_spectrum` recognises the format by content.

Recognised formats (file extensions are not trusted: the XAS Data Library has ``.xd`` and
``.xxdi`` files, FEFF output is always ``xmu.dat``):

* **XDI** — first line ``# XDI/<version>`` → :func:`xasml.io.xdi.read_xdi`.
* **FEFF xmu.dat** — a ``#`` header line with the column names ``omega e k mu mu0 chi`` →
  :func:`xasml.io.feff.read_feff_xmu`.
* **Materials Project XAS document** — JSON (``{`` or ``[`` first) →
  :func:`xasml.io.mp.read_mp_xas_document`.
* **Athena project** — ``# Athena project file`` first (plain or gzipped), or a JSON project
  with ``_____header`` keys → :func:`xasml.io.athena.read_athena` (a list, one per group).
* **HDF5/NeXus** — the HDF5 signature → :func:`xasml.io.nexus.read_nexus_table` (BLISS, SOLEIL and
  generic NeXus scans), then the column reader's μ choice (:func:`xasml.io.columns.read_columns`).
* **Plain columns** — anything else whose data lines are numbers (any separator, comma
  decimals, ``#`` headers or none, larch/Athena ``.xmu``/``.nor`` exports) →
  :func:`xasml.io.columns.read_columns`. XDI files read with column options (``energy_col``,
  ``mu``) or whose absorption column is not an XDI one (Athena's XDI-style ``.nor`` exports)
  also go there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xasml.errors import SpectrumError
from xasml.spectrum import Spectrum

__all__ = ["detect_format", "read_spectra", "read_spectrum"]

_FEFF_HEADER = re.compile(r"^#\s*omega\s+e\s+k\s+mu\s+mu0\s+chi\b", re.IGNORECASE)
_HEAD_BYTES = 65536


def detect_format(path: str | Path) -> str:
    """Return ``"xdi"``, ``"feff"``, ``"mp"``, ``"athena"``, ``"hdf5"`` or ``"columns"`` for a spectrum file, by its content.

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
    if head[:2] == b"\x1f\x8b":
        import zlib

        try:
            head = zlib.decompressobj(wbits=31).decompress(head, _HEAD_BYTES)
        except zlib.error:
            raise SpectrumError("gzip data is corrupt", source=src) from None
        if head.lstrip().startswith(b"# Athena project file") or b'"_____header' in head[:400]:
            return "athena"
        raise SpectrumError("gzipped file that is not an Athena project: unzip it first", source=src)
    from xasml.io.nexus import HDF5_SIGNATURE

    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if b"\0" in head:
        raise SpectrumError("binary file: expected a text spectrum file (XDI, FEFF xmu.dat or MP JSON)",
                            source=src)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise SpectrumError("empty file", source=src)
    if re.match(r"#\s*XDI/", stripped, re.IGNORECASE):
        return "xdi"
    if stripped.startswith("# Athena project file") or (stripped[0] == "{" and '"_____header' in stripped[:400]):
        return "athena"
    if stripped[0] in "{[":
        return "mp"
    lines = text.splitlines()
    if any(_FEFF_HEADER.match(line.strip()) for line in lines):
        return "feff"
    from xasml.io.columns import _is_number_line

    from xasml.io.headers import COMMENT_CHARS

    body = [ln for ln in (lines[:-1] if len(head) == _HEAD_BYTES else lines)
            if ln.strip() and not ln.strip().startswith(COMMENT_CHARS)]
    if body and sum(_is_number_line(ln) for ln in body[:20]) >= min(3, len(body)):
        return "columns"
    run = 0
    for ln in body:  # beamline files with text headers (SSRL, Photon Factory, X-DAC): a table further down
        run = run + 1 if _is_number_line(ln) else 0
        if run >= 3:
            return "columns"
    first = lines[0].strip()[:60] if lines else ""
    raise SpectrumError(
        "unknown spectrum format: expected XDI (first line '# XDI/1.0 ...'), FEFF xmu.dat (a header "
        "line '#  omega  e  k  mu  mu0  chi'), a Materials Project XAS document (JSON), an Athena project "
        "or numeric columns; first line is "
        f"{first!r}", source=src)


def read_spectrum(path: str | Path, **kwargs: Any) -> Spectrum | list[Spectrum]:
    """Read a spectrum file of any supported format (detected from the content).

    Parameters
    ----------
    path : str or Path
        XDI file, FEFF ``xmu.dat``, or Materials Project XAS document (JSON).
    **kwargs
        Passed to the format's reader: :func:`~xasml.io.xdi.read_xdi` (``absorbing_element``,
        ``edge``, ``mode``, ``strict``), :func:`~xasml.io.feff.read_feff_xmu`
        (``absorbing_element``, ``edge``, ``material_id``, ``absorbing_index``,
        ``multiplicity``, ``column``), :func:`~xasml.io.athena.read_athena`
        (``absorbing_element``, ``edge``, ``include_references``) or
        :func:`~xasml.io.columns.read_columns` (``energy_col``, ``mu``, ``absorbing_element``,
        ``edge``, ``scan``). ``energy_col``/``mu`` given for an XDI file read it as columns. MP
        documents take none.

    Returns
    -------
    Spectrum or list of Spectrum
        A list for an Athena project (one per μ(E) group) and for a JSON file holding a list
        of MP documents.

    Raises
    ------
    SpectrumError
        For unknown formats (the file named, with the formats expected), everything the
        format's reader raises, and scans too short for an edge
        (:func:`xasml.spectrum.check_extent`, which also adds a warning for short scans).
    TypeError
        For keyword arguments the detected format's reader does not take.
    """
    from xasml.spectrum import check_extent

    got = _read_spectrum(path, **kwargs)
    if not hasattr(got, "failed"):
        for s in (got if isinstance(got, list) else [got]):
            check_extent(s)  # the one extent check every command's spectra pass: too short is an error
        return got
    from xasml.io.athena import AthenaFailure

    kept = []
    for s in got:  # an Athena project: a group too short is reported, the others are kept
        try:
            check_extent(s)
            kept.append(s)
        except SpectrumError as exc:
            label = s.metadata.get("label") or ""
            got.failed.append(AthenaFailure(name=str(s.metadata.get("group")), label=label, line=None,
                                            error=SpectrumError(f"group {label!r}: {exc.message}", source=exc.source,
                                                                field=exc.field)))
    if not kept:
        raise got.failed[0].error
    got[:] = kept
    return got


def _read_spectrum(path: str | Path, **kwargs: Any) -> Spectrum | list[Spectrum]:
    """:func:`read_spectrum` without the extent check: the format's reader."""
    fmt = detect_format(path)
    column_opts = {k: kwargs[k] for k in ("energy_col", "mu", "scan") if kwargs.get(k) is not None}
    if fmt == "athena":
        from xasml.io.athena import read_athena

        if column_opts:
            raise TypeError(f"{path}: Athena projects take no column options, got {sorted(column_opts)}")
        return read_athena(path, **{k: v for k, v in kwargs.items() if k not in ("energy_col", "mu", "scan")})
    if fmt in ("columns", "hdf5") or (fmt == "xdi" and column_opts):
        from xasml.io.columns import read_columns

        return read_columns(path, **{k: v for k, v in kwargs.items() if k in ("energy_col", "mu", "absorbing_element",
                                                                              "edge", "scan")})
    kwargs = {k: v for k, v in kwargs.items() if k not in ("energy_col", "mu", "scan")}
    if fmt == "xdi":
        from xasml.io.xdi import read_xdi

        try:
            return read_xdi(path, **kwargs)
        except SpectrumError as exc:
            if exc.field != "mu" or "no absorption column" not in exc.message:
                raise
            from xasml.io.columns import read_columns  # e.g. Athena's XDI-style .nor export (column 'norm')

            return read_columns(path, **{k: v for k, v in kwargs.items() if k in ("absorbing_element", "edge")})
    if fmt == "feff":
        from xasml.io.feff import read_feff_xmu

        return read_feff_xmu(path, **kwargs)
    from xasml.io.mp import read_mp_xas_document

    if kwargs:
        raise TypeError(f"{path}: Materials Project documents take no reader options, got {sorted(kwargs)}")
    return read_mp_xas_document(path)


def read_spectra(path: str | Path, absorbing_element: str | None = None, edge: str | None = None,
                 energy_col: str | int | None = None, mu: str | int | None = None,
                 include_references: bool = True, scan: str | int | None = None) -> list[Spectrum]:
    """Every spectrum of a file, read with the options of the commands that read measured files
    (``--element``, ``--edge``, ``--energy-col``, ``--mu``; :func:`read_spectrum` does the work).

    Parameters
    ----------
    path : str or Path
        Any supported file (XDI, Athena project, column file, FEFF ``xmu.dat``, MP document).
    absorbing_element, edge : str, optional
        For files that do not say (or to check those that do).
    energy_col, mu : str or int, optional
        Column files (and XDI read as columns): energy column and μ (name, 1-based index, or an
        expression of the channels such as ``ln(i0/it)``).
    include_references : bool
        Keep an Athena project's reference-channel groups (``metadata["is_reference_channel"]``).
    scan : str or int, optional
        SPEC column files with several ``#S`` scans: which one (default the last).

    Returns
    -------
    list of Spectrum
        One per spectrum in the file (an Athena project gives one per group; its groups that
        could not be read are in the list's ``failed``, see :class:`xasml.io.athena.AthenaSpectra`).

    Raises
    ------
    SpectrumError
        Naming the file: what the format's reader raises, and options the format does not take.
    """
    opts = {k: v for k, v in (("absorbing_element", absorbing_element), ("edge", edge), ("energy_col", energy_col),
                              ("mu", mu), ("scan", scan)) if v is not None}
    try:
        got = read_spectrum(path, **opts)
    except TypeError as exc:  # options the detected format's reader does not take
        raise SpectrumError(str(exc).removeprefix(f"{path}: "), source=str(path)) from None
    spectra = got if isinstance(got, list) else [got]
    if not include_references:
        kept = [s for s in spectra if not s.metadata.get("is_reference_channel")]
        spectra = type(spectra)(kept, spectra.failed, spectra.skipped) if hasattr(spectra, "failed") else kept
    return spectra
