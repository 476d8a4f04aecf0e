"""Reader for the XAS Data Interchange format (XDI 1.0 / 1.1).

XDI (Newville, Ravel, Solé, Wellenreuther; the IXAS/IUCr XDI working group) is a plain-text
format for one XAS scan::

    # XDI/1.0 GSE/1.0                 version line: XDI version, then applications
    # Column.1: energy eV             header fields  Namespace.tag: value
    # Element.symbol: Cu
    # Element.edge: K
    # Mono.d_spacing: 3.13553
    # ///                             field-end line (optional when there are no comments)
    # free user comments
    #----                             header-end line (required)
    # energy i0 itrans mutrans        column labels (optional)
      8779.0  149013.7  550643.1  -1.307
      ...

:func:`read_xdi_table` parses the file exactly (every column, every header field, the
comments) into an :class:`XDIFile`; :func:`read_xdi` turns it into a :class:`~xasml.spectrum.Spectrum`
(absolute energy in eV and the absorption ``mu`` of the sample).

Malformed files follow the XDI project's own test suite (``baddata/BadFiles.txt``): structural
errors (no version line, ragged or non-numeric data, NaN, malformed header fields) raise a
:class:`~xasml.errors.SpectrumError` naming the file and line; recoverable problems (missing or
invalid ``Element.*`` fields, missing header-end line, column-label mismatches, unsupported
comment characters, badly formatted dates or values) are read with an :class:`XDIWarning`,
which is also recorded in ``XDIFile.warnings`` / ``Spectrum.metadata["warnings"]``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import SpectrumError
from xasml.io.files import decode_text, read_file_bytes
from xasml.spectrum import Spectrum, normalize_element
from xasml.utils import is_number

__all__ = ["XDIWarning", "XDIFile", "read_xdi_table", "read_xdi", "write_xdi", "XDI_EDGES",
           "RECOMMENDED_FIELDS", "bragg_energy", "mono_d_spacing"]

#: hc in eV·Å (CODATA 2018), for Bragg's law E = hc / (2 d sin θ).
HC_EV_ANGSTROM = 12398.419843320026

#: Edge names the XDI dictionary allows (generic L, M, N, O included).
XDI_EDGES = ("K", "L", "L1", "L2", "L3", "M", "M1", "M2", "M3", "M4", "M5", "N", "N1", "N2", "N3",
             "N4", "N5", "N6", "N7", "O", "O1", "O2", "O3", "O4", "O5", "O6", "O7")

#: Fields the XDI dictionary recommends for every file.
RECOMMENDED_FIELDS = ("Facility.name", "Facility.xray_source", "Beamline.name", "Scan.start_time",
                      "Column.1")

#: Canonical capitalisation of the namespaces defined in the XDI dictionary.
_DEFINED_NAMESPACES = {n.lower(): n for n in ("Facility", "Beamline", "Mono", "Detector", "Sample",
                                              "Scan", "Element", "Column")}

_VERSION_RE = re.compile(r"^#\s*XDI/(\d+)\.(\d+)(?:\.(\d+))?(.*)$", re.IGNORECASE)
# the value is stripped in code: a lazy '(.*?)\s*$' is quadratic on long runs of inner whitespace
_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\.([A-Za-z0-9_][A-Za-z0-9_-]*)\s*:(.*)$")
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FLOAT_UNITS_RE = re.compile(rf"^({_FLOAT})\s*(.*)$")

#: Lattice constants (Å, room temperature) of common monochromator crystals, used only to
#: recover a missing ``Mono.d_spacing`` from ``Mono.name`` (d_hkl = a / sqrt(h²+k²+l²), cubic).
_MONO_LATTICE = {"si": 5.431020511, "ge": 5.6579, "c": 3.56683, "diamond": 3.56683}


class XDIWarning(UserWarning):
    """An XDI file was read, but something in it is missing or not as the specification says."""


class XDIPedanticWarning(XDIWarning):
    """A departure from the XDI specification that changes nothing in the data read (a required
    field missing or badly formatted, a version other than 1.x). The command line shows these only
    with ``xasml --verbose``; they are always in the reader's list of warnings."""


@dataclass
class XDIFile:
    """The full content of one XDI file.

    Attributes
    ----------
    path : str
        The file.
    version : str
        XDI version from the first line, e.g. ``"1.0"``.
    applications : list of str
        The further version entries of the first line (``["GSE/1.0"]``); empty when absent.
    header : dict of str to dict of str to str
        Header fields by namespace, then tag: ``header["Element"]["symbol"] == "Cu"``. Defined
        namespaces use the dictionary's capitalisation; tags are lower case (XDI names are
        case-insensitive). When a field repeats, the last value wins (XDI rule).
    columns : list of str
        One label per data column (``"energy"``, ``"i0"``, ...); unlabelled columns are ``colN``.
    units : dict of str to str
        Units of each column that declares them (``{"energy": "eV"}``).
    data : dict of str to ndarray, shape (n,)
        Column arrays in file order (not sorted).
    comments : list of str
        User comment lines (between the field-end and header-end lines).
    warnings : list of str
        Every problem tolerated while reading (each was also issued as an :class:`XDIWarning`).
    label_line : list of str or None
        The optional column-label line just above the data.
    inner_headers : list of (int, str)
        ``#`` lines found inside the data section (e.g. ``Outer.value`` of 2-D scans), with the
        index of the next data row.
    data_lines : ndarray of int, shape (n,)
        1-based file line number of each data row (for error messages).
    """

    path: str
    version: str
    applications: list[str]
    header: dict[str, dict[str, str]]
    columns: list[str]
    units: dict[str, str]
    data: dict[str, np.ndarray]
    comments: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    label_line: list[str] | None = None
    inner_headers: list[tuple[int, str]] = field(default_factory=list)
    data_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    def get(self, name: str, default: Any = None) -> Any:
        """Return the header field ``"Namespace.tag"`` (case-insensitive), or ``default``."""
        ns, _, tag = name.partition(".")
        for key, fields in self.header.items():
            if key.lower() == ns.lower():
                return fields.get(tag.lower(), default)
        return default

    @property
    def n_points(self) -> int:
        """Number of data rows."""
        return int(self.data_lines.size)

    def missing_recommended(self) -> list[str]:
        """The recommended fields (:data:`RECOMMENDED_FIELDS`) absent from this file."""
        return [f for f in RECOMMENDED_FIELDS if self.get(f) in (None, "")]

    def flat_header(self) -> dict[str, str]:
        """Header fields as one ``{"Namespace.tag": value}`` dict (JSON friendly)."""
        return {f"{ns}.{tag}": v for ns, fields in self.header.items() for tag, v in fields.items()}


def _caller_stacklevel() -> int:
    """Stack level of the first frame outside the xasml package (where warnings should point)."""
    import sys

    pkg = str(Path(__file__).resolve().parents[1])
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(pkg):
        frame, level = frame.f_back, level + 1
    return level


def _warn(msgs: list[str], src: str, message: str, line: int | None = None,
          category: type[Warning] = XDIWarning) -> None:
    text = f"{src}{', line ' + str(line) if line else ''}: {message}"
    msgs.append(text)
    warnings.warn(text, category, stacklevel=_caller_stacklevel())


def _strip_comment_body(body: str) -> str:
    """Drop the comment token and at most one leading space (XDI rule for user comments)."""
    return body[1:].removeprefix(" ").rstrip()


def _check_field_values(header: dict[str, dict[str, str]], msgs: list[str], src: str,
                        lines: dict[str, int]) -> None:
    """Warn about defined fields whose value breaks the dictionary's format."""

    def get(ns, tag):
        return header.get(ns, {}).get(tag)

    def w(name, message):
        _warn(msgs, src, f"{name}: {message}", lines.get(name.lower()), XDIPedanticWarning)

    sym = get("Element", "symbol")
    if sym is None:
        w("Element.symbol", "missing (required by XDI)")
    else:
        try:
            normalize_element(sym)
        except SpectrumError:
            w("Element.symbol", f"invalid value {sym!r}: expected a chemical symbol such as 'Cu'")
    edge = get("Element", "edge")
    if edge is None:
        w("Element.edge", "missing (required by XDI)")
    elif edge.strip().upper() not in XDI_EDGES:
        w("Element.edge", f"invalid value {edge!r}: expected one of {', '.join(XDI_EDGES)}")
    d = get("Mono", "d_spacing")
    if d is None:
        w("Mono.d_spacing", "missing (required by XDI)")
    else:
        try:
            dv = float(d)
            if not (math.isfinite(dv) and dv > 0):
                raise ValueError
        except ValueError:
            w("Mono.d_spacing", f"invalid value {d!r}: expected a positive number (Å)")
    for tag in ("start_time", "end_time"):
        t = get("Scan", tag)
        if t is not None:
            try:
                datetime.fromisoformat(t.strip())
            except ValueError:
                w(f"Scan.{tag}", f"invalid value {t!r}: expected an ISO 8601 date-time such as "
                                 "2001-06-26T22:27:31")

    def float_units(name, value, allowed, units_required):
        m = _FLOAT_UNITS_RE.match(value.strip())
        if not m:
            w(name, f"invalid value {value!r}: expected a number followed by units "
                    f"({', '.join(allowed)})")
            return
        units = m.group(2).strip()
        if not units:
            if units_required:
                w(name, f"invalid value {value!r}: units missing (expected {', '.join(allowed)})")
            return
        if units.lower() not in {a.lower() for a in allowed}:
            w(name, f"invalid value {value!r}: units {units!r} not one of {', '.join(allowed)}")

    if (v := get("Facility", "energy")) is not None:
        float_units("Facility.energy", v, ("GeV", "MeV"), True)
    if (v := get("Facility", "current")) is not None:
        float_units("Facility.current", v, ("mA", "A"), True)
    if (v := get("Scan", "edge_energy")) is not None:
        float_units("Scan.edge_energy", v, ("eV", "keV", "1/Å", "1/A", "invA"), False)
    v = get("Sample", "temperature")
    if v is not None and not re.search(r"\broom\b|^rt$", v.strip(), re.IGNORECASE):  # 'room temp.' is common
        float_units("Sample.temperature", v, ("K", "C", "F", "degrees K", "degrees C", "°C"), False)


def _text_lines(path: Path) -> list[str]:
    """The lines of a text file (LF, CR or CRLF), refusing missing, binary and empty files."""
    src = str(path)
    text = decode_text(read_file_bytes(path, "an XDI file"), src, "XDI text")
    lines = text.splitlines()
    if not lines or not text.strip():
        raise SpectrumError("empty file", source=src)
    return lines


def _version_line(line: str, src: str, msgs: list[str]) -> tuple[str, list[str]]:
    """XDI version and application list of the first line (``# XDI/1.0 GSE/1.0``)."""
    m = _VERSION_RE.match(line.strip())
    if not m:
        raise SpectrumError(f"first line must be the XDI version line '# XDI/1.0 ...', found "
                            f"{line.strip()[:60]!r}", source=src, line=1)
    version = f"{m.group(1)}.{m.group(2)}" + (f".{m.group(3)}" if m.group(3) else "")
    if m.group(1) != "1":
        _warn(msgs, src, f"XDI version {version} is not 1.x; reading it as XDI 1.1", 1, XDIPedanticWarning)
    return version, m.group(4).split()


def _data_row(tokens: list[str], src: str, lineno: int) -> list[float]:
    """The finite numbers of one data line (NaN and inf are not allowed in XDI)."""
    values = []
    for j, tok in enumerate(tokens):
        try:
            v = float(tok)
        except ValueError:
            raise SpectrumError(f"value {tok[:40]!r} in column {j + 1} is not a number", source=src,
                                line=lineno) from None
        if not math.isfinite(v):
            raise SpectrumError(f"value {tok[:40]!r} in column {j + 1} is not finite (NaN and inf are "
                                "not allowed in XDI)", source=src, line=lineno)
        values.append(v)
    return values


def _column_names(ncol: int, column_fields: dict[int, tuple[str, str, int]], label_line: list[str] | None,
                  header_end_seen: bool, src: str, msgs: list[str]) -> tuple[list[str], dict[str, str]]:
    """Column names (lower case, unique) and units: the ``Column.N`` fields, completed from the
    column-label line, else ``colN``; warns about labels that do not match the data."""
    columns: list[str] = []
    units: dict[str, str] = {}
    extra = sorted(n for n in column_fields if n > ncol)
    if extra:
        _warn(msgs, src, f"Column.{', Column.'.join(map(str, extra))} declared but the data have only "
                         f"{ncol} columns; ignored", column_fields[extra[0]][2])
    use_labels = label_line is not None and len(label_line) == ncol
    missing = [n for n in range(1, ncol + 1) if n not in column_fields]
    if missing and column_fields:
        _warn(msgs, src, f"no Column.N field for column(s) {missing}; named from the "
                         f"{'column-label line' if use_labels else 'position (colN)'}")
    elif not column_fields:
        _warn(msgs, src, "no Column.N fields; columns named from the "
                         f"{'column-label line' if use_labels else 'position (colN)'}")
    for n in range(1, ncol + 1):
        if n in column_fields:
            name, unit = column_fields[n][0], column_fields[n][1]
        elif use_labels:
            name, unit = label_line[n - 1], ""
        else:
            name, unit = f"col{n}", ""
        name_l = name.lower()
        base, k = name_l, 2
        while name_l in columns:
            name_l = f"{base}_{k}"
            k += 1
        columns.append(name_l)
        if unit:
            units[name_l] = unit
    if label_line is not None and len(label_line) != ncol and header_end_seen:
        _warn(msgs, src, f"column-label line has {len(label_line)} labels for {ncol} data columns; ignored")
    return columns, units


def read_xdi_table(path: str | Path) -> XDIFile:
    """Parse an XDI file completely, validating it against the XDI 1.0/1.1 specification.

    Parameters
    ----------
    path : str or Path
        The XDI file (any extension).

    Returns
    -------
    XDIFile
        Header fields, column labels and units, column arrays, comments and warnings.

    Raises
    ------
    SpectrumError
        Naming the file and line when: the file is missing, empty or not text; the first line
        is not an ``# XDI/x.y`` version line; a header field is malformed (no ``:``, no value,
        a name that is not ``Namespace.tag``, a namespace starting with a digit); a data line
        has a different number of columns than the first, a non-numeric value, NaN or inf; or
        there are no data lines.

    Warns
    -----
    XDIWarning
        For recoverable problems: missing or invalid ``Element.symbol``/``Element.edge``/
        ``Mono.d_spacing``, no header-end line, ``Column.N`` labels that do not match the data
        (missing labels become ``colN``, extra ones are ignored), header lines with an
        unsupported comment character (ignored), and defined fields with badly formatted
        values (dates, ``Facility.energy``, ``Sample.temperature``, ...).
    """
    path = Path(path)
    src = str(path)
    lines = _text_lines(path)
    msgs: list[str] = []
    version, applications = _version_line(lines[0], src, msgs)

    header: dict[str, dict[str, str]] = {}
    field_lines: dict[str, int] = {}
    column_fields: dict[int, tuple[str, str, int]] = {}
    comments: list[str] = []
    label_line: list[str] | None = None
    state = "fields"  # -> "comments" after '# ///', -> "labels" after '# ---', -> "data"
    header_end_seen = False
    rows: list[list[float]] = []
    row_lines: list[int] = []
    inner: list[tuple[int, str]] = []
    ncol = None

    for lineno, line in enumerate(lines[1:], start=2):
        s = line.strip()
        if not s:
            continue  # blank lines are discarded everywhere
        if state == "data":
            if s.startswith("#"):
                inner.append((len(rows), s[1:].strip()))
                continue
        elif s.startswith("#"):
            body = s[1:].strip()
            if re.fullmatch(r"-{3,}", body):
                state, header_end_seen = "labels", True
                continue
            if state == "fields" and re.fullmatch(r"/{3,}", body):
                state = "comments"
                continue
            if state == "fields" and re.fullmatch(r"/{3,}.*", body):
                # e.g. '///  Users Comments  ///' (Epics StepScan files): the comment separator, leniently
                _warn(msgs, src, f"comment separator line {body[:40]!r} is not a bare '///': taken as one", lineno)
                state = "comments"
                continue
            if state == "fields":
                if not body:
                    continue
                fm = _FIELD_RE.match(body)
                if not fm:
                    raise SpectrumError(
                        f"malformed header field {body[:60]!r}: expected 'Namespace.tag: value' "
                        "(namespace starting with a letter, one '.', a ':' and a value); put free "
                        "text after a '# ///' line", source=src, line=lineno)
                ns, tag, value = fm.groups()
                value = value.strip()
                if not value:
                    raise SpectrumError(f"header field {ns}.{tag} has no value", source=src, line=lineno)
                ns = _DEFINED_NAMESPACES.get(ns.lower(), ns)
                for known in header:  # extension namespaces: keep first spelling
                    if known.lower() == ns.lower():
                        ns = known
                header.setdefault(ns, {})[tag.lower()] = value
                field_lines[f"{ns}.{tag}".lower()] = lineno
                if ns == "Column":
                    if not tag.isdigit() or int(tag) < 1:
                        _warn(msgs, src, f"Column.{tag}: tag must be a positive integer; ignored", lineno)
                    else:
                        words = value.split()
                        units = words[1] if len(words) > 1 and words[1] != "||" else ""
                        column_fields[int(tag)] = (words[0], units, lineno)
            elif state == "comments":
                comments.append(_strip_comment_body(s))
            else:  # after the header-end line: the last '#' line is the column-label line
                label_line = s[1:].split()
            continue
        # a line without the comment token
        tokens = s.split()
        if state != "data" and not is_number(tokens[0]):
            _warn(msgs, src, f"header line without the '#' comment token ignored: {s[:50]!r}", lineno)
            continue
        if state != "data":
            if not header_end_seen:
                _warn(msgs, src, "no header-end line ('# -----') before the data", lineno)
                if state == "comments" and comments:
                    # the last comment line stands where the label line would be
                    label_line = comments[-1].split()
            state = "data"
        if ncol is None:
            ncol = len(tokens)
        elif len(tokens) != ncol:
            raise SpectrumError(f"data line has {len(tokens)} columns, expected {ncol} like the first "
                                "data line", source=src, line=lineno)
        rows.append(_data_row(tokens, src, lineno))
        row_lines.append(lineno)

    if not rows:
        raise SpectrumError("no data lines after the header", source=src)
    assert ncol is not None
    data_arr = np.asarray(rows, dtype=float)

    columns, units = _column_names(ncol, column_fields, label_line, header_end_seen, src, msgs)
    xdi = XDIFile(path=src, version=version, applications=applications, header=header,
                  columns=columns, units=units,
                  data={c: data_arr[:, j].copy() for j, c in enumerate(columns)},
                  comments=comments, warnings=msgs, label_line=label_line, inner_headers=inner,
                  data_lines=np.asarray(row_lines, dtype=int))
    _check_field_values(header, msgs, src, field_lines)
    if column_fields and 1 in column_fields and columns[0] not in ("energy", "angle"):
        if columns[0] not in ("x", "pixel") and units.get(columns[0], "").lower() in ("ev", "kev"):
            _warn(msgs, src, f"Column.1 label {columns[0]!r} is not a defined abscissa ('energy' or "
                             f"'angle'); its units {units[columns[0]]!r} say it is the energy",
                  column_fields[1][2])
    return xdi


def mono_d_spacing(name: str) -> float | None:
    """d-spacing (Å) of a cubic monochromator crystal named like ``"Si 111"`` or ``"Si(311)"``.

    Parameters
    ----------
    name : str
        ``Mono.name`` value: a crystal (Si, Ge, C/diamond) and a Miller index.

    Returns
    -------
    float or None
        d_hkl = a / sqrt(h² + k² + l²) with the room-temperature lattice constant a, or None
        when the name is not recognised.
    """
    m = re.search(r"\b(si|ge|c|diamond)\s*\(?\s*(\d)\s*,?\s*(\d)\s*,?\s*(\d)\s*\)?", name, re.IGNORECASE)
    if not m:
        return None
    h, k, l = (int(m.group(i)) for i in (2, 3, 4))
    if h * h + k * k + l * l == 0:
        return None
    return _MONO_LATTICE[m.group(1).lower()] / math.sqrt(h * h + k * k + l * l)


def bragg_energy(angle: np.ndarray, d_spacing: float, units: str = "degrees") -> np.ndarray:
    """Photon energy (eV) selected by a crystal monochromator at Bragg angle ``angle``.

    E = hc / (2 d sin θ), with hc = 12398.42 eV·Å (Bragg's law, first order).

    Parameters
    ----------
    angle : ndarray, shape (n,)
        Bragg angle θ.
    d_spacing : float
        Lattice-plane spacing d of the crystal, Å.
    units : {"degrees", "deg", "mdeg", "radians", "rad", "mrad"}
        Units of ``angle``.

    Returns
    -------
    ndarray, shape (n,)
        Energies in eV.

    Raises
    ------
    ValueError
        For unknown angle units or non-positive d-spacing.
    """
    u = units.lower()
    theta = np.asarray(angle, dtype=float)
    if u in ("degrees", "degree", "deg", "°"):
        theta = np.deg2rad(theta)
    elif u in ("mdeg", "millidegrees", "millidegree"):
        theta = np.deg2rad(theta / 1000.0)
    elif u in ("mrad", "milliradians", "milliradian"):
        theta = theta / 1000.0
    elif u not in ("radians", "radian", "rad"):
        raise ValueError(f"angle units must be degrees, millidegrees, radians or milliradians, got {units!r}")
    if not d_spacing > 0:
        raise ValueError(f"d_spacing must be positive, got {d_spacing}")
    return HC_EV_ANGSTROM / (2.0 * d_spacing * np.sin(theta))


#: mu columns in order of preference: (column, metadata description)
_MU_COLUMNS = {
    "transmission": ("mutrans", "normtrans"),
    "fluorescence": ("mufluor", "normfluor"),
    "reference": ("murefer", "normrefer"),
}


def _choose_mu(xdi: XDIFile, mode: str | None) -> tuple[np.ndarray, str]:
    d = xdi.data
    src = xdi.path
    modes = [mode] if mode else ["transmission", "fluorescence"]
    for md in modes:
        for col in _MU_COLUMNS[md]:
            if col in d:
                return d[col], col
        if md == "transmission" and mode is None and "mu" in d:
            return d["mu"], "mu"
        if md == "transmission" and "i0" in d and "itrans" in d:
            with np.errstate(divide="ignore", invalid="ignore"):
                mu = np.log(d["i0"] / d["itrans"])
            return mu, "ln(i0/itrans)"
        if md == "fluorescence" and "i0" in d and "ifluor" in d:
            with np.errstate(divide="ignore", invalid="ignore"):
                mu = d["ifluor"] / d["i0"]
            return mu, "ifluor/i0"
        if md == "reference" and "itrans" in d and "irefer" in d:
            with np.errstate(divide="ignore", invalid="ignore"):
                mu = np.log(d["itrans"] / d["irefer"])
            return mu, "ln(itrans/irefer)"
    raise SpectrumError(
        f"no absorption column for mode {mode or 'auto'!r}: expected mutrans, mufluor, mu, normtrans, "
        f"normfluor, or i0 with itrans/ifluor; columns are {', '.join(xdi.columns)}",
        source=src, field="mu")


def _energy_axis(xdi: XDIFile, msgs: list[str]) -> tuple[np.ndarray, str]:
    src = xdi.path
    cols = xdi.columns
    if "energy" in xdi.data:
        name = "energy"
    elif "angle" in xdi.data:
        name = "angle"
    else:
        name = cols[0]
    units = xdi.units.get(name, "").lower()
    values = xdi.data[name]
    if name == "angle" or units in ("deg", "degree", "degrees", "rad", "radian", "radians", "mdeg", "mrad"):
        d = xdi.get("Mono.d_spacing")
        dv = None
        if d is not None:
            try:
                dv = float(d)
            except ValueError:
                dv = None
        how = "Mono.d_spacing"
        if dv is None or not dv > 0:
            mono = xdi.get("Mono.name")
            dv = mono_d_spacing(mono) if mono else None
            if dv is None:
                raise SpectrumError("abscissa is a monochromator angle but Mono.d_spacing is missing or "
                                    "invalid and Mono.name names no known crystal: cannot compute "
                                    "energies", source=src, field="Mono.d_spacing")
            how = f"Mono.name {mono!r}"
            _warn(msgs, src, f"Mono.d_spacing missing or invalid: used d = {dv:.5f} Å of the crystal "
                             f"in {how} to convert angle to energy")
        try:
            energy = bragg_energy(values, dv, units or "degrees")
        except ValueError as exc:
            col = f"Column.{cols.index(name) + 1}" if name in cols else "Column.1"
            raise SpectrumError(f"angle column {name!r}: {exc}", source=src, field=col) from None
        return energy, f"angle ({units or 'degrees'}) via {how}"
    if units == "kev":
        return values * 1000.0, "energy (keV)"
    if units in ("ev", ""):
        if units == "" and name != "energy":
            raise SpectrumError(f"first column {name!r} has no units and is not 'energy' or 'angle': "
                                "this does not look like an XAS energy scan", source=src, field="Column.1")
        if units == "" and np.nanmedian(values) < 200:  # keV written without units
            _warn(msgs, src, "energy column has no units and values below 200: taken as keV")
            return values * 1000.0, "energy (keV, inferred)"
        return values, "energy (eV)"
    raise SpectrumError(f"unsupported abscissa units {xdi.units.get(name)!r} for column {name!r}: expected "
                        "eV, keV, degrees or radians", source=src, field="Column.1")


def read_xdi(path: str | Path, absorbing_element: str | None = None, edge: str | None = None,
             mode: str | None = None, strict: bool = False) -> Spectrum:
    """Read an XDI file as a :class:`~xasml.spectrum.Spectrum` of the sample's absorption.

    Parameters
    ----------
    path : str or Path
        The XDI file.
    absorbing_element, edge : str, optional
        Override ``Element.symbol`` / ``Element.edge``. When the file lacks them (or has
        invalid ones) and no override is given, they are identified from the data: the
        tabulated edge (xraydb) nearest to ``Scan.edge_energy`` or to the measured edge
        position, with an :class:`XDIWarning`.
    mode : {None, "transmission", "fluorescence", "reference"}
        Which absorption to return. ``None`` (default): the first available of ``mutrans``,
        ``normtrans``, ``mu``, ln(i0/itrans), ``mufluor``, ``normfluor``, ifluor/i0.
        ``"reference"``: ``murefer``/``normrefer`` or ln(itrans/irefer), the reference foil
        measured downstream of the sample (not the sample).
    strict : bool
        If True, energies that are not strictly increasing raise instead of being sorted.

    Returns
    -------
    Spectrum
        ``energy`` in eV, strictly increasing; ``kind="mu"`` (``"norm"`` for normtrans/normfluor);
        ``material_id`` from ``Sample.name``; ``metadata`` holds ``mu_source`` (the column or
        formula used), ``energy_source``, ``header`` (flat ``Namespace.tag`` dict),
        ``comments``, ``xdi_version`` and ``warnings``.

    Raises
    ------
    SpectrumError
        Everything :func:`read_xdi_table` raises; also when no absorption column exists, the
        abscissa is not an energy or convertible angle, the element/edge cannot be determined,
        the absorption is not finite (e.g. a zero ``itrans``), or (``strict=True``) energies
        repeat or decrease (message names the file line).

    Warns
    -----
    XDIWarning
        Everything :func:`read_xdi_table` warns about, plus: element/edge identified from the
        data, energies sorted or duplicates averaged.
    """
    if mode is not None and mode not in _MU_COLUMNS:
        raise ValueError(f"mode must be None, 'transmission', 'fluorescence' or 'reference', got {mode!r}")
    xdi = read_xdi_table(path)
    src = xdi.path
    msgs = xdi.warnings
    energy, energy_source = _energy_axis(xdi, msgs)
    mu, mu_source = _choose_mu(xdi, mode)
    bad = np.flatnonzero(~np.isfinite(mu))
    if bad.size:
        raise SpectrumError(f"absorption {mu_source} is not finite at {bad.size} point(s) (zero or negative "
                            "intensity?)", source=src, line=int(xdi.data_lines[bad[0]]), field="mu")
    lines = xdi.data_lines
    step = np.diff(energy)
    if np.all(step < 0):  # a scan recorded downwards (e.g. in angle): reverse it
        energy, mu, lines = energy[::-1], mu[::-1], lines[::-1]
    elif np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0])
        what = "repeats" if step[i] == 0 else "decreases"
        where = f"energy {what} at line {lines[i + 1]} ({energy[i]:.3f} eV then {energy[i + 1]:.3f} eV)"
        if strict:
            raise SpectrumError(f"energies must be strictly increasing: {where}", source=src,
                                line=int(lines[i + 1]), field="energy")
        order = np.argsort(energy, kind="stable")
        energy, mu, lines = energy[order], mu[order], lines[order]
        uniq, inverse, counts = np.unique(energy, return_inverse=True, return_counts=True)
        ndup = int(np.sum(counts > 1))
        if ndup:
            mu = np.bincount(inverse, weights=mu) / counts
            lines = lines[np.unique(inverse, return_index=True)[1]]
            energy = uniq
        _warn(msgs, src, f"{where}: points sorted by energy"
                         f"{f' and {ndup} repeated energies averaged' if ndup else ''}", int(xdi.data_lines[i + 1]))

    absorber = _element_and_edge(xdi, energy, mu, absorbing_element, edge, msgs)
    element, edge_name = absorber.element, absorber.edge
    metadata = {
        "format": "xdi",
        "element_source": absorber.element_source,
        "xdi_version": xdi.version,
        "applications": xdi.applications,
        "mu_source": mu_source,
        "energy_source": energy_source,
        "header": xdi.flat_header(),
        "comments": xdi.comments,
        "warnings": list(msgs),
    }
    kind = "norm" if mu_source.startswith("norm") else "mu"
    return Spectrum(energy=energy, mu=mu, absorbing_element=element, edge=edge_name,
                    material_id=xdi.get("Sample.name"), source=src, kind=kind, metadata=metadata)


def _element_and_edge(xdi: XDIFile, energy: np.ndarray, mu: np.ndarray, element: str | None,
                      edge: str | None, msgs: list[str]):
    """The absorber (:class:`xasml.edges.Absorber`): the options, ``Element.symbol``/``Element.edge``, the
    file name, or (with a warning) the data (``Scan.edge_energy`` if usable, else the measured e0)."""
    from xasml.edges import resolve_absorber

    src = xdi.path
    e0, how = None, None
    v = xdi.get("Scan.edge_energy")
    if v is not None:
        m = _FLOAT_UNITS_RE.match(v.strip())
        if m and m.group(2).strip().lower() in ("", "ev", "kev"):
            e0 = float(m.group(1)) * (1000.0 if m.group(2).strip().lower() == "kev" else 1.0)
            how = "Scan.edge_energy"
    ab = resolve_absorber(src, element=element, edge=edge, stated_element_value=xdi.get("Element.symbol"),
                          stated_edge_value=xdi.get("Element.edge"), stated_what="Element.symbol/Element.edge",
                          filename=Path(src).name, energy=energy, mu=mu, e0=e0, e0_what=how)
    for w in ab.warnings:
        _warn(msgs, src, w)
    return ab


def _flat_scalars(prefix: str, obj: Any, out: dict[str, str]) -> None:
    """Flatten nested dicts/lists of scalars into ``prefix_key: value`` strings (XDI tags)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flat_scalars(f"{prefix}_{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in obj):
        out[prefix] = " ".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in obj)
    elif isinstance(obj, (bool, int, str)):
        out[prefix] = str(obj)
    elif isinstance(obj, float):
        out[prefix] = f"{obj:.10g}"


def write_xdi(path: str | Path, spectrum: Spectrum, comments: list[str] | None = None) -> Path:
    """Write a spectrum as an XDI 1.1 file (atomically), keeping its provenance.

    The file has the columns ``energy`` (eV) and ``mutrans`` (``kind="mu"``) or ``normtrans``
    (normalised kinds), ``Element.symbol``/``Element.edge``, the header fields the spectrum was
    read with (``metadata["header"]``, so an XDI file read and written keeps its metadata),
    ``Sample.name`` from ``material_id``, and the preprocessing/alignment records
    (``metadata["preprocessing"]``, ``metadata["alignment"]``) as ``xasml.*`` extension fields.

    Parameters
    ----------
    path : str or Path
        Output file.
    spectrum : Spectrum
        The spectrum.
    comments : list of str, optional
        User comment lines; default the comments the spectrum was read with.

    Returns
    -------
    Path
        ``path``.
    """
    from xasml import __version__
    from xasml.utils import atomic_write_text

    meta = spectrum.metadata
    header: dict[str, str] = {}
    for key, value in (meta.get("header") or {}).items():
        ns = key.split(".", 1)[0].lower()
        if ns not in ("column", "element", "xasml"):
            header[key] = str(value)
    header["Element.symbol"] = spectrum.absorbing_element
    header["Element.edge"] = spectrum.edge
    if spectrum.material_id and "Sample.name" not in header:
        header["Sample.name"] = str(spectrum.material_id)
    ext: dict[str, str] = {"kind": spectrum.kind}
    for what in ("preprocessing", "alignment"):
        if isinstance(meta.get(what), dict):
            _flat_scalars(what, meta[what], ext)
    ycol = "mutrans" if spectrum.kind == "mu" else "normtrans"
    apps = [a for a in meta.get("applications", []) if not a.startswith("xasml/")] + [f"xasml/{__version__}"]
    lines = [f"# XDI/1.1 {' '.join(apps)}", "# Column.1: energy eV", f"# Column.2: {ycol}"]
    lines += [f"# {k}: {v}" for k, v in header.items() if "\n" not in v and v.strip()]
    lines += [f"# xasml.{re.sub(r'[^A-Za-z0-9_-]', '_', k)}: {v}" for k, v in ext.items() if v.strip()]
    lines.append("# ///")
    for c in (meta.get("comments", []) if comments is None else comments):
        lines.append(f"# {c}" if c else "#")
    lines += ["#-----", f"# energy {ycol}"]
    lines += [f"{e:.6f} {m:.10g}" for e, m in zip(spectrum.energy, spectrum.mu)]
    return atomic_write_text(path, "\n".join(lines) + "\n")
