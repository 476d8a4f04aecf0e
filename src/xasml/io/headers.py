"""Channel names of beamline column files, from the header conventions beamlines write.

:func:`column_labels` looks at the header lines of a column file (everything above the data
table) and returns the channel names the way xraylarch's ``read_ascii`` finds them
(``larch.io.columnfile`` and ``larch.io.xafs_beamlines``; our own code, written from the
conventions): the first convention whose signature the header carries wins, the generic "last
header line" rule comes last.

=====================  ==========================================================================
convention             where the names are
=====================  ==========================================================================
``fdmnes``             FDMNES output: the line before the data (``Energy <xanes>``); the
                       ``... = E_edge, Z, n_edge, ...`` line gives the edge energy and the element
``epics-stepscan``     GSECARS Epics StepScan / XDI-like: ``# Column.N: Name units || PV``
``epics-scan``         old GSECARS Epics Scan (``; Epics Scan 1 dim``): ``; P1 = {Energy} --> PV``
                       lines after ``column labels:``
``aps-xsd``            APS 20-ID/20-BM/9-BM LabVIEW files: the ``N) name`` list, else the
                       ``Column Headings:`` line split at runs of two spaces or ``*``
``aps-mrcat``          APS 10-ID/10-BM MRCAT: the line after ``-----``
``nsls-xdac``          NSLS X-DAC (``XDAC`` first): the line after ``-----``
``ssrl``               SSRL EXAFS Data Collector: one name per line after ``Data:``
``cls``                CLS data acquisition: the ``#(1)`` line of ``$(Name)`` macros
``kek-pf``             Photon Factory (``KEK-PF``): ``angle_drive angle_read time colN``; the
                       ``Mono : ... D= d`` d-spacing (Å); the ``Mode`` line says which counter
                       column is I0 (1), It (2) and fluorescence (3)
``aps-12bm``           APS 12-BM (``exafs_region`` lines): ``#C 1_Energy (keV) 2_sec ...``
``spec``               SPEC files: the ``#L`` line of the scan (labels separated by two spaces)
``xdi-columns``        ``# Column.N: name units`` (XDI and XDI-style exports)
``last-line``          anything else: the last header line, comment marks (``#``, ``#L``, ``#C``,
                       ``%``, ``!``, ``;``, ``# #``) and quotes removed, split at whitespace
``none``               no header: ``col1 .. colN``
=====================  ==========================================================================

Names are normalised as larch does (lower case; characters that cannot be in a Python name
become ``_``; a leading digit gets a ``_``; runs of ``_`` collapse; a repeated name ``x`` in
column N becomes ``x_colN``; missing names are ``colN``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["HeaderInfo", "column_labels", "larch_name", "unique_labels", "COMMENT_CHARS"]

#: characters that start a comment (header) line, as larch's ``getfloats`` treats them
COMMENT_CHARS = ("#", ";", "!", "%", "*", "<")
_BAD = ';~,`!%$@&^?*#:"/|\'\\\t\r\n(){}[]<>'
_TRANS = str.maketrans(_BAD, "_" * len(_BAD))


def larch_name(word: str) -> str:
    """A channel name normalised as xraylarch names arrays (``fix_varname`` + lower case).

    Parameters
    ----------
    word : str
        A column label as the file writes it (``"XMAP4:DT Corr I0"``, ``"SCA1.1"``, ``"<xanes>"``).

    Returns
    -------
    str
        ``"xmap4_dt_corr_i0"``, ``"sca1_1"``, ``"_xanes"``; ``""`` for an empty word.
    """
    v = str(word).strip().translate(_TRANS).replace(" ", "_")
    if not v:
        return ""
    if v.count(".") > 1:
        parts = v.split(".")
        v = "_".join(parts[:-1]) + "." + parts[-1]
    if not (v[0].isascii() and (v[0].isalpha() or v[0] == "_")):
        v = "_" + v
    for c in "=+-.":
        v = v.replace(c, "_")
    v = re.sub(r"_{2,}", "_", v)
    if v.endswith("_") and len(v) > 1:
        v = v.rstrip("_") or "_"
    return v.lower()


def unique_labels(words: list[str], ncol: int) -> list[str]:
    """Normalised, unique names for ``ncol`` columns (larch's rules: ``colN`` for missing or empty
    names, ``name_colN`` for a repeat; extra words are dropped).

    Parameters
    ----------
    words : list of str
        Labels as found.
    ncol : int
        Number of data columns.

    Returns
    -------
    list of str, length ncol
    """
    out: list[str] = []
    for i in range(ncol):
        w = larch_name(words[i]) if i < len(words) else ""
        if not w or w == "_":
            w = f"col{i + 1}"
        if w in out:
            w = f"{w}_col{i + 1}"
        out.append(w)
    return out


@dataclass
class HeaderInfo:
    """What a column file's header says about its columns.

    Attributes
    ----------
    labels : list of str
        One normalised name per data column.
    convention : str
        Which header convention gave them (see the module docstring), ``"none"`` when none did.
    energy_units : str or None
        ``"eV"``, ``"keV"`` or ``"deg"`` when the header says.
    energy_column : int or None
        1-based energy (or angle) column the convention names.
    mono_dspace : float or None
        Monochromator d-spacing (Å) for angle columns.
    roles : dict of str to str
        Channel roles the header states (e.g. the PF ``Mode`` line: ``{"col4": "i0"}``).
    fields : dict of str to str
        Convention-specific facts (``E_edge``, ``Z``, element and edge names, scan number...).
    warnings : list of str
        Doubts (names that do not fit the columns).
    """

    labels: list[str]
    convention: str
    energy_units: str | None = None
    energy_column: int | None = None
    mono_dspace: float | None = None
    roles: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _strip_comment(line: str) -> str:
    s = line.strip()
    while s[:1] in COMMENT_CHARS and s:
        s = s[1:].lstrip()
    return s


def _clean_label_line(line: str) -> str:
    s = line.strip()
    for pre in ("#L", "#C", "#"):
        if s.startswith(pre):
            s = s[len(pre):]
    s = s.strip()
    while s[:1] in COMMENT_CHARS and s:
        s = s[1:].strip()
    for bad in "\t,#@%&\"'":
        s = s.replace(bad, " ")
    return s


def _fdmnes(header: list[str], ncol: int) -> HeaderInfo | None:
    if not header or "fdmnes" not in header[0].lower():
        return None
    fields: dict[str, str] = {}
    for h in header:
        body = _strip_comment(h)
        if "=" in body and "E_edge" in body:
            vals, names = body.split("=", 1)
            for n, v in zip([n.strip() for n in names.split(",")], vals.split()):
                if n:
                    fields[n] = v
    words = [w for w in _clean_label_line(header[-1]).split()]
    labels = [w.lstrip("_") for w in unique_labels(words, ncol)]
    return HeaderInfo(labels=labels, convention="fdmnes", energy_units="eV", energy_column=1, fields=fields)


def _column_n(header: list[str], ncol: int, convention: str, need_pv: bool) -> HeaderInfo | None:
    cols: dict[int, str] = {}
    units = None
    for h in header:
        body = _strip_comment(h)
        m = re.match(r"^column\.(\d+)\s*:\s*(.*)$", body, re.IGNORECASE)
        if not m or (need_pv and "||" not in body):
            continue
        entry = m.group(2).split("||")[0].split()
        if not entry:
            continue
        cols[int(m.group(1))] = entry[0]
        if len(entry) > 1 and "energy" in entry[0].lower() and int(m.group(1)) == 1:
            units = entry[1]
    if not cols or max(cols) > ncol + 1 or min(cols) < 1:
        return None
    words = [cols.get(j + 1, "") for j in range(ncol)]
    info = HeaderInfo(labels=unique_labels(words, ncol), convention=convention, energy_column=1)
    if units:
        info.energy_units = {"ev": "eV", "kev": "keV", "deg": "deg", "degrees": "deg"}.get(units.lower(), units)
    if len(cols) != ncol:
        info.warnings.append(f"the header names {len(cols)} columns, the data have {ncol}")
    return info


def _epics_scan(header: list[str], ncol: int) -> HeaderInfo | None:
    if not header or not _strip_comment(header[0]).lower().startswith("epics scan"):
        return None
    labels: list[str] = []
    mode = "search"
    for h in header:
        body = _strip_comment(h)
        if mode == "found":
            if "-->" not in body:
                if labels:
                    break
                continue
            pref = body.split("-->", 1)[0]
            arg = pref.split("=", 1)[-1].replace("{", "").replace("}", "").strip()
            labels.append(arg)
        elif "column labels:" in body.lower():
            mode = "found"
    if not labels:
        return None
    return HeaderInfo(labels=unique_labels(labels, ncol), convention="epics-scan", energy_column=1)


def _aps_xsd(header: list[str], ncol: int) -> HeaderInfo | None:
    if not header or "labview control panel" not in header[0].lower():
        return None
    found: dict[int, str] = {}
    legend = False
    for h in header:
        body = _strip_comment(h)
        if "readable list of column" in body.lower():
            legend = True
            continue
        if legend:
            if len(body) < 2:
                break
            for m in re.finditer(r"(\d+)\)\s*(.*?)(?=\s+\d+\)|$)", body):
                found[int(m.group(1))] = m.group(2).strip().rstrip("*").strip()
    if found:
        words = [found.get(j + 1, "") for j in range(ncol)]
        return HeaderInfo(labels=unique_labels(words, ncol), convention="aps-xsd", energy_column=1)
    last = header[-1].strip().lstrip("#")
    words = [w.strip() for w in re.split(r"\*|\s{2,}|\t", last) if w.strip()]
    return HeaderInfo(labels=unique_labels(words, ncol), convention="aps-xsd", energy_column=1)


def _after_dashes(header: list[str], ncol: int, convention: str) -> HeaderInfo | None:
    for i, h in enumerate(header):
        if "-------" in h and i + 1 < len(header):
            words = _clean_label_line(header[i + 1]).split()
            return HeaderInfo(labels=unique_labels(words, ncol), convention=convention, energy_column=1)
    return None


def _ssrl(header: list[str], ncol: int) -> HeaderInfo | None:
    if not header or not ("ssrl" in header[0].lower() and "exafs data collector" in header[0].lower()):
        return None
    labels: list[str] = []
    found = False
    ecol = None
    for h in header:
        s = h.strip()
        if found:
            if len(s) < 2:
                break
            labels.append(s)
            if ecol is None and "energy" in s.lower():
                ecol = len(labels)
        elif s == "Data:":
            found = True
    if not labels:
        return None
    return HeaderInfo(labels=unique_labels(labels, ncol), convention="ssrl", energy_column=ecol)


def _cls(header: list[str], ncol: int) -> HeaderInfo | None:
    if not header or "cls data acquisition" not in header[0].lower():
        return None
    labels: list[str] = []
    for h in header:
        s = h.strip()
        if s.startswith("#(1)") and "$(" in s:
            s = s.replace("#(1)", "")
            for bad in "\"#$()\t":
                s = s.replace(bad, " ")
            labels = s.split()
    if not labels:
        return None
    return HeaderInfo(labels=unique_labels(labels, ncol), convention="cls")


def _kek_pf(header: list[str], ncol: int) -> HeaderInfo | None:
    if not header or "kek-pf" not in header[0].lower():
        return None
    info = HeaderInfo(labels=unique_labels(["angle_drive", "angle_read", "time"], ncol), convention="kek-pf",
                      energy_units="deg", energy_column=2)
    for h in header:
        low = h.lower()
        m = re.search(r"mono\s*:.*?\bd\s*=\s*([-+0-9.eE]+)", low)
        if m:
            try:
                info.mono_dspace = float(m.group(1))
            except ValueError:
                pass
        words = h.split()
        if words and words[0].lower() == "mode" and len(words) == ncol:
            # 'Mode' stands under the first (angle) column: the codes are those of columns 2..N
            for j, code in enumerate(words[1:], start=1):
                role = {"1": "i0", "2": "it", "3": "if"}.get(code)
                if role and j >= 3:
                    info.roles[info.labels[j]] = role
    return info


def _aps12bm(header: list[str], ncol: int) -> HeaderInfo | None:
    if not any("exafs_region" in h for h in header):
        return None
    last = header[-1].replace("#C", " ").strip()
    labels: list[str] = []
    units = None
    for word in last.split():
        if "_" in word:
            pref, _, suff = word.partition("_")
            if pref.isdigit():
                labels.append(suff)
        elif len(labels) == 1:
            units = word.strip("()")
    if not labels:
        return None
    info = HeaderInfo(labels=unique_labels(labels, ncol), convention="aps-12bm", energy_column=1)
    if units:
        info.energy_units = {"kev": "keV", "ev": "eV"}.get(units.lower(), units)
    return info


def _spec(header: list[str], ncol: int) -> HeaderInfo | None:
    lines = [h for h in header if h.startswith("#L")]
    if not lines:
        return None
    body = lines[-1][2:].strip()
    two = [w for w in re.split(r"\s{2,}|\t", body) if w.strip()]
    one = body.split()
    words = two if len(two) == ncol or len(one) != ncol and abs(len(two) - ncol) < abs(len(one) - ncol) else one
    info = HeaderInfo(labels=unique_labels(words, ncol), convention="spec")
    if len(words) != ncol:
        info.warnings.append(f"the #L line names {len(words)} columns, the data have {ncol}")
    return info


def _last_line(header: list[str], ncol: int) -> HeaderInfo | None:
    for h in reversed(header):
        body = _clean_label_line(h)
        if not body or re.fullmatch(r"[-=/*#~_. ]+", body):
            continue  # separator lines
        words = body.split()
        if len(words) != ncol:  # names separated like the data (';')
            words = [w for w in re.split(r"[;\s]+", body) if w]
        raw = h.strip().lstrip("#").strip()
        if len(words) != ncol and raw.count(",") == ncol - 1:  # CSV names, an empty one for an index
            words = [_clean_label_line(w) for w in raw.split(",")]  # column (pandas' to_csv): colN there
        if all(re.fullmatch(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?", w) for w in words):
            return None
        if len(words) == ncol:
            return HeaderInfo(labels=unique_labels(words, ncol), convention="last-line")
        if ":" not in body and "=" not in body and len(words) >= 2:
            # larch pads missing names with colN and drops extra ones; taken only when the words are
            # channel names (the XAS vocabulary knows one), not a sentence
            from xasml.io.channels import channel_role

            labels = unique_labels(words, ncol)
            if sum(channel_role(w) is not None for w in labels[: min(len(words), ncol)]) >= 2:
                info = HeaderInfo(labels=labels, convention="last-line")
                info.warnings.append(f"the last header line names {len(words)} columns, the data have {ncol}: "
                                     + ("names past the data dropped" if len(words) > ncol else
                                        f"col{len(words) + 1}.. named by position"))
                return info
        return None  # a sentence or a key: value line, not names
    return None


def column_labels(header: list[str], ncol: int) -> HeaderInfo:
    """Channel names of a column file from its header lines, by the first convention that fits.

    Parameters
    ----------
    header : list of str
        The lines above the data table (of the chosen scan for SPEC files), in file order.
    ncol : int
        Number of data columns.

    Returns
    -------
    HeaderInfo
        ``labels`` has exactly ``ncol`` names (``colN`` where the header names none).
    """
    header = [h.rstrip("\r\n") for h in header if h.strip()]
    for finder in (_fdmnes, lambda h, n: _column_n(h, n, "epics-stepscan", True) if h and
                   "epics stepscan" in h[0].lower() else None, _epics_scan, _aps_xsd,
                   lambda h, n: _after_dashes(h, n, "aps-mrcat") if h and "MRCAT_XAFS" in h[0] else None,
                   lambda h, n: _after_dashes(h, n, "nsls-xdac") if h and _strip_comment(h[0]).startswith("XDAC")
                   else None, _ssrl, _cls, _kek_pf, _aps12bm, _spec):
        info = finder(header, ncol)
        if info is not None:
            return info
    info = _last_line(header, ncol)
    if info is not None:
        return info
    info = _column_n(header, ncol, "xdi-columns", False)
    if info is not None:
        return info
    return HeaderInfo(labels=[f"col{j + 1}" for j in range(ncol)], convention="none")
