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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import SpectrumError
from xasml.io.files import decode_text, read_file_bytes
from xasml.spectrum import KNOWN_EDGES, Spectrum, normalize_element
from xasml.utils import is_number

__all__ = ["AthenaGroup", "AthenaProject", "AthenaWarning", "read_athena_project", "read_athena",
           "is_athena_project"]

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
    """

    path: str
    layout: str
    header: list[str]
    groups: list[AthenaGroup]
    warnings: list[str] = field(default_factory=list)

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
        except (OSError, EOFError) as exc:
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
    return h.startswith("# Athena project file") or ('"_____header' in h[:400] and h.startswith("{"))


def _unescape(s: str, double: bool) -> str:
    if not double:
        return s.replace("\\\\", "\0").replace("\\'", "'").replace("\0", "\\")
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


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
    if not isinstance(values, list):
        raise SpectrumError(f"@{what} is not a list", source=src, line=line, field=what)
    try:
        arr = np.array([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        bad = next(v for v in values if not is_number(v))
        raise SpectrumError(f"@{what} holds {str(bad)[:40]!r}, expected numbers", source=src, line=line,
                            field=what) from None
    return arr


def _parse_perl(text: str, src: str, msgs: list[str]) -> tuple[list[str], list[dict]]:
    header: list[str] = []
    raw: list[dict] = []
    cur: dict[str, Any] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if not raw and not cur:
                header.append(s)
            continue
        m = re.match(r"^([$@%])(\w+)\s*=\s*(.*)$", s, re.DOTALL)
        if s.startswith("[record]"):
            if cur:
                raw.append(cur)
            cur = {}
            continue
        if not m:
            continue  # '1;' and anything else that is not an assignment
        sigil, key, rhs = m.groups()
        if key == "old_group":
            if cur:
                msgs.append(f"{src}, line {lineno}: group without a [record] line before it; kept")
                raw.append(cur)
            cur = {"name": str(_parse_perl_value(rhs, src, lineno)), "line": lineno}
        elif key == "args":
            cur.setdefault("line", lineno)
            vals = _parse_perl_value(rhs, src, lineno)
            if not isinstance(vals, list):
                raise SpectrumError("@args is not a list", source=src, line=lineno, field="args")
            cur["args"] = {str(vals[k]): vals[k + 1] for k in range(0, len(vals) - 1, 2)}
        elif key in _ARRAYS and sigil == "@":
            cur[key] = _floats(_parse_perl_value(rhs, src, lineno), key, src, lineno)
        # $xdi, @journal, %plot_features, @indicator, %lcf_data: not needed, never evaluated
    if cur and "x" in cur:
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
            listed = _parse_perl_value(order, src, 0)
            if isinstance(listed, list) and set(map(str, listed)) == set(names):
                names = [str(n) for n in listed]
        except SpectrumError:
            pass
    raw = []
    for name in names:
        g = d[name]
        if not isinstance(g, dict) or "x" not in g or "y" not in g:
            raise SpectrumError(f"group {name!r} has no 'x'/'y' arrays", source=src, field=name)
        item: dict[str, Any] = {"name": name, "args": dict(g.get("args") or {})}
        for key in _ARRAYS:
            if key in g and g[key] is not None:
                item[key] = _floats(g[key], key, src, None)
        raw.append(item)
    return header, raw


def read_athena_project(path: str | Path) -> AthenaProject:
    """Read every group of an Athena project file (gzipped or plain; Perl or JSON layout).

    Parameters
    ----------
    path : str or Path
        The ``.prj`` file.

    Returns
    -------
    AthenaProject
        Groups in file order, each with its label, arrays (sorted by energy, repeated energies
        moved up by 0.5 meV as larch does) and stored parameters.

    Raises
    ------
    SpectrumError
        Naming the file (and line) when it is missing, not an Athena project, a literal cannot
        be parsed, ``@x``/``@y`` are not numbers or differ in length, or no group is found.
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
    for item in raw:
        line = item.get("line")
        if "x" not in item or "y" not in item:
            raise SpectrumError(f"group {item.get('name')!r} has no @x/@y arrays", source=src, line=line)
        x, y = item["x"], item["y"]
        if x.size != y.size:
            raise SpectrumError(f"group {item.get('name')!r}: {x.size} energies but {y.size} mu values",
                                source=src, line=line, field="y")
        if x.size < 2:
            raise SpectrumError(f"group {item.get('name')!r} has {x.size} point(s)", source=src, line=line, field="x")
        args = item.get("args", {})
        label = args.get("label")
        label = str(label) if label not in (None, "") else str(item.get("name"))
        n_before = len(msgs)
        order = np.argsort(x, kind="stable")
        chans = {k: item[k][order] if k in item and item[k].size == x.size else None
                 for k in ("i0", "signal", "stddev")}
        for k in ("i0", "signal", "stddev"):
            if k in item and item[k].size != x.size:
                msgs.append(f"{src}: group {label.strip()!r}: @{k} has {item[k].size} values for {x.size} "
                            "energies; ignored")
        energy, n_dup = _nudge_duplicates(x[order])
        if n_dup:
            msgs.append(f"{src}: group {label.strip()!r}: {n_dup} repeated energies moved up by "
                        f"{TINY_ENERGY * 1000:.1f} meV (as larch does)")
        if np.any(np.diff(x) < 0):
            msgs.append(f"{src}: group {label.strip()!r}: energies not in increasing order; sorted")
        bad = ~(np.isfinite(energy) & np.isfinite(y[order]))
        if bad.any():
            raise SpectrumError(f"group {label.strip()!r}: {int(bad.sum())} non-finite value(s) in @x/@y",
                                source=src, line=line, field="y")
        groups.append(AthenaGroup(name=str(item.get("name")), label=label, energy=energy, mu=y[order],
                                  args=args, line=line, warnings=msgs[n_before:], **chans))
    if not groups:
        raise SpectrumError("no data groups in the Athena project", source=src)
    for w in msgs:
        warnings.warn(w, AthenaWarning, stacklevel=2)
    return AthenaProject(path=src, layout=layout, header=header, groups=groups, warnings=msgs)


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


def read_athena(path: str | Path, absorbing_element: str | None = None, edge: str | None = None,
                include_references: bool = True) -> list[Spectrum]:
    """Read the μ(E) groups of an Athena project as :class:`~xasml.spectrum.Spectrum` objects.

    Parameters
    ----------
    path : str or Path
        The ``.prj`` file.
    absorbing_element, edge : str, optional
        Override the stored ``bkg_z`` / ``fft_edge``. When a group has neither a valid stored
        value nor an override, the absorber is identified from Athena's e0 (xraydb tabulated
        edges, nearest within 100 eV) with a warning.
    include_references : bool
        Also return the reference-channel groups (labels ``Ref ...``); they are always
        available to calibration through ``metadata["reference_group"]``.

    Returns
    -------
    list of Spectrum
        One per μ(E) group, in file order; ``material_id`` is the label (stripped),
        ``metadata`` holds ``format`` ("athena"), ``label``, ``group`` (Athena id), ``athena``
        (e0, pre1, pre2, norm1, norm2, nnorm, eshift, element, edge as stored),
        ``reference_group`` (label of the paired reference channel, if any), ``channels``
        (names of the stored i0/signal arrays) and ``warnings``. Chi groups are skipped with
        a warning.

    Raises
    ------
    SpectrumError
        Everything :func:`read_athena_project` raises; also when no μ(E) group remains or the
        absorber cannot be determined.
    """
    from xasml.edges import identify_edge

    proj = read_athena_project(path)
    src = proj.path
    out: list[Spectrum] = []
    shared = [w for w in proj.warnings if not any(w in g.warnings for g in proj.groups)]
    for g in proj.groups:
        msgs = shared + list(g.warnings)
        if not g.is_xmu:
            msgs_skip = f"{src}: group {g.label.strip()!r} is not mu(E) data (chi or derived); skipped"
            proj.warnings.append(msgs_skip)
            continue
        if g.is_reference_channel and not include_references:
            continue
        el, ed = absorbing_element, edge
        if el is None and g.element:
            try:
                el = normalize_element(g.element, source=src, field_name="bkg_z")
            except SpectrumError:
                el = None
        if ed is None and g.edge in KNOWN_EDGES:
            ed = g.edge
        if el is None or ed is None:
            e0 = g.e0 if g.e0 is not None and g.energy[0] - 100 <= g.e0 <= g.energy[-1] + 100 else None
            if e0 is None:
                from xasml.preprocess.normalize import find_e0

                e0 = find_e0(g.energy, g.mu) if g.energy.size >= 5 else float(g.energy.mean())
            try:
                fe, fed, tab = identify_edge(e0, element=el, edge=ed)
            except ValueError as exc:
                raise SpectrumError(f"group {g.label.strip()!r}: element/edge not stored (bkg_z/fft_edge) and "
                                    f"not identifiable from e0 = {e0:.1f} eV: {exc}; give absorbing_element/edge",
                                    source=src, field="bkg_z") from None
            msgs.append(f"{src}: group {g.label.strip()!r}: absorber identified from e0 = {e0:.1f} eV as "
                        f"{fe} {fed} (tabulated {tab:.1f} eV)")
            el, ed = fe, fed
        ref = proj.reference_of(g)
        meta = {
            "format": "athena",
            "layout": proj.layout,
            "label": g.label.strip(),
            "group": g.name,
            "athena": {"e0": g.e0, "pre1": g.pre1, "pre2": g.pre2, "norm1": g.norm1, "norm2": g.norm2,
                       "nnorm": g.nnorm, "eshift": g.eshift, "element": g.element, "edge": g.edge},
            "reference_group": ref.label.strip() if ref is not None else None,
            "is_reference_channel": g.is_reference_channel,
            "channels": [k for k in ("i0", "signal", "stddev") if getattr(g, k) is not None],
            "warnings": msgs,
        }
        out.append(Spectrum(energy=g.energy, mu=g.mu, absorbing_element=el, edge=ed,
                            material_id=g.label.strip(), source=src, kind="mu", metadata=meta))
    if not out:
        raise SpectrumError("no mu(E) groups in the Athena project (only chi or derived data)", source=src)
    return out
