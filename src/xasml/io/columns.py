"""Reader for plain column files: what beamlines, larch and Athena write besides XDI.

Recognised without options:

* separators: whitespace, comma, tab, semicolon (detected on the first data line);
* comma-decimal locales (``6520,25 0,048`` or ``6520,25;0,048``);
* ``#`` (also ``#%``, ``%``, ``!``) comment headers; header-less files; a first non-comment line
  of column names (CSV header row);
* larch ``write_ascii``/Athena ``.xmu``/``.nor``/``.chi``-style exports, whose last comment
  line names the columns (``#  energy xmu bkg pre_edge ...``, ``# energy norm nbkg flat ...``),
  and header ``key: value``/``key = value`` fields such as ``Element.symbol: Cu``,
  ``Element.edge: K``, ``element = Fe``, ``edge = K``.

Columns are chosen by name (case-insensitive) or by 1-based index (as XDI ``Column.N`` and
Athena's column selector count them); μ may be an expression of the channels, e.g.
``ln(i0/it)``, ``if/i0``, ``-log(it/i0)`` or simply ``mu_ref``, evaluated by a whitelist
evaluator over Python's parse tree (numbers, column names, + − × ÷ **, and ln/log/log10/exp/
sqrt/abs) — user text is never passed to ``eval``.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import SpectrumError
from xasml.io.files import decode_text, read_file_bytes
from xasml.spectrum import KNOWN_EDGES, Spectrum, normalize_element

__all__ = ["ColumnFile", "read_column_table", "read_columns", "evaluate_expression", "MU_COLUMNS"]

_NUM = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_NUM_COMMA = re.compile(r"^[-+]?\d+,\d+(?:[eE][-+]?\d+)?$")
_ENERGY_NAMES = ("energy", "e", "energy_ev", "en", "ene", "energy(ev)", "energy[ev]", "mono_energy", "enc",
                 "energy_readback", "omega")
#: μ columns looked for, in order, when no ``mu`` is given
MU_COLUMNS = ("mu", "xmu", "mutrans", "mu_trans", "mut", "mufluor", "mu_fluor", "muf", "norm", "normtrans",
              "flat", "absorption")
_MAX_EXPR = 500  # characters of a mu expression
_FUNCS = {"ln": np.log, "log": np.log, "log10": np.log10, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs}


@dataclass
class ColumnFile:
    """The content of a plain column file.

    Attributes
    ----------
    path : str
        The file.
    columns : list of str
        Column names, lower case (``colN`` when the file names none).
    data : dict of str to ndarray, shape (n,)
        Columns in file order.
    header : dict of str to str
        ``key: value`` / ``key = value`` fields found in the comment lines (keys lower case).
    comments : list of str
        The comment lines, without the comment token.
    data_lines : ndarray of int, shape (n,)
        1-based line number of each data row.
    separator : str
        ``"whitespace"``, ``","``, ``"\\t"`` or ``";"``.
    decimal : str
        ``"."`` or ``","``.
    warnings : list of str
        Doubts met while reading.
    convention : str
        The header convention that named the columns (:mod:`xasml.io.headers`).
    info : HeaderInfo
        What the header says (energy units and column, d-spacing, channel roles, fields).
    scan : str or None
        SPEC files: the ``#S`` number read.
    header_lines : list of str
        The lines above the data table.
    """

    path: str
    columns: list[str]
    data: dict[str, np.ndarray]
    header: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    data_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    separator: str = "whitespace"
    decimal: str = "."
    warnings: list[str] = field(default_factory=list)
    convention: str = "none"
    info: Any = None
    scan: str | None = None
    header_lines: list[str] = field(default_factory=list)


def _split(line: str, sep: str) -> list[str]:
    if sep == "whitespace":
        return line.split()
    return [t.strip() for t in line.strip().rstrip(sep).split(sep)]


def _detect(line: str) -> tuple[str, str]:
    """(separator, decimal) of a data line."""
    s = line.strip()
    if "\t" in s:
        sep = "\t"
    elif ";" in s:
        sep = ";"
    elif "," in s:
        toks = s.split()
        if len(toks) > 1 and all(_NUM_COMMA.match(t) or _NUM.match(t) for t in toks) \
                and any(_NUM_COMMA.match(t) for t in toks):
            return "whitespace", ","
        sep = ","
    else:
        return "whitespace", "."
    toks = _split(s, sep)
    dec = "," if sep != "," and any(_NUM_COMMA.match(t) for t in toks) else "."
    return sep, dec


def _to_float(tok: str, dec: str) -> float:
    if dec == ",":
        tok = tok.replace(",", ".")
    return float(tok)


def _numbers(s: str) -> tuple[list[float], str, str] | None:
    """The values, separator and decimal mark of a stripped line of numbers; None for any other line."""
    if "," not in s and ";" not in s and "\t" not in s:
        try:
            vals = [float(t) for t in s.split()]
        except ValueError:
            return None
        return (vals, "whitespace", ".") if vals else None
    sep, dec = _detect(s)
    toks = _split(s, sep)
    if sep != "whitespace" and toks and toks[0] == "":
        toks = toks[1:]
    try:
        vals = [_to_float(t, dec) for t in toks]
    except ValueError:
        return None
    return (vals, sep, dec) if vals else None


def _is_number_line(line: str) -> bool:
    s = line.strip()
    if not s:
        return False
    sep, dec = _detect(s)
    toks = _split(s, sep)
    try:
        [_to_float(t, dec) for t in toks if t != ""]
    except ValueError:
        return False
    return bool(toks)


def _split_scans(lines: list[str]) -> tuple[list[str], list[tuple[str, int, list[tuple[int, str]]]]]:
    """SPEC files: the file header and each ``#S`` scan (its number, first line, numbered lines)."""
    head: list[str] = []
    scans: list[tuple[str, int, list[tuple[int, str]]]] = []
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("#S ") or line.startswith("#S\t"):
            num = (line[2:].split() or ["?"])[0]
            scans.append((num, lineno, []))
        if scans:
            scans[-1][2].append((lineno, line))
        else:
            head.append(line)
    return head, scans


def _first_is_number(s: str) -> bool:
    tok = s.replace(",", " ").replace(";", " ").split()
    return bool(tok) and bool(_NUM.match(tok[0]) or _NUM_COMMA.match(tok[0]))


def read_column_table(path: str | Path, scan: str | int | None = None) -> ColumnFile:
    """Parse a plain column file into named numeric columns.

    The data table is the last block of numeric lines (as xraylarch's ``read_ascii`` finds it);
    everything above it is the header, whose convention names the columns
    (:func:`xasml.io.headers.column_labels`). Comment lines inside the table are skipped. SPEC
    files with several ``#S`` scans are split and one scan is read.

    Parameters
    ----------
    path : str or Path
        The file.
    scan : str or int, optional
        SPEC files: the ``#S`` number of the scan to read (default: the last, as ``read_ascii``
        reads it, with a warning naming the others).

    Returns
    -------
    ColumnFile

    Raises
    ------
    SpectrumError
        Naming the file and line when the file is missing, binary or empty, has no data lines,
        a data line has fewer columns than the lines above it or a value that is not a number,
        or ``scan`` names no scan of the file.
    """
    from xasml.io.headers import COMMENT_CHARS, column_labels

    path = Path(path)
    src = str(path)
    text = decode_text(read_file_bytes(path, "a column file"), src, "a text column file").lstrip("\ufeff")
    if not text.strip():
        raise SpectrumError("empty file", source=src)
    lines = text.splitlines()
    msgs: list[str] = []
    numbered = list(enumerate(lines, start=1))
    scan_no = None
    file_head, scans = _split_scans(lines) if any(ln.startswith("#S") for ln in lines[:5000]) else ([], [])
    if scans:
        nums = [s[0] for s in scans]
        if scan is None:
            pick = scans[-1]
            if len(scans) > 1:
                msgs.append(f"{src}: {len(scans)} scans (#S {', '.join(nums)}): read #S {pick[0]}, the last, as "
                            "larch's read_ascii does; choose another with --scan")
        else:
            pick = next((s for s in scans if s[0] == str(scan).strip()), None)
            if pick is None:
                raise SpectrumError(f"no scan #S {scan} in the file: its scans are {', '.join(nums)}", source=src,
                                    field="scan")
        scan_no = pick[0]
        numbered = [(i + 1, ln) for i, ln in enumerate(file_head)] + pick[2]
    elif scan is not None:
        raise SpectrumError(f"--scan {scan} given but the file has no SPEC '#S' scans", source=src, field="scan")

    # the data block: the last run of numeric lines (comment lines inside it are skipped)
    run: list[tuple[int, list[float]]] = []
    start_idx = None
    sep = dec = None
    last_run: tuple[list, int | None, str | None, str | None] | None = None
    for idx, (lineno, line) in enumerate(numbered):
        s = line.strip().strip("\x1a")
        if not s or s.startswith(COMMENT_CHARS):
            continue
        got = _numbers(s)
        if got is not None:
            vals, lsep, ldec = got
            if not run:
                sep, dec = lsep, ldec
                start_idx = idx
            elif len(vals) != len(run[0][1]):
                if len(vals) > len(run[0][1]) and len(run) < 3:  # numbers in the header, then the table
                    run, start_idx = [], idx
                    sep, dec = lsep, ldec
                else:
                    raise SpectrumError(f"data line has {len(vals)} columns, expected {len(run[0][1])} like the "
                                        "first data line", source=src, line=lineno)
            run.append((lineno, vals))
            continue
        if run and _first_is_number(s):  # a data row with a value that is not a number
            toks = _split(s, sep or "whitespace")
            for j, t in enumerate(toks):
                try:
                    _to_float(t, dec or ".")
                except ValueError:
                    raise SpectrumError(f"value {t[:40]!r} in column {j + 1} is not a number", source=src,
                                        line=lineno) from None
        if run:  # text after numbers: those numbers were header lines (or this is a footer)
            last_run = (run, start_idx, sep, dec)
            run, start_idx = [], None
    footer = False
    if not run and last_run is not None:
        run, start_idx, sep, dec = last_run
        footer = True
    if not run:
        raise SpectrumError("no data lines", source=src)
    assert start_idx is not None and sep is not None and dec is not None
    end_line = run[-1][0]
    if footer:
        msgs.append(f"{src}: text after the data table (from line {end_line + 1}) ignored")
    ncol = len(run[0][1])
    rows = [vals for _, vals in run]
    arr = np.asarray(rows, dtype=float)
    header_lines = [ln for _, ln in numbered[:start_idx]]
    comments: list[str] = []
    header: dict[str, str] = {}
    for ln in header_lines:
        st = ln.strip()
        if not st:
            continue
        is_comment = st.startswith(COMMENT_CHARS)
        body = st.lstrip("#%!;*<").strip()
        if is_comment:
            comments.append(body)
        m = re.match(r"^([A-Za-z][\w.\- ]{0,40}?)\s*[:=]\s*(.+)$", body)
        if m:
            header.setdefault(m.group(1).strip().lower(), m.group(2).strip())
    info = column_labels(header_lines, ncol)
    names = info.labels
    msgs += [f"{src}: {w}" for w in info.warnings]
    return ColumnFile(path=src, columns=names, data={c: arr[:, j].copy() for j, c in enumerate(names)},
                      header=header, comments=comments, data_lines=np.asarray([r[0] for r in run], dtype=int),
                      separator=sep, decimal=dec, warnings=msgs, convention=info.convention, info=info,
                      scan=scan_no, header_lines=header_lines)


def _alias(name: str) -> str:
    a = re.sub(r"\W", "_", name)
    return a if a and not a[0].isdigit() else f"c_{a}"


def evaluate_expression(expr: str, columns: dict[str, np.ndarray], source: str | None = None) -> np.ndarray:
    """Evaluate an arithmetic expression of named columns, safely.

    The text is parsed with :func:`ast.parse` (parsing only) and evaluated by walking the tree;
    only numbers, column names (case-insensitive; names with other characters are reachable as
    their ``_``-substituted alias, e.g. ``i0_1`` for ``i0(1)``), ``+ - * / **``, unary minus and
    the functions ``ln``, ``log`` (natural), ``log10``, ``exp``, ``sqrt``, ``abs`` are allowed.

    Parameters
    ----------
    expr : str
        E.g. ``"ln(i0/it)"``, ``"if/i0"``, ``"-log(it/i0)"``, ``"mu_ref"``.
    columns : dict of str to ndarray, shape (n,)
        The channels.
    source : str, optional
        File name for error messages.

    Returns
    -------
    ndarray, shape (n,)

    Raises
    ------
    SpectrumError
        (field ``mu``) for syntax errors, unknown names or functions, or any other construct.
    """
    env = {}
    for k, v in columns.items():
        env[k.lower()] = v
        env.setdefault(_alias(k.lower()), v)
    key = expr.strip().lower()
    if key in env:
        return np.asarray(env[key], dtype=float)
    # channel names that are Python keywords ('if', 'in', ...) are renamed before parsing
    for k in list(env):
        if keyword.iskeyword(k):
            env[f"_kw_{k}"] = env[k]
    key = re.sub(r"[A-Za-z_]\w*", lambda m: f"_kw_{m.group(0)}" if keyword.iskeyword(m.group(0)) and
                 m.group(0) in env else m.group(0), key)
    if len(key) > _MAX_EXPR:
        raise SpectrumError(f"expression of {len(key)} characters: at most {_MAX_EXPR} accepted", source=source,
                            field="mu")
    try:
        tree = ast.parse(key, mode="eval")
    except (SyntaxError, MemoryError, RecursionError, ValueError):
        raise SpectrumError(f"cannot parse the expression {expr[:60]!r}", source=source, field="mu") from None
    ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in env:
                raise SpectrumError(f"unknown column {node.id[:40]!r} in {expr[:60]!r}; columns are {names_list(list(columns))}",
                                    source=source, field="mu")
            return np.asarray(env[node.id], dtype=float)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and len(node.args) == 1 and not node.keywords:
            return _FUNCS[node.func.id](ev(node.args[0]))
        raise SpectrumError(f"unsupported construct in {expr[:60]!r}: only numbers, column names, + - * / ** and "
                            f"{', '.join(_FUNCS)} are allowed", source=source, field="mu")

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        try:
            out = ev(tree)
        except RecursionError:
            raise SpectrumError(f"expression {expr[:60]!r} is nested too deeply", source=source, field="mu") from None
    if np.ndim(out) == 0:
        raise SpectrumError(f"expression {expr[:60]!r} uses no column", source=source, field="mu")
    return np.asarray(out, dtype=float)


def _column(cf: ColumnFile, spec: str | int, what: str) -> tuple[np.ndarray, str]:
    """A column by name or 1-based index (int or digit string or 'colN')."""
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit()):
        j = int(spec)
        if not 1 <= j <= len(cf.columns):
            raise SpectrumError(f"{what} column {j} out of range: the file has {len(cf.columns)} columns "
                                f"({names_list(cf.columns)}); indices count from 1", source=cf.path, field=what)
        name = cf.columns[j - 1]
        return cf.data[name], name
    return evaluate_expression(str(spec), cf.data, cf.path), str(spec)


def _header_get(cf: ColumnFile, *keys: str) -> str | None:
    for k in keys:
        if k in cf.header:
            return cf.header[k]
    return None


#: hc in eV·Å (CODATA 2018, exact: h c / e), for monochromator angles -> energies
HC_EV_ANGSTROM = 12398.419843320026
_ENERGY_PREFER = ("achieved", "readback", "rbv", "fbk", "feedback", "read", "mono")
_DSPACING_KEYS = ("mono.d_spacing", "mono.dspacing", "d_spacing", "dspacing", "d-spacing", "mono_dspace")
_E0_KEYS = ("scanparameters.e0", "e0", "edge_energy", "exafs_edge_energy", "edgeenergy", "e_edge")


def _energy_column(cf: ColumnFile, roles: dict[str, str | None]) -> str:
    """The energy (or angle) column when the user does not say."""
    names = cf.columns
    exact = [n for n in names if n in _ENERGY_NAMES]
    if exact:
        return exact[0]
    if cf.info is not None and cf.info.energy_column and 1 <= cf.info.energy_column <= len(names):
        return names[cf.info.energy_column - 1]
    ener = [n for n in names if roles.get(n) == "energy"]
    for word in _ENERGY_PREFER:
        for n in ener:
            if word in n:
                return n
    return ener[0] if ener else names[0]


def names_list(names: list[str], most: int = 24) -> str:
    """Column names for a one-line error or warning message.

    Parameters
    ----------
    names : list of str
        The column names of a file.
    most : int
        How many names to show at most.

    Returns
    -------
    str
        The names, each cut to 30 characters, joined by ``", "``; with more than ``most`` names the
        rest is summarised as ``", ... (N columns)"``.
    """
    shown = [n if len(n) <= 30 else n[:27] + "..." for n in names[:most]]
    return ", ".join(shown) + (f", ... ({len(names)} columns)" if len(names) > most else "")


def _number(text: str | None) -> float | None:
    m = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text or "")
    return float(m.group(0)) if m else None


def _dspacing(cf: ColumnFile) -> float | None:
    if cf.info is not None and cf.info.mono_dspace:
        return float(cf.info.mono_dspace)
    for k in _DSPACING_KEYS:
        v = _number(cf.header.get(k))
        if v is not None and v > 0:
            return v
    return None


def _absorber_from_file(cf: ColumnFile, absorbing_element: str | None, edge: str | None,
                        msgs: list[str]) -> tuple[str | None, str | None, str | None, str | None, float | None]:
    """(element, edge, element_source, edge_source, stated edge energy in eV) from what the file says."""
    from xasml.edges import element_edge_from_text, identify_edge

    src = cf.path
    el = ed = None
    el_src = ed_src = None
    if absorbing_element is not None:
        el, el_src = normalize_element(absorbing_element, source=src, field_name="element"), "option"
    if edge is not None:
        ed = str(edge).strip().upper()
        if ed not in KNOWN_EDGES:
            raise SpectrumError(f"unknown edge {edge!r}", source=src, field="edge")
        ed_src = "option"
    hel = _header_get(cf, "element.symbol", "element", "atsym", "absorber", "bkg_z", "scanparameters.element")
    hed = _header_get(cf, "element.edge", "edge", "fft_edge", "scanparameters.edge")
    if el is None and hel is not None:
        try:
            el, el_src = normalize_element(str(hel).split()[0], source=src, field_name="element"), "header"
        except (SpectrumError, IndexError):
            msgs.append(f"{src}: header element {hel!r} is not a chemical symbol; ignored")
    if ed is None and hed is not None:
        h = str(hed).strip().split()[0].upper() if str(hed).strip() else ""
        if h in KNOWN_EDGES:
            ed, ed_src = h, "header"
        else:
            msgs.append(f"{src}: header edge {hed!r} is not an edge name; ignored")
    if el is None or ed is None:  # a header line such as '# Cu K-edge foil', then the file name
        lines = [h.strip().lstrip("#;!%*<").strip() for h in cf.header_lines if not re.match(r"\s*#[LOPGNS]", h)]
        texts = [(h, "header") for h in lines if h and len(h) < 200 and len(h.split()) <= 12]
        for text, where in texts + [(Path(src).name, "file name")]:
            tel, ted = element_edge_from_text(text)
            if tel in ("H", "He"):  # 'H K L' diffractometer labels, not an absorber
                continue
            if tel is not None and (el is None or tel == el):
                if el is None:
                    el, el_src = tel, where
                if ed is None:
                    ed, ed_src = ted, where
                break
    stated = None
    fields = cf.info.fields if cf.info is not None else {}
    e0 = _number(fields.get("E_edge")) if fields.get("E_edge") else None
    if e0 is None:
        e0 = next((v for k in _E0_KEYS if (v := _number(cf.header.get(k))) is not None), None)
    if e0 is None:
        for c in cf.comments:
            m = re.match(r"^(?:C\s+)?(?:exafs_edge_energy|edge_energy|e0)\s+([-+0-9.eE]+)", c, re.IGNORECASE)
            if m:
                e0 = _number(m.group(1))
                break
    if e0 is not None and 0 < e0 < 200:
        e0 *= 1000.0  # keV
    if e0 is not None and e0 > 0:
        stated = e0
        if el is None or ed is None:
            try:
                fe, fed, _ = identify_edge(e0, element=el, edge=ed, tolerance=30.0)
            except ValueError:
                fe = fed = None
            if fe is not None:
                if el is None:
                    el, el_src = fe, f"header (edge energy {e0:.1f} eV)"
                if ed is None:
                    ed, ed_src = fed, f"header (edge energy {e0:.1f} eV)"
    return el, ed, el_src, ed_src, stated


def read_columns(path: str | Path, energy_col: str | int | None = None, mu: str | int | None = None,
                 absorbing_element: str | None = None, edge: str | None = None,
                 scan: str | int | None = None) -> Spectrum:
    """Read a plain or beamline column file as a :class:`~xasml.spectrum.Spectrum`.

    Parameters
    ----------
    path : str or Path
        The file (see the module docstring and :mod:`xasml.io.headers` for what is recognised).
    energy_col : str or int, optional
        Energy column: a name or a 1-based index. Default: the header convention's energy
        column, else a column named ``energy``/``e``/... or containing ``energy``, else the first.
        Units: what the header says (``keV``, monochromator angles in degrees converted with the
        header's d-spacing, :math:`E = hc / (2 d \\sin\\theta)`); values below 200 are taken as keV
        (with a warning); negative energies are relative to the edge (FDMNES output: the header's
        ``E_edge`` is added, as larch's ``read_fdmnes`` does).
    mu : str or int, optional
        μ column name, 1-based index, or expression of the channels (``ln(i0/it)``, ``if/i0``).
        Default: :func:`xasml.io.channels.choose_mu` (the channel vocabulary, flat channels passed
        over); a two-column file takes its second column.
    absorbing_element, edge : str, optional
        Override what the file says. Otherwise the header (``Element.symbol``/``Element.edge``
        and the like, a header line such as ``Cu K-edge``), the file name (``Fe_K``,
        ``sno2_l3``), the header's edge energy (``E0``, ``E_edge``), and last the data
        (xraydb's edge table at the measured e0, with a warning).
    scan : str or int, optional
        SPEC files with several ``#S`` scans: the scan number; HDF5/NeXus files
        (:mod:`xasml.io.nexus`, read here too): the entry name or 1-based position. Default the last.

    Returns
    -------
    Spectrum
        ``metadata``: ``format`` ("columns"), ``convention``, ``columns``, ``roles``,
        ``energy_source``, ``mu_source``, ``mu_mode``, ``mu_reason``, ``element_source``,
        ``edge_source``, ``reference_source`` (when μ was chosen here: the reference channel with
        an edge, or None), ``scan``, ``header``, ``separator``, ``decimal``,
        ``channels`` (all columns, for calibration with a reference channel) and ``warnings``.

    Raises
    ------
    SpectrumError
        Everything :func:`read_column_table` raises; χ(k) and derivative files (which are not
        μ(E)); angles without a d-spacing; relative energies without an edge energy; unknown
        columns, unsafe or invalid expressions, μ not finite, no channel with an edge, too few
        points, or an absorber that cannot be identified.
    """
    from xasml.edges import identify_edge
    from xasml.io.channels import channel_role, choose_mu
    from xasml.edges import find_e0

    from xasml.io.nexus import is_hdf5, read_nexus_table

    cf = read_nexus_table(path, scan=scan) if is_hdf5(path) else read_column_table(path, scan=scan)
    src = cf.path
    msgs = cf.warnings
    names = cf.columns
    roles: dict[str, str | None] = {c: channel_role(c) for c in names}
    roles.update(cf.info.roles if cf.info is not None else {})
    present = {r for r in roles.values() if r}
    if mu is None and {"k", "chi"} <= present and "energy" not in present:
        raise SpectrumError(f"a chi(k) file (columns {names_list(names)}): EXAFS chi(k), not mu(E); xasml reads mu(E) "
                            "spectra: read the mu(E) file it was made from", source=src, field="mu")
    if mu is None and "deriv" in present and not present & {"mu", "i0", "norm"}:
        raise SpectrumError(f"a derivative export (columns {names_list(names)}): d mu/dE, not mu(E); read the mu(E) "
                            "file it was made from, or give --mu", source=src, field="mu")
    if energy_col is None:
        ename = _energy_column(cf, roles)
        energy = cf.data[ename]
    else:
        energy, ename = _column(cf, energy_col, "energy")
    energy = np.asarray(energy, dtype=float)
    el, ed, el_src, ed_src, stated_e0 = _absorber_from_file(cf, absorbing_element, edge, msgs)
    units = cf.info.energy_units if (cf.info is not None and energy_col is None) else None
    looks_angle = bool(re.search(r"angle|theta|bragg", ename)) and np.nanmax(np.abs(energy)) < 90
    if units == "deg" or (units is None and looks_angle):
        d = _dspacing(cf)
        if d is None:
            raise SpectrumError(f"column {ename[:40]!r} holds monochromator angles (degrees) and the header gives no "
                                "d-spacing to convert them to energies; give the energy column (--energy-col) "
                                "of a file that has one", source=src, field="energy")
        with np.errstate(all="ignore"):
            energy = HC_EV_ANGSTROM / (2.0 * d * np.sin(np.radians(energy)))
        energy_source = f"{ename} (monochromator angle, deg; E = hc/(2 d sin theta), d = {d:g} A)"
    elif units == "keV" or (units is None and np.nanmin(energy) > 0 and np.nanmedian(energy) < 200):
        energy = energy * 1000.0
        energy_source = f"{ename} (keV{' per the header' if units == 'keV' else ', inferred'})"
        if units != "keV":
            msgs.append(f"{src}: energy column {ename[:40]!r} has values below 200: taken as keV")
    elif np.nanmin(energy) < 0:
        fields = cf.info.fields if cf.info is not None else {}
        e_edge = _number(fields.get("E_edge")) if fields.get("E_edge") else None
        what = "FDMNES output" if cf.convention == "fdmnes" else "energies"
        if e_edge is None and el is not None and ed is not None and el_src == "option":
            from xasml.edges import edge_energy

            e_edge = edge_energy(el, ed)
        if e_edge is None:
            raise SpectrumError(f"{what} from {np.nanmin(energy):.1f} to {np.nanmax(energy):.1f} eV: relative to the "
                                "edge, not absolute, and the file gives no edge energy; give --element and --edge to "
                                "place them at the tabulated edge", source=src, field="energy")
        energy = energy + e_edge
        energy_source = f"{ename} (eV relative to the edge) + {e_edge:.1f} eV"
        msgs.append(f"{src}: {what} on an energy scale relative to the edge: {e_edge:.1f} eV added "
                    f"({'FDMNES E_edge, as larch read_fdmnes' if cf.convention == 'fdmnes' else 'tabulated edge'}); "
                    "a computed or shifted spectrum, not a calibrated measurement")
    else:
        energy_source = f"{ename} (eV)"
    mu_mode, mu_reason, ref_src = "option", "given with --mu", None
    if mu is None:
        other = {c: cf.data[c] for c in names if c != ename}
        try:
            choice = choose_mu(names, cf.data, energy, {c: r for c, r in roles.items() if c != ename and r}, el, src)
        except SpectrumError:
            raise
        if choice is not None:
            mu_src, mu_mode, mu_reason, ref_src = choice.expression, choice.mode, choice.reason, choice.reference
            if choice.mode == "reference":
                msgs.append(f"{src}: no sample channel shows an absorption edge; mu is the reference channel "
                            f"{mu_src} (see mu_reason)")
        elif len(other) == 1:
            mu_src = next(iter(other))
            mu_mode, mu_reason = "only-column", "the only column besides the energy"
        else:
            raise SpectrumError(f"which column is mu? no channel name says (no i0 with it/if, no mu/xmu); columns are "
                                f"{names_list(names)}: give --mu (a name, a 1-based index or an expression such as "
                                "ln(i0/it))", source=src, field="mu")
        mu_arr = evaluate_expression(mu_src, cf.data, src)
    else:
        mu_arr, mu_src = _column(cf, mu, "mu")
    mu_arr = np.asarray(mu_arr, dtype=float)
    lines = cf.data_lines
    bad = np.flatnonzero(~np.isfinite(mu_arr))
    if bad.size:
        raise SpectrumError(f"mu = {mu_src[:80]} is not finite at {bad.size} point(s) (zero or negative intensity?)",
                            source=src, line=int(lines[bad[0]]), field="mu")
    if energy.size < 5:
        raise SpectrumError(f"only {energy.size} data points", source=src, field="energy")
    if not np.all(np.isfinite(energy)):
        raise SpectrumError(f"energy column {ename[:40]!r} holds non-finite values (inf or nan); expected energies in eV",
                            source=src, line=int(lines[np.flatnonzero(~np.isfinite(energy))[0]]), field="energy")
    chans = {k: v for k, v in cf.data.items()}
    step = np.diff(energy)
    if np.all(step < 0):
        energy, mu_arr, lines = energy[::-1], mu_arr[::-1], lines[::-1]
        chans = {k: v[::-1] for k, v in chans.items()}
    elif np.any(step <= 0):
        order = np.argsort(energy, kind="stable")
        energy, mu_arr, lines = energy[order], mu_arr[order], lines[order]
        chans = {k: v[order] for k, v in chans.items()}
        keep = np.concatenate(([True], np.diff(energy) > 0))
        ndup = int((~keep).sum())
        energy, mu_arr, lines = energy[keep], mu_arr[keep], lines[keep]
        chans = {k: v[keep] for k, v in chans.items()}
        msgs.append(f"{src}: energies not increasing: points sorted by energy"
                    f"{f', {ndup} repeated energies dropped' if ndup else ''}")
    if el is None or ed is None:
        e0 = find_e0(energy, mu_arr)
        try:
            fe, fed, tab = identify_edge(e0, element=el, edge=ed)
        except ValueError as exc:
            raise SpectrumError(f"the file does not say which element and edge, and the edge at e0 = {e0:.1f} eV "
                                f"could not be identified ({exc}); give --element/--edge", source=src,
                                field="element") from None
        if el is None:
            msgs.append(f"{src}: absorber identified from the data as {fe} {fed} (tabulated {tab:.1f} eV, measured "
                        f"e0 = {e0:.1f} eV); give --element/--edge to override")
            el_src = "data"
        ed_src = ed_src if ed is not None else "data"
        el, ed = fe, fed
    meta = {"format": "columns", "convention": cf.convention, "columns": names,
            "roles": {c: r for c, r in roles.items() if r}, "energy_source": energy_source, "mu_source": mu_src,
            "mu_mode": mu_mode, "mu_reason": mu_reason, "element_source": el_src, "edge_source": ed_src,
            "scan": cf.scan, "header": dict(cf.header), "separator": cf.separator,
            "decimal": cf.decimal, "channels": chans, "comments": cf.comments, "warnings": list(msgs)}
    if stated_e0 is not None:
        meta["stated_e0"] = stated_e0
    if mu is None:  # the reference channel the mu choice found with an edge (None: none has one)
        meta["reference_source"] = ref_src
    kind = "norm" if mu_mode == "normalized" else "mu"
    return Spectrum(energy=energy, mu=mu_arr, absorbing_element=el, edge=ed, source=src, kind=kind,
                    material_id=_header_get(cf, "sample.name", "sample", "label", "title"), metadata=meta)
