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

import numpy as np

from xasml.errors import SpectrumError
from xasml.io.files import decode_text, read_file_bytes
from xasml.spectrum import KNOWN_EDGES, Spectrum, normalize_element

__all__ = ["ColumnFile", "read_column_table", "read_columns", "evaluate_expression", "MU_COLUMNS"]

_COMMENT = ("#", "%", "!")
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


def _clean_name(name: str) -> str:
    return name.strip().strip("\"'").lower()


def read_column_table(path: str | Path) -> ColumnFile:
    """Parse a plain column file into named numeric columns.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    ColumnFile

    Raises
    ------
    SpectrumError
        Naming the file and line when the file is missing, binary or empty, has no data lines,
        a data line has a different number of columns than the first or a value that is not a
        number.
    """
    path = Path(path)
    src = str(path)
    text = decode_text(read_file_bytes(path, "a column file"), src, "a text column file").lstrip("\ufeff")
    lines = text.splitlines()
    if not text.strip():
        raise SpectrumError("empty file", source=src)
    comments: list[str] = []
    header: dict[str, str] = {}
    msgs: list[str] = []
    label_tokens: list[str] | None = None
    names_row: list[str] | None = None
    rows: list[list[float]] = []
    row_lines: list[int] = []
    sep = dec = None
    ncol = None
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith(_COMMENT):
            body = s.lstrip("#%!").strip()
            if rows:
                continue  # comments inside the data are ignored
            comments.append(body)
            m = re.match(r"^([A-Za-z][\w.\- ]{0,40}?)\s*[:=]\s*(.+)$", body)
            if m:
                header[m.group(1).strip().lower()] = m.group(2).strip()
            if body and not re.fullmatch(r"[-=/*#~ ]+", body):
                label_tokens = [body]
            continue
        if sep is None:
            if not _is_number_line(s):
                if names_row is None and not rows:
                    sp, _ = _detect(s) if any(c in s for c in ",;\t") else ("whitespace", ".")
                    names_row = [t for t in _split(s, sp)]
                    continue
                raise SpectrumError(f"non-numeric line {s[:50]!r} before the data", source=src, line=lineno)
            sep, dec = _detect(s)
        toks = [t for t in _split(s, sep)]
        if sep != "whitespace":
            toks = [t for t in toks if t != ""] if ncol is None else toks
        if ncol is None:
            ncol = len(toks)
        if len(toks) != ncol:
            raise SpectrumError(f"data line has {len(toks)} columns, expected {ncol} like the first data line",
                                source=src, line=lineno)
        vals = []
        for j, t in enumerate(toks):
            try:
                v = _to_float(t, dec)
            except ValueError:
                raise SpectrumError(f"value {t[:40]!r} in column {j + 1} is not a number", source=src,
                                    line=lineno) from None
            vals.append(v)
        rows.append(vals)
        row_lines.append(lineno)
    if not rows:
        raise SpectrumError("no data lines", source=src)
    assert ncol is not None
    arr = np.asarray(rows, dtype=float)
    names: list[str]
    if names_row is not None and len(names_row) == ncol:
        names = [_clean_name(n) for n in names_row]
    elif label_tokens is not None and (lab := _label_split(label_tokens[0], sep or "whitespace", ncol)):
        names = [_clean_name(n) for n in lab]
    else:
        xdi_cols = {int(k.split(".")[1]): v.split()[0] for k, v in header.items()
                    if re.fullmatch(r"column\.\d+", k) and v.split()}
        if xdi_cols and max(xdi_cols) <= ncol:
            names = [_clean_name(xdi_cols.get(j + 1, f"col{j + 1}")) for j in range(ncol)]
        else:
            names = [f"col{j + 1}" for j in range(ncol)]
            if names_row is not None or label_tokens is not None:
                msgs.append(f"{src}: column names found do not match the {ncol} data columns; named col1..col{ncol}")
    seen: dict[str, int] = {}
    uniq = []
    for nm in names:
        nm = nm or "col"
        if nm in seen:
            seen[nm] += 1
            nm = f"{nm}_{seen[nm]}"
        else:
            seen[nm] = 1
        uniq.append(nm)
    return ColumnFile(path=src, columns=uniq, data={c: arr[:, j].copy() for j, c in enumerate(uniq)},
                      header=header, comments=comments, data_lines=np.asarray(row_lines, dtype=int),
                      separator=sep or "whitespace", decimal=dec or ".", warnings=msgs)


def _label_split(body: str, sep: str, ncol: int) -> list[str] | None:
    """Column names from the last comment line, split like the data (or on whitespace), if they fit."""
    for cand in (body.split(), _split(body, sep) if sep != "whitespace" else None):
        if cand and len(cand) == ncol and not all(_NUM.match(t) for t in cand):
            return cand
    return None


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
                raise SpectrumError(f"unknown column {node.id[:40]!r} in {expr[:60]!r}; columns are {', '.join(columns)}",
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
                                f"({', '.join(cf.columns)}); indices count from 1", source=cf.path, field=what)
        name = cf.columns[j - 1]
        return cf.data[name], name
    return evaluate_expression(str(spec), cf.data, cf.path), str(spec)


def _header_get(cf: ColumnFile, *keys: str) -> str | None:
    for k in keys:
        if k in cf.header:
            return cf.header[k]
    return None


def read_columns(path: str | Path, energy_col: str | int | None = None, mu: str | int | None = None,
                 absorbing_element: str | None = None, edge: str | None = None) -> Spectrum:
    """Read a plain column file as a :class:`~xasml.spectrum.Spectrum`.

    Parameters
    ----------
    path : str or Path
        The file (see the module docstring for what is recognised).
    energy_col : str or int, optional
        Energy column: a name or a 1-based index. Default: a column named ``energy``/``e``/...,
        else the first column. Values below 200 are taken as keV (with a warning).
    mu : str or int, optional
        μ column name, 1-based index, or expression of the channels (``ln(i0/it)``, ``if/i0``).
        Default: the first of :data:`MU_COLUMNS` present; else ln(i0/it) (``it``, ``itrans``,
        ``i1``) or if/i0 (``if``, ``ifluor``); else the second column of a two-column file.
    absorbing_element, edge : str, optional
        Override what the header says. When neither is given nor in the header, the absorber
        is identified from the measured e0 and the xraydb edge table, with a warning.

    Returns
    -------
    Spectrum
        ``metadata``: ``format`` ("columns"), ``columns``, ``energy_source``, ``mu_source``,
        ``header``, ``separator``, ``decimal``, ``channels`` (all columns, for calibration with
        a reference channel) and ``warnings``.

    Raises
    ------
    SpectrumError
        Everything :func:`read_column_table` raises; unknown columns, unsafe or invalid
        expressions, μ not finite, too few points, or an absorber that cannot be identified.
    """
    from xasml.edges import identify_edge
    from xasml.preprocess.normalize import find_e0

    cf = read_column_table(path)
    src = cf.path
    msgs = cf.warnings
    names = cf.columns
    if energy_col is None:
        ename = next((n for n in names if n in _ENERGY_NAMES), names[0])
        energy, ename = cf.data[ename], ename
    else:
        energy, ename = _column(cf, energy_col, "energy")
    if mu is None:
        low = {n: n for n in names}
        pick = next((n for n in MU_COLUMNS if n in low and n != ename), None)
        if pick is not None:
            mu_arr, mu_src = cf.data[pick], pick
        else:
            i0 = next((n for n in ("i0", "io", "i_0") if n in low), None)
            it = next((n for n in ("it", "itrans", "i1", "i_t") if n in low), None)
            fl = next((n for n in ("if", "ifluor", "ifl", "fluo", "fluor") if n in low), None)
            if i0 and it:
                mu_src = f"ln({i0}/{it})"
            elif i0 and fl:
                mu_src = f"{fl}/{i0}"
            elif len(names) == 2:
                mu_src = names[1] if names[0] == ename else names[0]
            else:
                raise SpectrumError(f"which column is mu? none of {', '.join(MU_COLUMNS[:6])}, ... and no i0 with "
                                    f"it/if; columns are {', '.join(names)}: give mu (a name, a 1-based index or "
                                    "an expression such as ln(i0/it))", source=src, field="mu")
            mu_arr = evaluate_expression(mu_src, cf.data, src)
    else:
        mu_arr, mu_src = _column(cf, mu, "mu")
    energy = np.asarray(energy, dtype=float)
    mu_arr = np.asarray(mu_arr, dtype=float)
    lines = cf.data_lines
    bad = np.flatnonzero(~np.isfinite(mu_arr))
    if bad.size:
        raise SpectrumError(f"mu = {mu_src} is not finite at {bad.size} point(s) (zero or negative intensity?)",
                            source=src, line=int(lines[bad[0]]), field="mu")
    if energy.size < 5:
        raise SpectrumError(f"only {energy.size} data points", source=src, field="energy")
    energy_source = f"{ename} (eV)"
    if np.nanmedian(energy) < 200:
        energy = energy * 1000.0
        energy_source = f"{ename} (keV, inferred)"
        msgs.append(f"{src}: energy column {ename!r} has values below 200: taken as keV")
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
    el = absorbing_element or _header_get(cf, "element.symbol", "element", "atsym", "absorber", "bkg_z")
    ed = edge or _header_get(cf, "element.edge", "edge", "fft_edge")
    if el is not None:
        try:
            el = normalize_element(str(el).split()[0], source=src, field_name="element")
        except SpectrumError:
            if absorbing_element is not None:
                raise
            msgs.append(f"{src}: header element {el!r} is not a chemical symbol; ignored")
            el = None
    if ed is not None:
        ed = str(ed).strip().split()[0].upper() if str(ed).strip() else None
        if ed not in KNOWN_EDGES:
            if edge is not None:
                raise SpectrumError(f"unknown edge {edge!r}", source=src, field="edge")
            msgs.append(f"{src}: header edge {ed!r} is not an edge name; ignored")
            ed = None
    if el is None or ed is None:
        e0 = find_e0(energy, mu_arr)
        try:
            fe, fed, tab = identify_edge(e0, element=el, edge=ed)
        except ValueError as exc:
            raise SpectrumError(f"the file does not say which element and edge, and the edge at e0 = {e0:.1f} eV "
                                f"could not be identified ({exc}); give --element/--edge", source=src,
                                field="element") from None
        msgs.append(f"{src}: absorber identified from the data as {fe} {fed} (tabulated {tab:.1f} eV, measured "
                    f"e0 = {e0:.1f} eV); give --element/--edge to override")
        el, ed = fe, fed
    meta = {"format": "columns", "columns": names, "energy_source": energy_source, "mu_source": mu_src,
            "header": dict(cf.header), "separator": cf.separator, "decimal": cf.decimal,
            "channels": chans, "comments": cf.comments, "warnings": list(msgs)}
    return Spectrum(energy=energy, mu=mu_arr, absorbing_element=el, edge=ed, source=src, kind="mu",
                    material_id=_header_get(cf, "sample.name", "sample", "label", "title"), metadata=meta)
