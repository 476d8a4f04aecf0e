"""Reader for Athena project files (``.prj``), read as data — nothing in the file is executed.

Athena (Demeter; B. Ravel & M. Newville, J. Synchrotron Rad. 12, 537 (2005)) keeps a user's
spectra in a project file, gzipped or plain, in one of two layouts:

* **Perl dump** (every Athena version): one block per group::

      $old_group = 'weai';
      @args = ('bkg_e0','8977.58','label','cu010k.dat','bkg_z','Cu','fft_edge','K', ...);
      @x = ('8786.204','8796.258', ...);          energies, eV
      @y = ('1.013661','0.9949864', ...);         mu(E) (or chi(k) for chi groups)
      @i0 = (...); @signal = (...); @stddev = (...);   optional channels
      [record]   # create object and set arrays in ifeffit

  followed by ``@journal``, ``%plot_features``, ``@indicator``, ``%lcf_data`` (ignored). The
  values are Perl literals: quoted strings, numbers, ``undef``, ``[...]`` lists and ``{...}``
  hashes; a file may also hold Perl code (``danger.prj`` has ``system("...")``), which is
  never run: only the literal blocks above are parsed, by a small tokenizer.
* **JSON** (Demeter ≥ 0.9.26): ``{"_____header1": ..., "<id>": {"args": {...}, "x": [...],
  "y": [...], "i0": [...], "signal": [...]}, "_____order": "['id', ...]"}``.

As xraylarch's ``read_athena`` (the reference for a correct read), energies are sorted and
repeated energies nudged by 0.5 meV, and the stored Athena parameters are kept: ``bkg_e0`` (e0),
``bkg_pre1``/``bkg_pre2``, ``bkg_nor1``/``bkg_nor2``, ``bkg_nnorm``, ``bkg_z`` (element),
``fft_edge`` (edge), ``bkg_eshift``, ``label`` and ``reference`` (the partner group that holds
the reference channel measured with the sample).
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import SpectrumError
from xasml.io.files import decode_text, read_file_bytes
from xasml.spectrum import Spectrum, normalize_element
from xasml.utils import is_number

__all__ = ["AthenaGroup", "AthenaProject", "AthenaFailure", "AthenaSpectra", "AthenaWarning", "read_athena_project",
           "read_athena", "is_athena_project"]

#: smallest energy step kept (eV); repeated energies are moved up by this, as larch does
TINY_ENERGY = 0.0005
_ARRAYS = ("x", "y", "i0", "signal", "stddev")
_MAX_DEPTH = 50  # nesting of Perl lists accepted (Athena writes 2)
_TOKEN = re.compile(r"""\s*(?:
    '(?P<sq>(?:[^'\\]|\\.)*)'            # single-quoted string
  | "(?P<dq>(?:[^"\\]|\\.)*)"            # double-quoted string
  | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
  | (?P<op>=>|[,\[\]{}()])
  | (?P<word>[A-Za-z_][\w:]*)
)""", re.VERBOSE | re.DOTALL)


class AthenaWarning(UserWarning):
    """An Athena project was read, but something in it is doubtful (recorded in ``warnings``)."""


@dataclass
class AthenaGroup:
    """One data group of an Athena project.

    Attributes
    ----------
    name : str
        Athena's internal group id (``$old_group``), e.g. ``"weai"``.
    label : str
        The user's label for the group (``args['label']``), as stored (leading spaces kept).
    energy : ndarray, shape (n,)
        Energies in eV (``@x``), sorted, repeated values moved up by 0.5 meV (larch); for
        chi groups the wavenumber k in 1/Å.
    mu : ndarray, shape (n,)
        ``@y``: μ(E) for xmu groups (χ(k) for chi groups).
    i0, signal, stddev : ndarray of shape (n,) or None
        The stored channels, when present.
    args : dict
        Every stored Athena parameter (``bkg_*``, ``fft_*``, ``is_*``, ...), values as parsed.
    line : int or None
        Line of the ``$old_group`` statement (Perl layout).
    warnings : list of str
        Doubts about this group (also in the project's ``warnings``).
    """

    name: str
    label: str
    energy: np.ndarray = field(repr=False)
    mu: np.ndarray = field(repr=False)
    i0: np.ndarray | None = field(default=None, repr=False)
    signal: np.ndarray | None = field(default=None, repr=False)
    stddev: np.ndarray | None = field(default=None, repr=False)
    args: dict[str, Any] = field(default_factory=dict, repr=False)
    line: int | None = None
    warnings: list[str] = field(default_factory=list, repr=False)

    def _num(self, key: str) -> float | None:
        v = self.args.get(key)
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        return f if np.isfinite(f) else None

    @property
    def e0(self) -> float | None:
        """Athena's e0 (``bkg_e0``), eV."""
        return self._num("bkg_e0")

    @property
    def pre1(self) -> float | None:
        """Pre-edge range start (``bkg_pre1``), eV relative to e0."""
        return self._num("bkg_pre1")

    @property
    def pre2(self) -> float | None:
        """Pre-edge range end (``bkg_pre2``), eV relative to e0."""
        return self._num("bkg_pre2")

    @property
    def norm1(self) -> float | None:
        """Post-edge range start (``bkg_nor1``), eV relative to e0."""
        return self._num("bkg_nor1")

    @property
    def norm2(self) -> float | None:
        """Post-edge range end (``bkg_nor2``), eV relative to e0."""
        return self._num("bkg_nor2")

    @property
    def nnorm(self) -> int | None:
        """Post-edge polynomial: Athena stores the number of terms (``bkg_nnorm``, 1–3); this is
        the degree (terms − 1), larch's ``nnorm``."""
        v = self._num("bkg_nnorm")
        return None if v is None else max(int(v) - 1, 0)

    @property
    def eshift(self) -> float:
        """Energy shift Athena applies on display (``bkg_eshift``), eV; 0 when absent."""
        return self._num("bkg_eshift") or 0.0

    @property
    def element(self) -> str | None:
        """Absorbing element (``bkg_z``) as stored."""
        v = self.args.get("bkg_z")
        return str(v).strip() if v not in (None, "") else None

    @property
    def edge(self) -> str | None:
        """Edge (``fft_edge``), upper case."""
        v = self.args.get("fft_edge")
        return str(v).strip().upper() if v not in (None, "") else None

    @property
    def reference(self) -> str | None:
        """Id of the group holding this group's reference channel (``args['reference']``, Demeter's
        ``referencegroup``)."""
        for key in ("reference", "referencegroup"):
            v = self.args.get(key)
            if v not in (None, "", 0, "0"):
                return str(v)
        return None

    @property
    def is_xmu(self) -> bool:
        """True for μ(E) groups (larch's test: ``is_xmu`` and none of chi/xmudat/bkg/diff/pixel/rsp)."""
        def flag(k, default=0):
            try:
                return bool(int(float(self.args.get(k, default))))
            except (TypeError, ValueError):
                return bool(default)
        ok = flag("is_xmu", 1) and not flag("is_chi")
        return ok and not any(flag(k) for k in ("is_xmudat", "is_bkg", "is_diff", "is_pixel", "is_rsp"))

    @property
    def is_reference_channel(self) -> bool:
        """True when this group is the reference channel of another (Athena labels it ``Ref ...``)."""
        return bool(re.match(r"\s*ref\b", self.label, re.IGNORECASE))


@dataclass
class AthenaProject:
    """All groups of an Athena project file.

    Attributes
    ----------
    path : str
        The file.
    layout : {"perl", "json"}
        Which of the two project layouts the file uses.
    header : list of str
        The ``#`` header lines (Athena/Demeter version, date).
    groups : list of AthenaGroup
        In file order.
    warnings : list of str
        Everything doubtful met while reading.
    failed : list of AthenaFailure
        The groups that could not be read, each with its reason.
    """

    path: str
    layout: str
    header: list[str]
    groups: list[AthenaGroup]
    warnings: list[str] = field(default_factory=list)
    failed: list["AthenaFailure"] = field(default_factory=list)

    def group(self, key: str) -> AthenaGroup:
        """The group with this id or label (labels compared without surrounding spaces)."""
        for g in self.groups:
            if g.name == key or g.label.strip() == key.strip():
                return g
        raise KeyError(f"{self.path}: no group {key!r}; groups are {[g.label for g in self.groups]}")

    def reference_of(self, g: AthenaGroup) -> AthenaGroup | None:
        """The reference-channel group paired with ``g`` (None if ``g`` has none or is one itself)."""
        if g.is_reference_channel or g.reference is None:
            return None
        for other in self.groups:
            if other.name == g.reference and other is not g:
                return other
        return None


def _read_text(path: Path) -> str:
    src = str(path)
    raw = read_file_bytes(path, "an Athena project file")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: damage past the gzip header
            raise SpectrumError(f"gzip data is corrupt: {exc}", source=src) from None
    return decode_text(raw, src, "an Athena project (text or gzipped text)")


def is_athena_project(head: str) -> bool:
    """Whether text looks like the start of an Athena project (Demeter's two layouts).

    Parameters
    ----------
    head : str
        The first few hundred characters of the (decompressed) file.

    Returns
    -------
    bool
        True for ``# Athena project file`` (Perl dump) or a JSON object with ``_____header`` keys.
    """
    h = head.lstrip("\ufeff").lstrip()
    return (h.startswith("# Athena project file") or "Athena project file -- " in h[:500]
            or ('"_____header' in h[:400] and h.startswith("{")))


_HEX = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


def _hex_char(m: re.Match) -> str:
    code = int(m.group(1), 16)
    return chr(code) if code < 0x110000 else m.group(0)


def _unescape(s: str, double: bool) -> str:
    """A Perl string literal's value; ``\\x{e4}`` (how Perl dumps non-ASCII) is the character, and line
    breaks and tabs inside are spaces (as larch reads labels)."""
    s = _HEX.sub(_hex_char, s)
    if not double:
        s = s.replace("\\\\", "\0").replace("\\'", "'").replace("\0", "\\")
    else:
        s = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s, flags=re.DOTALL)
    return s.translate(_BLANKS)


_BLANKS = str.maketrans({"\r": " ", "\n": " ", "\t": " "})


def _parse_perl_value(text: str, src: str, line: int) -> Any:
    """Parse a Perl literal list ``( ... )`` / ``[ ... ]`` / ``{ ... }`` into Python data.

    Only literals are accepted: strings, numbers, ``undef``, nested lists and hashes. A bareword
    (a function call such as ``system`` or ``bless``) raises, so nothing is ever executed.
    """
    tokens = []
    pos = 0
    text = text.rstrip().rstrip(";").rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise SpectrumError(f"cannot parse {text[pos:pos + 30]!r}: expected a Perl literal list",
                                source=src, line=line)
        pos = m.end()
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
    i = 0
    depth = 0

    def value():
        nonlocal i, depth
        if i >= len(tokens):
            raise SpectrumError("unexpected end of a Perl list", source=src, line=line)
        kind, tok = tokens[i]
        i += 1
        if kind == "sq":
            return _unescape(tok, False)
        if kind == "dq":
            return _unescape(tok, True)
        if kind == "num":
            if any(c in tok for c in ".eE") or len(tok) > 18:  # (Python refuses int() of > 4300 digits)
                return float(tok)
            return int(tok)
        if kind == "word":
            if tok == "undef":
                return None
            if i < len(tokens) and tokens[i][1] == "=>":  # a bareword hash key ({bkg_z => 'Fe'})
                return tok
            raise SpectrumError(f"Perl code {tok[:40]!r} where a value was expected (not executed)",
                                source=src, line=line)
        if tok in "([{":
            depth += 1
            if depth > _MAX_DEPTH:
                raise SpectrumError(f"Perl list nested more than {_MAX_DEPTH} levels deep", source=src, line=line)
            close = {"(": ")", "[": "]", "{": "}"}[tok]
            items = []
            while True:
                if i >= len(tokens):
                    raise SpectrumError(f"unclosed {tok!r} in a Perl list", source=src, line=line)
                if tokens[i][1] == close:
                    i += 1
                    break
                items.append(value())
                if i < len(tokens) and tokens[i][1] in (",", "=>"):
                    i += 1
            depth -= 1
            if tok == "{":
                return {str(items[k]): items[k + 1] for k in range(0, len(items) - 1, 2)}
            return items
        raise SpectrumError(f"unexpected {tok[:40]!r} in a Perl list", source=src, line=line)

    out = value()
    return out


def _floats(values: Any, what: str, src: str, line: int | None) -> np.ndarray:
    if isinstance(values, (int, float, str)) and not isinstance(values, bool):
        values = [values]  # '@stddev = 0.1;' (a scalar where a list belongs)
    if not isinstance(values, list):
        raise SpectrumError(f"@{what} is not a list of numbers", source=src, line=line, field=what)
    try:
        arr = np.array([float(v) for v in values], dtype=float)
    except (TypeError, ValueError, OverflowError):
        bad = next((v for v in values if not is_number(v)), values[0] if values else None)
        raise SpectrumError(f"@{what} holds {str(bad)[:40]!r}, expected numbers", source=src, line=line,
                            field=what) from None
    return arr


#: the arrays a group needs; the others (i0, signal, stddev) are dropped with a warning when unreadable
_NEEDED = ("x", "y")
_STATEMENT = re.compile(r"^([$@%])(\w+)\s*=\s*(.*)$", re.DOTALL)
#: lines a statement may continue over (a string literal with a line break in it)
_MAX_CONTINUATION = 1_000_000  # (it also stops at the next statement)


def _statements(text: str):
    """(line number, statement) of a Perl dump: one per line, except that an assignment whose line does
    not end with ``;`` continues on the next lines (a string literal with a line break inside). Lines
    are split at ``\\n`` only (a carriage return or form feed inside a label is not a line break)."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        start = i + 1
        i += 1
        if _STATEMENT.match(s) and not s.endswith(";"):
            parts = [s]
            j = i
            while j < len(lines) and j - i < _MAX_CONTINUATION:
                nxt = lines[j].strip()
                if _STATEMENT.match(nxt) or nxt.startswith("[record]"):
                    break
                parts.append(lines[j])
                j += 1
                if nxt.endswith(";"):
                    s, i = "\n".join(parts), j
                    break
        yield start, s


def _parse_perl(text: str, src: str, msgs: list[str]) -> tuple[list[str], list[dict]]:
    """Header lines and one raw dict per group (``name``, ``line``, ``args``, arrays; ``error`` for a
    group whose ``@args``/``@x``/``@y`` cannot be read: the other groups are unaffected)."""
    header: list[str] = []
    raw: list[dict] = []
    cur: dict[str, Any] = {}
    for lineno, s in _statements(text):
        if not s:
            continue
        if s.startswith("#"):
            if not raw and not cur:
                header.append(s)
            continue
        if s.startswith("[record]"):
            if cur:
                raw.append(cur)
            cur = {}
            continue
        m = _STATEMENT.match(s)
        if not m:
            continue  # '1;' and anything else that is not an assignment
        sigil, key, rhs = m.groups()
        try:
            if key == "old_group":
                if cur:
                    msgs.append(f"{src}, line {lineno}: group without a [record] line before it; kept")
                    raw.append(cur)
                cur = {"line": lineno}
                cur["name"] = str(_parse_perl_value(rhs, src, lineno))
            elif key == "args":
                cur.setdefault("line", lineno)
                vals = _parse_perl_value(rhs, src, lineno)
                if isinstance(vals, dict):
                    vals = [x for kv in vals.items() for x in kv]
                if not isinstance(vals, list):
                    raise SpectrumError("@args is not a list", source=src, line=lineno, field="args")
                cur["args"] = {str(vals[k]): vals[k + 1] for k in range(0, len(vals) - 1, 2)}
            elif key in _ARRAYS and sigil == "@":
                cur.setdefault("line", lineno)
                try:
                    cur[key] = _floats(_parse_perl_value(rhs, src, lineno), key, src, lineno)
                except SpectrumError as exc:
                    if key in _NEEDED:
                        raise
                    cur.setdefault("channel_warnings", []).append(f"line {lineno}: {exc.message}; channel ignored")
            # $xdi, @journal, %plot_features, @indicator, %lcf_data: not needed, never evaluated
        except SpectrumError as exc:
            cur.setdefault("error", exc)
    if cur and ("x" in cur or "error" in cur):
        msgs.append(f"{src}: last group has no [record] line; kept")
        raw.append(cur)
    return header, raw


def _parse_json(text: str, src: str) -> tuple[list[str], list[dict]]:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpectrumError(f"invalid JSON Athena project: {exc.msg}", source=src, line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise SpectrumError(f"invalid JSON Athena project: {str(exc)[:80]}", source=src) from None
    if not isinstance(d, dict):
        raise SpectrumError("JSON Athena project must be an object", source=src)
    header = [str(v) for k, v in d.items() if k.startswith("_____header")]
    names = [k for k in d if not k.startswith("_____")]
    order = d.get("_____order")
    if isinstance(order, str):
        try:
            order = _parse_perl_value(order, src, 0)
        except SpectrumError:
            order = None
    if isinstance(order, list) and set(map(str, order)) == set(names):
        names = [str(n) for n in order]
    raw = []
    for name in names:
        g = d[name]
        item: dict[str, Any] = {"name": name, "args": {}}
        try:
            if not isinstance(g, dict) or "x" not in g or "y" not in g:
                raise SpectrumError(f"group {name!r} has no 'x'/'y' arrays", source=src, field=name)
            args = g.get("args") or {}
            item["args"] = dict(args) if isinstance(args, dict) else {}
            for key in _ARRAYS:
                if key in g and g[key] is not None:
                    try:
                        item[key] = _floats(g[key], key, src, None)
                    except SpectrumError as exc:
                        if key in _NEEDED:
                            raise
                        item.setdefault("channel_warnings", []).append(f"{exc.message}; channel ignored")
        except SpectrumError as exc:
            item["error"] = exc
        raw.append(item)
    return header, raw


@dataclass
class AthenaFailure:
    """A group of an Athena project that could not be read (the project's other groups are).

    Attributes
    ----------
    name : str
        Athena's group id (``$old_group``), or ``"?"`` when even that could not be read.
    label : str
        The group's label (stripped), or its id when the label could not be read.
    line : int or None
        Line of the group in the file (Perl layout).
    error : SpectrumError
        Why, naming the file (and line/field).
    status : {"error", "skipped"}
        ``"skipped"`` for a group read but not μ(E) data (χ(k) or derived groups).
    """

    name: str
    label: str
    line: int | None
    error: SpectrumError
    status: str = "error"

    def to_dict(self, source: str) -> dict[str, Any]:
        """``{"file", "label", "group", "line", "status", "error"}`` (a measure-read record; ``status`` is
        ``"error"``, or ``"skipped"`` for a group that is not μ(E) data)."""
        return {"file": source, "label": self.label, "group": self.name, "line": self.line, "status": self.status,
                "error": str(self.error)}


def _group(item: dict, src: str) -> AthenaGroup:
    """One group from its raw dict; raises SpectrumError naming the file, line and group."""
    line = item.get("line")
    name = str(item.get("name", "?"))
    if "error" in item:
        raise item["error"]
    if "x" not in item or "y" not in item:
        raise SpectrumError(f"group {name!r} has no @x/@y arrays", source=src, line=line)
    args = item.get("args", {})
    label = args.get("label")
    label = str(label) if label not in (None, "") else name
    x, y = item["x"], item["y"]
    if x.size != y.size:
        raise SpectrumError(f"group {label.strip()!r}: {x.size} energies but {y.size} mu values", source=src,
                            line=line, field="y")
    msgs = [f"{src}: group {label.strip()!r}: {w}" for w in item.get("channel_warnings", [])]
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        n_bad = int((~keep).sum())
        if n_bad > x.size // 2:
            raise SpectrumError(f"group {label.strip()!r}: {n_bad} of {x.size} values of @x/@y are not finite",
                                source=src, line=line, field="y")
        msgs.append(f"{src}: group {label.strip()!r}: {n_bad} point(s) with a non-finite energy or mu dropped")
    chans = {}
    for k in ("i0", "signal", "stddev"):
        if k in item and item[k].size != x.size:
            msgs.append(f"{src}: group {label.strip()!r}: @{k} has {item[k].size} values for {x.size} "
                        "energies; ignored")
        chans[k] = item[k][keep] if k in item and item[k].size == x.size else None
    x, y = x[keep], y[keep]
    if x.size < 2:
        raise SpectrumError(f"group {label.strip()!r} has {x.size} point(s)", source=src, line=line, field="x")
    order = np.argsort(x, kind="stable")
    if np.any(np.diff(x) < 0):
        msgs.append(f"{src}: group {label.strip()!r}: energies not in increasing order; sorted")
    energy, n_dup = _nudge_duplicates(x[order])
    if n_dup:
        msgs.append(f"{src}: group {label.strip()!r}: {n_dup} repeated energies moved up by "
                    f"{TINY_ENERGY * 1000:.1f} meV (as larch does)")
    chans = {k: (v[order] if v is not None else None) for k, v in chans.items()}
    return AthenaGroup(name=name, label=label, energy=energy, mu=y[order], args=args, line=line, warnings=msgs,
                       **chans)


def read_athena_project(path: str | Path) -> AthenaProject:
    """Read every group of an Athena project file (gzipped or plain; Perl or JSON layout).

    A group that cannot be read (an unparsable ``@args``/``@x``/``@y``, arrays of different
    lengths, fewer than 2 finite points) does not stop the others: it is listed in the project's
    ``failed`` with its reason (and warned about). Unreadable optional channels (``@i0``,
    ``@signal``, ``@stddev``, e.g. ``None``) are dropped with a warning; points with a non-finite
    energy or μ are dropped with a warning (as long as they are fewer than half).

    Parameters
    ----------
    path : str or Path
        The ``.prj`` file.

    Returns
    -------
    AthenaProject
        Groups in file order, each with its label, arrays (sorted by energy, repeated energies
        moved up by 0.5 meV as larch does) and stored parameters; ``failed`` the groups that
        could not be read.

    Raises
    ------
    SpectrumError
        Naming the file (and line) when it is missing, corrupt, not an Athena project, holds no
        group, or none of its groups can be read (the first group's reason).
    """
    path = Path(path)
    src = str(path)
    text = _read_text(path)
    if not is_athena_project(text[:1000]):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        raise SpectrumError(f"not an Athena project file: expected '# Athena project file' or a JSON project; "
                            f"first line is {first!r}", source=src, line=1)
    msgs: list[str] = []
    layout = "json" if text.lstrip().startswith("{") else "perl"
    header, raw = _parse_json(text, src) if layout == "json" else _parse_perl(text, src, msgs)
    groups: list[AthenaGroup] = []
    failed: list[AthenaFailure] = []
    for item in raw:
        try:
            g = _group(item, src)
        except SpectrumError as exc:
            label = (item.get("args") or {}).get("label")
            name = str(item.get("name", "?"))
            label = str(label).strip() if label not in (None, "") else name
            if not exc.message.startswith("group "):
                exc = SpectrumError(f"group {label!r}: {exc.message}", source=exc.source or src, line=exc.line,
                                    field=exc.field)
            failed.append(AthenaFailure(name=name, label=label, line=item.get("line"), error=exc))
            continue
        groups.append(g)
        msgs += g.warnings
    if not groups:
        if failed:
            first = failed[0].error
            more = f" (none of the {len(failed)} groups could be read)" if len(failed) > 1 else ""
            raise SpectrumError(first.message + more, source=first.source or src, line=first.line,
                                field=first.field)
        raise SpectrumError("no data groups in the Athena project", source=src)
    for w in msgs:
        warnings.warn(w, AthenaWarning, stacklevel=2)
    for f in failed:
        warnings.warn(f"group {f.label!r} not read: {f.error}", AthenaWarning, stacklevel=2)
    return AthenaProject(path=src, layout=layout, header=header, groups=groups, warnings=msgs, failed=failed)


def _nudge_duplicates(e: np.ndarray) -> tuple[np.ndarray, int]:
    """Move repeated successive energies up by TINY_ENERGY each (larch ``remove_dups``)."""
    if e.size < 2 or np.min(np.diff(e)) > 10 * TINY_ENERGY:
        return e, 0
    out = e.copy()
    add = np.zeros(e.size)
    n = 0
    for i in range(1, e.size):
        if abs(e[i] - e[i - 1]) < TINY_ENERGY:
            add[i] = add[i - 1] + TINY_ENERGY
            n += 1
    return out + add, n


class AthenaSpectra(list):
    """The spectra of an Athena project (a list of :class:`~xasml.spectrum.Spectrum`), with the groups
    that could not be read in ``failed`` (list of :class:`AthenaFailure`; also warned about) and the
    groups that are not μ(E) data in ``skipped``."""

    def __init__(self, spectra=(), failed=(), skipped=()):
        super().__init__(spectra)
        self.failed: list[AthenaFailure] = list(failed)
        self.skipped: list[AthenaFailure] = list(skipped)


#: Athena's bkg_z before it knows the absorber
ATHENA_PLACEHOLDER_ELEMENTS = ("H",)


def read_athena(path: str | Path, absorbing_element: str | None = None, edge: str | None = None,
                include_references: bool = True) -> AthenaSpectra:
    """Read the μ(E) groups of an Athena project as :class:`~xasml.spectrum.Spectrum` objects.

    Every group that reads is returned; a group that cannot be read (see
    :func:`read_athena_project`) or whose absorber cannot be determined is in the result's
    ``failed`` with its reason, never dropped silently.

    Parameters
    ----------
    path : str or Path
        The ``.prj`` file.
    absorbing_element, edge : str, optional
        Override the stored values. The absorber of each group is, in this order
        (:func:`xasml.edges.resolve_absorber`): these options; Athena's stored ``bkg_z`` and
        ``fft_edge`` (``H``, Athena's placeholder, and edges xraydb does not tabulate are
        ignored with a warning); the element and edge the group's label states (Athena labels
        groups with their data file's name, e.g. ``Fe_K.dat``), else the project's file name;
        the tabulated edge nearest
        Athena's e0 (or the measured e0), with a warning. ``metadata["element_source"]`` says
        which (``"option"``, ``"header"``, ``"file name"``, ``"data"``).
    include_references : bool
        Also return the reference-channel groups (labels ``Ref ...``); they are always
        available to calibration through ``metadata["reference_group"]``.

    Returns
    -------
    AthenaSpectra
        A list of Spectrum, one per μ(E) group, in file order; ``material_id`` is the label
        (stripped), ``metadata`` holds ``format`` ("athena"), ``label``, ``group`` (Athena id),
        ``athena`` (e0, pre1, pre2, norm1, norm2, nnorm, eshift, element, edge as stored),
        ``element_source``, ``reference_group`` (label of the paired reference channel, if
        any), ``channels`` (names of the stored i0/signal arrays) and ``warnings``. Chi groups
        are skipped with a warning (listed in ``skipped``). ``failed``: the groups that could not be read.

    Raises
    ------
    SpectrumError
        Everything :func:`read_athena_project` raises; also when no μ(E) group remains (the
        first failure's reason when groups failed), or an option is no element/edge.
    """
    from xasml.edges import element_edge_from_text, resolve_absorber, stated_edge

    proj = read_athena_project(path)
    src = proj.path
    if absorbing_element not in (None, ""):  # a wrong option is wrong for every group: one error
        normalize_element(absorbing_element, source=src)
    if edge not in (None, "") and stated_edge(edge) is None:
        raise SpectrumError(f"unknown edge {edge!r}: expected K, L1, L2, L3, M1..M5, ...", source=src, field="edge")
    out = AthenaSpectra(failed=proj.failed)
    shared = [w for w in proj.warnings if not any(w in g.warnings for g in proj.groups)]
    for g in proj.groups:
        msgs = shared + list(g.warnings)
        if not g.is_xmu:
            why = SpectrumError(f"group {g.label.strip()!r} is not mu(E) data (chi(k) or derived: is_chi, is_bkg, "
                                "is_diff, ...); skipped", source=src, line=g.line)
            out.skipped.append(AthenaFailure(name=g.name, label=g.label.strip(), line=g.line, error=why,
                                             status="skipped"))
            warnings.warn(str(why), AthenaWarning, stacklevel=2)
            continue
        if g.is_reference_channel and not include_references:
            continue
        try:
            stated_el = next((g.args[k] for k in ("bkg_z", "atsym") if g.args.get(k) not in (None, "")), None)
            stated_ed = next((g.args[k] for k in ("fft_edge", "edge") if g.args.get(k) not in (None, "")), None)
            ab = resolve_absorber(src, element=absorbing_element, edge=edge, stated_element_value=stated_el,
                                  stated_edge_value=stated_ed, stated_what="the stored bkg_z/fft_edge",
                                  placeholder_elements=ATHENA_PLACEHOLDER_ELEMENTS,
                                  filename=g.label.strip() if element_edge_from_text(g.label)[0] else Path(src).name,
                                  energy=g.energy, mu=g.mu, e0=g.e0, e0_what="Athena's e0 (bkg_e0)")
        except SpectrumError as exc:
            out.failed.append(AthenaFailure(name=g.name, label=g.label.strip(), line=g.line,
                                            error=SpectrumError(f"group {g.label.strip()!r}: {exc.message}",
                                                                source=src, line=g.line, field=exc.field)))
            continue
        msgs += [f"{src}: group {g.label.strip()!r}: {w}" for w in ab.warnings]
        ref = proj.reference_of(g)
        meta = {
            "format": "athena",
            "layout": proj.layout,
            "label": g.label.strip(),
            "group": g.name,
            "athena": {"e0": g.e0, "pre1": g.pre1, "pre2": g.pre2, "norm1": g.norm1, "norm2": g.norm2,
                       "nnorm": g.nnorm, "eshift": g.eshift, "element": g.element, "edge": g.edge},
            "element_source": ab.element_source,
            "reference_group": ref.label.strip() if ref is not None else None,
            "is_reference_channel": g.is_reference_channel,
            "channels": [k for k in ("i0", "signal", "stddev") if getattr(g, k) is not None],
            "warnings": msgs,
        }
        out.append(Spectrum(energy=g.energy, mu=g.mu, absorbing_element=ab.element, edge=ab.edge,
                            material_id=g.label.strip(), source=src, kind="mu", metadata=meta))
    if not out:
        if out.failed or out.skipped:
            first = (out.failed or out.skipped)[0].error
            raise SpectrumError(first.message, source=first.source or src, line=first.line, field=first.field)
        raise SpectrumError("no mu(E) groups in the Athena project (only chi or derived data)", source=src)
    return out
