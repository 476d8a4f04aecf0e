"""The measured reference library: standards of known compound, normalised on the calibrated energy scale.

A library is a Parquet file (``references.parquet``) with one row per measured spectrum of a
standard. Each row holds what the standard is (``element``, ``edge``, ``compound``, ``formula``,
``valence`` — the absorber's formal oxidation state, null when unclear —, ``environment`` and
``cn`` where the structure is known), where it came from (``file``, ``source``, ``licence``,
``note``) and the spectrum itself as xasml measures every file (:func:`xasml.measure.core.
normalized_measured`: physical checks, calibration with the file's reference channel where it has
one, larch ``pre_edge``): ``e0`` (eV, calibrated), ``e_half`` (eV, where ``flat`` first reaches
0.5), ``edge_step``, the ``calibration`` method and ``calibration_shift`` (eV), and ``flat`` (the
flattened μ(E), float32) on the relative grid ``e0 + grid_start + grid_step * k`` (NaN where the
scan had no data).

The shipped library (``xasml/data/references/references.parquet``) is built by
``xasml references build`` from the public-domain XAS Data Library
(XraySpectroscopy/XASDataLibrary) with the compound table
``xasml/data/references/xas_data_library.json``. Users keep their own standards (their beamline,
their calibration) in a folder of the same format (``xasml references add``); every command that
takes ``--references DIR`` reads the shipped library and theirs (:func:`load_library`).
"""

from __future__ import annotations

import json
import re
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from xasml.errors import DataError, SpectrumError

__all__ = ["GRID_START", "GRID_STEP", "GRID_N", "LIBRARY_FILE", "COLUMNS", "shipped_library_path",
           "compound_table", "match_compound", "half_height_energy", "standard_row", "build_library",
           "read_library", "write_library", "load_library", "cached_library", "add_standards", "build_athena_standards", "library_summary",
           "entry_energy", "entry_flat"]

#: relative energy grid of the stored spectra: e0 + GRID_START + GRID_STEP * k, k < GRID_N (eV)
GRID_START = -30.0
GRID_STEP = 0.25
GRID_N = 481  # up to e0 + 90 eV
#: file name of a library inside a library folder
LIBRARY_FILE = "references.parquet"
#: the columns of a library table, in order
COLUMNS = ("id", "element", "edge", "compound", "formula", "valence", "environment", "cn", "note", "file",
           "source", "licence", "e0", "e_half", "edge_step", "calibration", "calibration_shift", "grid_start",
           "grid_step", "flat")
_STR = ("id", "element", "edge", "compound", "formula", "environment", "note", "file", "source", "licence",
        "calibration")
_FLOAT = ("valence", "cn", "e0", "e_half", "edge_step", "calibration_shift", "grid_start", "grid_step")


def _shipped(name: str) -> Path:
    """Path of a file shipped in ``xasml/data/references/``."""
    return Path(str(resources.files("xasml") / "data" / "references" / name))


def shipped_library_path() -> Path:
    """Path of the library shipped with xasml.

    Returns
    -------
    Path
        ``xasml/data/references/references.parquet`` inside the installed package.
    """
    return _shipped(LIBRARY_FILE)


def compound_table(path: str | Path | None = None) -> dict[str, Any]:
    """The compound table that names the XAS Data Library's files (``xas_data_library.json``).

    Parameters
    ----------
    path : str or Path, optional
        Another table of the same form (default: the shipped one).

    Returns
    -------
    dict
        ``source``, ``licence`` and ``rules`` (one per compound: ``element``, ``match`` — a
        case-insensitive file-stem prefix —, ``compound``, ``formula``, ``valence``, optional
        ``environment``, ``cn``, ``note``).
    """
    p = Path(path) if path else _shipped("xas_data_library.json")
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: cannot read the compound table ({exc})") from None


def match_compound(element: str, stem: str, table: dict[str, Any]) -> dict[str, Any] | None:
    """The compound-table rule that names a file of the XAS Data Library.

    Parameters
    ----------
    element : str
        The absorbing element (the file's ``data/<El>/`` folder).
    stem : str
        The file name without suffix (``"MnO2_rt_01"``).
    table : dict
        A compound table (:func:`compound_table`).

    Returns
    -------
    dict or None
        The rule of ``element`` whose ``match`` is the longest case-insensitive prefix of ``stem``,
        or None when no rule matches.
    """
    best = None
    for rule in table["rules"]:
        if rule["element"] == element and stem.lower().startswith(rule["match"].lower()):
            if best is None or len(rule["match"]) > len(best["match"]):
                best = rule
    return best


def half_height_energy(energy: np.ndarray, flat: np.ndarray, e0: float) -> float:
    """Energy (eV) where the rising edge of the normalised μ crosses 0.5.

    The half-height edge position of the XANES literature (e.g. the "E at μ = 0.5" of Mn and Fe
    valence calibrations, Wilke et al., Am. Mineral. 86, 714 (2001)), taken on the main rise: the
    last crossing of 0.5 below the highest point of ``flat`` within e0 − 15 … e0 + 40 eV, so that an
    intense pre-edge peak (chromates, vanadates) is not mistaken for the edge; interpolated linearly.

    Parameters
    ----------
    energy, flat : ndarray, shape (n,)
        Energies (eV, increasing) and flattened (edge-step normalised) μ.
    e0 : float
        Edge energy, eV.

    Returns
    -------
    float
        The energy, eV; ``e0`` when the curve does not cross 0.5 there.
    """
    e, f = np.asarray(energy, float), np.asarray(flat, float)
    lo, hi = int(np.searchsorted(e, e0 - 15.0)), int(np.searchsorted(e, e0 + 40.0))
    if hi - lo < 2:
        return float(e0)
    top = lo + int(np.nanargmax(f[lo:hi]))
    below = np.nonzero(f[lo:top + 1] < 0.5)[0]
    if below.size == 0 or f[top] < 0.5:
        return float(e0)
    j = lo + int(below[-1])
    if j + 1 > top or f[j + 1] == f[j]:
        return float(e[j])
    return float(e[j] + (0.5 - f[j]) * (e[j + 1] - e[j]) / (f[j + 1] - f[j]))


def _grid() -> np.ndarray:
    return GRID_START + GRID_STEP * np.arange(GRID_N)


def standard_row(spectrum, info: dict[str, Any], calibrate: str = "auto", reference=None) -> dict[str, Any]:
    """One library row from a measured spectrum and what it is.

    Parameters
    ----------
    spectrum : Spectrum
        Measured spectrum (absolute eV) with its ``absorbing_element`` and ``edge``.
    info : dict
        ``id``, ``compound``, ``formula``, ``valence`` (or None), and optional ``environment``,
        ``cn``, ``note``, ``file``, ``source``, ``licence``.
    calibrate, reference :
        Energy calibration (:func:`xasml.preprocess.calibrate.calibrate`).

    Returns
    -------
    dict
        A row with the :data:`COLUMNS`.

    Raises
    ------
    SpectrumError
        From the checks, the calibration or the normalisation (file named).
    """
    from xasml.measure.core import normalized_measured

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat_spec, rec = normalized_measured(spectrum, calibrate=calibrate, reference=reference)
    e, f = flat_spec.energy, flat_spec.mu
    e0 = float(rec["e0"])
    grid = e0 + _grid()
    stored = np.interp(grid, e, f).astype(np.float32)
    stored[(grid < e[0]) | (grid > e[-1])] = np.nan
    val = info.get("valence")
    cn = info.get("cn")
    return {
        "id": str(info["id"]), "element": spectrum.absorbing_element, "edge": spectrum.edge,
        "compound": str(info["compound"]), "formula": info.get("formula"),
        "valence": None if val is None else float(val), "environment": info.get("environment"),
        "cn": None if cn is None else float(cn), "note": info.get("note"),
        "file": info.get("file") or (Path(spectrum.source).name if spectrum.source else None),
        "source": info.get("source"), "licence": info.get("licence"),
        "e0": e0, "e_half": half_height_energy(e, f, e0), "edge_step": float(rec["edge_step"]),
        "calibration": rec["calibration"]["method"], "calibration_shift": float(rec["calibration"]["shift"]),
        "grid_start": GRID_START, "grid_step": GRID_STEP, "flat": stored,
    }


def _frame(rows: Sequence[dict[str, Any]]):
    import pandas as pd

    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for c in _STR:
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    for c in _FLOAT:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def write_library(table, path: str | Path) -> Path:
    """Write a library table to Parquet atomically (temporary file, then rename).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with the :data:`COLUMNS` (``flat``: one float32 array per row).
    path : str or Path
        A ``.parquet`` file, or a folder (then ``<folder>/references.parquet``).

    Returns
    -------
    Path
        The file written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xasml.utils import atomic_path

    p = Path(path)
    if p.suffix != ".parquet":
        p = p / LIBRARY_FILE
    df = _frame(table.to_dict("records")) if hasattr(table, "to_dict") else _frame(table)
    arrays = []
    for c in COLUMNS:
        if c == "flat":
            arrays.append(pa.array([np.asarray(v, np.float32) for v in df[c]], type=pa.list_(pa.float32())))
        elif c in _FLOAT:
            arrays.append(pa.array(df[c].to_numpy(float), type=pa.float64(), from_pandas=True))
        else:
            arrays.append(pa.array(list(df[c]), type=pa.string()))
    t = pa.Table.from_arrays(arrays, names=list(COLUMNS))
    t = t.replace_schema_metadata({"xasml": json.dumps({"format": "xasml-references", "version": 1,
                                                        "energy": "flat on e0 + grid_start + grid_step*k, eV"})})
    with atomic_path(p) as tmp:
        pq.write_table(t, tmp, compression="zstd")
    return p


def read_library(path: str | Path):
    """Read one library (a ``.parquet`` file or a folder holding ``references.parquet``).

    Parameters
    ----------
    path : str or Path
        The Parquet file, or a folder holding ``references.parquet`` (a user library).

    Returns
    -------
    pandas.DataFrame
        One row per standard, the :data:`COLUMNS`; ``flat`` as float arrays.

    Raises
    ------
    DataError
        Naming the file: missing, unreadable, or without the library's columns.
    """
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_dir():
        p = p / LIBRARY_FILE
    if not p.is_file():
        raise DataError(f"{p}: no reference library here (expected {LIBRARY_FILE}; make one with "
                        "'xasml references add' or 'xasml references build')")
    try:
        t = pq.read_table(p)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise DataError(f"{p}: not a readable Parquet reference library ({str(exc).splitlines()[0][:120]})") from None
    missing = [c for c in COLUMNS if c not in t.column_names]
    if missing:
        raise DataError(f"{p}: not a reference library: missing column(s) {', '.join(missing)}")
    df = t.to_pandas()[list(COLUMNS)]
    df["flat"] = [np.asarray(v, float) for v in df["flat"]]
    return _frame(df.to_dict("records"))


def load_library(references: str | Path | Sequence[str | Path] | None = None, shipped: bool = True):
    """The shipped library plus the user's libraries (``--references DIR``), as one table.

    A user entry with the same ``id`` as an earlier one replaces it.

    Parameters
    ----------
    references : path or sequence of paths, optional
        User library folders or ``.parquet`` files.
    shipped : bool
        Include the shipped library (default True).

    Returns
    -------
    pandas.DataFrame
        See :func:`read_library`; column ``library`` names where each row came from.
    """
    import pandas as pd

    paths: list[Path] = [shipped_library_path()] if shipped else []
    if references is not None:
        paths += [Path(r) for r in ([references] if isinstance(references, (str, Path)) else references)]
    parts = []
    for p in paths:
        df = read_library(p)
        df["library"] = "shipped" if shipped and p == paths[0] else str(p)
        parts.append(df)
    if not parts:
        return _frame([]).assign(library=[])
    df = pd.concat(parts, ignore_index=True)
    return df.drop_duplicates("id", keep="last").reset_index(drop=True)


_CACHE: dict = {}


def cached_library(references: str | Path | Sequence[str | Path] | None = None):
    """:func:`load_library` (shipped plus the user's libraries), kept in memory between calls.

    The table is read again when a library file changed on disk (its modification time or
    size), so a long-running process (``xasml serve``) sees standards added with ``xasml
    references add`` while it runs. Only the last set of ``references`` asked for is kept.

    Parameters
    ----------
    references : path or sequence of paths, optional
        User library folders or ``.parquet`` files (``--references DIR``).

    Returns
    -------
    pandas.DataFrame
        See :func:`load_library`. Do not modify it: it is shared.

    Raises
    ------
    DataError
        As :func:`read_library`, naming the file.
    """
    refs = [] if references is None else [references] if isinstance(references, (str, Path)) else list(references)
    paths = [shipped_library_path()] + [Path(r) / LIBRARY_FILE if Path(r).is_dir() else Path(r) for r in refs]
    stamp = []
    for p in paths:
        try:
            st = p.stat()
            stamp.append((str(p.resolve()), st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((str(p), None, None))  # load_library names the missing file
    key = tuple(stamp)
    if key not in _CACHE:
        table = load_library([str(r) for r in refs] or None)
        _CACHE.clear()
        _CACHE[key] = table
    return _CACHE[key]


def entry_energy(row) -> np.ndarray:
    """Absolute energies of a library row's stored ``flat``.

    Parameters
    ----------
    row : mapping or pandas.Series
        A library row (``e0``, ``grid_start``, ``grid_step`` in eV, and ``flat``).

    Returns
    -------
    ndarray, shape (len(flat),)
        ``e0 + grid_start + grid_step * k`` in eV.
    """
    return row["e0"] + row["grid_start"] + row["grid_step"] * np.arange(len(row["flat"]))


def entry_flat(row, energy: np.ndarray) -> np.ndarray:
    """A library row's flattened spectrum on other energies.

    Parameters
    ----------
    row : mapping or pandas.Series
        A library row (see :func:`entry_energy`).
    energy : ndarray, shape (n,)
        Absolute energies in eV.

    Returns
    -------
    ndarray, shape (n,)
        ``flat`` linearly interpolated at ``energy`` over its finite points (the stored ``flat`` is
        NaN where the scan had no data); held at its end values outside them.
    """
    e, f = entry_energy(row), np.asarray(row["flat"], float)
    ok = np.isfinite(f)
    return np.interp(energy, e[ok], f[ok])


def _library_files(folder: Path) -> list[tuple[str, Path]]:
    out = []
    for el_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(el_dir.iterdir()):
            if f.is_file() and re.search(r"\.(xdi|xd|xxdi)$", f.name, re.I):
                out.append((el_dir.name, f))
    return out


def build_library(folder: str | Path, out: str | Path | None = None, table: str | Path | None = None,
                  progress: bool = False, athena: str | Path | None = None):
    """Build the library from the XAS Data Library's ``data/<El>/*.xdi`` files and the compound table
    (and, with ``athena``, the standards of the xraylarch example Athena projects).

    Files matched by no rule of the table are skipped (reported); files that fail the checks are
    skipped with their one-line error.

    Parameters
    ----------
    folder : str or Path
        The XAS Data Library's ``data`` folder (``<El>/<file>.xdi``).
    out : str or Path, optional
        Where to write the Parquet file (or folder); not written when None.
    table : str or Path, optional
        Compound table (default: the shipped ``xas_data_library.json``).
    progress : bool
        Print one line per file.
    athena : str or Path, optional
        Folder of Athena projects named by ``athena_projects.json`` (:func:`build_athena_standards`).

    Returns
    -------
    (pandas.DataFrame, list of str)
        The library and the skipped files with the reason.
    """
    from xasml.io.reader import read_spectra

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected the XAS Data Library's data/<El>/ folders)")
    tab = compound_table(table)
    rows, skipped = [], []
    for el, f in _library_files(folder):
        rule = match_compound(el, f.stem, tab)
        if rule is None:
            skipped.append(f"{f}: no compound rule in the table")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spectra = read_spectra(f, absorbing_element=el)
            s = spectra[0]
            rows.append(_rule_row(s, rule, tab, f"{el}/{f.stem}", f"{el}/{f.name}", progress))
        except (SpectrumError, DataError, OSError, ValueError) as exc:
            skipped.append(f"{f}: {exc}")
    if athena is not None:
        more, sk = build_athena_standards(athena, progress=progress)
        rows += more
        skipped += sk
    df = _frame(rows)
    if out is not None:
        write_library(df, out)
    return df, skipped


def _rule_row(s, rule: dict, tab: dict, id_: str, file: str, progress: bool) -> dict:
    """The library row of spectrum ``s`` described by compound-table ``rule`` (source and licence from ``tab``);
    with ``progress`` one line about it is printed."""
    info = {**{k: rule.get(k) for k in ("compound", "formula", "valence", "environment", "cn", "note")},
            "id": id_, "file": file, "source": tab.get("source"), "licence": tab.get("licence")}
    r = standard_row(s, info)
    if progress:
        print(f"{r['id']:<50} {r['compound']:<28} e0 {r['e0']:.2f}  {r['calibration']}")
    return r


def build_athena_standards(folder: str | Path, table: str | Path | None = None, progress: bool = False):
    """Library rows from the groups of Athena projects named by a table (``athena_projects.json``).

    Parameters
    ----------
    folder : str or Path
        Folder of the ``.prj`` files (the xraylarch examples: shared data ``experimental/athena-projects``).
    table : str or Path, optional
        The table (default: the shipped ``athena_projects.json``): ``source``, ``licence`` and
        ``rules`` with ``project``, ``group`` (label; the first group so labelled), ``element`` and
        what the standard is (as :func:`compound_table`).
    progress : bool
        Print one line per standard.

    Returns
    -------
    (list of dict, list of str)
        The rows (``id`` = ``athena/<project stem>/<group>``) and the groups skipped with the reason.
    """
    from xasml.io.reader import read_spectra

    p = Path(table) if table else _shipped("athena_projects.json")
    tab = compound_table(p)
    folder = Path(folder)
    rows, skipped, cache = [], [], {}
    for rule in tab["rules"]:
        f = folder / rule["project"]
        try:
            if f not in cache:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cache[f] = read_spectra(f, include_references=False)
            s = next((x for x in cache[f] if x.metadata.get("label") == rule["group"]), None)
            if s is None:
                skipped.append(f"{f}: no group {rule['group']!r}")
                continue
            if s.absorbing_element != rule["element"]:
                skipped.append(f"{f}: group {rule['group']!r} is {s.absorbing_element}, not {rule['element']}")
                continue
            rows.append(_rule_row(s, rule, tab, f"athena/{f.stem}/{rule['group']}", f"{f.name}#{rule['group']}",
                                  progress))
        except (SpectrumError, DataError, OSError, ValueError) as exc:
            skipped.append(f"{f} {rule['group']!r}: {exc}")
    return rows, skipped


def add_standards(library_dir: str | Path, files: Iterable[str | Path], compound: str, valence: float | None,
                  formula: str | None = None, element: str | None = None, edge: str | None = None,
                  environment: str | None = None, cn: float | None = None, note: str | None = None,
                  source: str | None = None, licence: str | None = None, calibrate: str = "auto",
                  reference=None, energy_col: str | None = None, mu: str | None = None,
                  scan: str | None = None) -> list[dict[str, Any]]:
    """Append measured standards to a user library folder (created if new), atomically.

    Every file is read and measured first; nothing is written if any file fails.

    Parameters
    ----------
    library_dir : str or Path
        The user's library folder (``references.parquet`` inside).
    files : iterable of path
        Measured spectra of the standard (XDI, Athena project, column files).
    compound : str
        Compound name; entries of one compound are left out together in leave-one-compound-out.
    valence : float or None
        Formal oxidation state of the absorber (None: unknown, nearest-standard evidence only).
    formula, environment, note, source, licence : str, optional
        What the standard is and where it comes from.
    element, edge : str, optional
        For files that do not say.
    cn : float, optional
        Coordination number of the absorber.
    calibrate, reference :
        Energy calibration (:func:`xasml.preprocess.calibrate.calibrate`).
    energy_col, mu, scan : str, optional
        Column, SPEC and HDF5 files: the energy column, μ (name, index or expression) and the scan
        (:func:`xasml.io.reader.read_spectra`).

    Returns
    -------
    list of dict
        The rows added (``id`` = ``user/<compound>/<file stem>[:label]``).

    Raises
    ------
    SpectrumError
        A file that cannot be read or measured (file named).
    DataError
        An existing library that cannot be read.
    """
    import pandas as pd

    from xasml.io.reader import read_spectra

    d = Path(library_dir)
    if d.suffix == ".parquet":
        raise DataError(f"{d}: give a library folder, not a file")
    existing = read_library(d) if (d / LIBRARY_FILE).exists() else _frame([])
    if not compound or not compound.strip():
        raise DataError("--compound: give the compound's name")
    new = []
    for f in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spectra = read_spectra(f, element, edge, energy_col, mu, include_references=False, scan=scan)
        for s in spectra:
            label = s.metadata.get("label")
            sid = f"user/{compound.strip()}/{Path(f).stem}" + (f":{label}" if len(spectra) > 1 and label else "")
            info = {"id": sid, "compound": compound.strip(), "formula": formula, "valence": valence,
                    "environment": environment, "cn": cn, "note": note, "file": str(Path(f).resolve()),
                    "source": source or "user", "licence": licence}
            new.append(standard_row(s, info, calibrate=calibrate, reference=reference))
    df = pd.concat([existing, _frame(new)], ignore_index=True).drop_duplicates("id", keep="last")
    write_library(df.reset_index(drop=True), d)
    return new


def library_summary(df) -> list[dict[str, Any]]:
    """One record per compound of a library (what ``xasml references list`` prints).

    Parameters
    ----------
    df : pandas.DataFrame
        A library (:func:`load_library`, :func:`read_library`).

    Returns
    -------
    list of dict
        Sorted by element, edge and compound: ``element``, ``edge``, ``compound``, ``formula``,
        ``valence`` (formal oxidation state or None), ``environment``, ``cn``, ``entries`` (spectra),
        ``calibrated`` (spectra with an energy calibration other than "none") and ``library``
        (where the rows came from, when :func:`load_library` recorded it).
    """
    out = []
    for (el, ed, comp), g in df.groupby(["element", "edge", "compound"], sort=True):
        v = g["valence"].dropna()
        out.append({"element": el, "edge": ed, "compound": comp, "formula": g["formula"].iloc[0],
                    "valence": None if v.empty else float(v.iloc[0]), "environment": g["environment"].iloc[0],
                    "cn": None if g["cn"].isna().all() else float(g["cn"].dropna().iloc[0]),
                    "entries": int(len(g)), "calibrated": int((g["calibration"] != "none").sum()),
                    "library": g["library"].iloc[0] if "library" in g else None})
    return out
