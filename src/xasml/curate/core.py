"""Streaming curation of a database of site spectra (``xasml curate``).

Implements the five curation steps of Section III.B ("Data Curation and Cleaning") of the
universal XAS latent-space paper (612,765 Materials Project FEFF K-edge site spectra curated
to 295,832), each switchable and counted per element:

1. **Energy-grid standardisation** - every spectrum is linearly interpolated onto a uniform grid
   of ``n_points`` (200) points spaced ``window / n_points`` (35 eV / 200 = 0.175 eV, the
   paper's resolution) that starts, per element, at the minimum energy over all raw spectra of
   that element (or at an explicit start). Points below a spectrum's first energy take its first
   value (FEFF spectra start in the flat pre-edge; ``fill_below="none"`` removes such spectra
   instead); spectra that end before the grid does, do not reach it, or are invalid (NaN/inf,
   < 2 points, energies not increasing) are removed and counted.
2. **Spectral selection** - only normalised spectra are kept: a boolean ``normalized`` column
   when present, else the ``kind`` column (``norm``/``standardized`` normalised, ``mu`` raw
   unless its ``source`` is a FEFF ``xmu.dat``, whose ``mu`` FEFF normalises at xsedge+50 eV);
   other or missing kinds are kept and counted as ``normalisation_unknown``.
3. **Element filtering** - keep / drop lists; preset ``paper``: Z < 52 without noble gases.
4. **Duplicate removal** - exact duplicates (gridded spectra of the same element equal at
   every point: block-mean fingerprint, then value-by-value check) and near duplicates (every grid point within ``tol`` = 0.005; the
   first in input order is kept) - see :func:`xasml.curate.algorithms.near_duplicate_pairs`.
5. **Statistical filtering** - per element, a spectrum is removed when any grid point lies
   outside ``mean ± sigma * std`` of the element's remaining spectra (pointwise, population
   std), the procedure of OmniXAS (the paper's Ref. [16], ``OutlierDetector``).

Steps are applied in the order selection, element filter, grid, exact duplicates, near
duplicates, outliers; a spectrum is counted once, under the first step that removes it.

Passes over the input (Parquet record batches, memory bounded by one batch plus per-row
bookkeeping of ~100 bytes): (1) per-element minimum energy; (2) selection, filtering,
interpolation and block-mean keys, the gridded spectra spilled to a temporary file;
then exact / near duplicates from the keys and the spill; (3) two sequential reads of the
spill for the element means and standard deviations; (4) outlier test and output, written in
batches to a temporary file renamed onto the output.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from xasml.config import XasmlConfig, element_symbol
from xasml.curate import algorithms as alg
from xasml.datasets.format import FORMAT_VERSION, SCHEMA
from xasml.errors import DataError, SpectrumError
from xasml.utils import atomic_path, atomic_write_json, atomic_write_text, progress_bar

#: Removal reasons, in step order: (step, reason, status code).
REASONS = (
    ("selection", "not_normalised", 10),
    ("element_filter", "element_filtered", 20),
    ("grid", "invalid", 30),
    ("grid", "no_overlap", 31),
    ("grid", "grid_beyond_end", 32),
    ("grid", "grid_below_start", 33),
    ("exact_duplicates", "exact_duplicate", 40),
    ("near_duplicates", "near_duplicate", 50),
    ("outliers", "outlier", 60),
)
_CODE = {reason: code for _, reason, code in REASONS}
_INTERP_CODE = {alg.INVALID: 30, alg.NO_OVERLAP: 31, alg.BEYOND_END: 32, alg.BELOW_START: 33}
NORMALISED_KINDS = frozenset({"norm", "normalized", "normalised", "standardized", "standardised"})
RAW_KINDS = frozenset({"mu", "raw", "unnormalized", "unnormalised"})
#: Near-duplicate elements named by the paper (step 4).
PAPER_NEAR_DUPLICATE_ELEMENTS = ("Cd", "Zn", "Cr", "S")
OUTPUT_KIND = "curated"


def paper_elements() -> list[str]:
    """The 47 elements kept by the paper (step 3): atomic number below 52, no noble gases.

    Returns
    -------
    list of str
        Chemical symbols, H ... Sb without He, Ne, Ar, Kr (pymatgen's periodic table).
    """
    from pymatgen.core.periodic_table import Element

    return [Element.from_Z(z).symbol for z in range(1, 52) if not Element.from_Z(z).is_noble_gas]


class CurateOptions(XasmlConfig):
    """Settings of :func:`curate_parquet` and ``xasml curate`` (defaults: the paper's values, all
    steps on), on :class:`~xasml.config.XasmlConfig`: every option has its one-line description,
    and a ``--config`` file (TOML/JSON) holds any subset of them.

    Parameters
    ----------
    n_points : int
        Grid points per element (paper: 200).
    window : float
        Grid width in eV; the spacing is ``window / n_points`` (paper: 35 eV, 0.175 eV).
    start : dict, optional
        Explicit first grid energy (eV) per element (``"Cu"``; ``"Cu L3"`` for other edges),
        replacing the per-element minimum energy.
    fill_below : {"edge", "none"}
        Grid points below a spectrum's first energy: hold its first value, or remove the spectrum.
    selection : bool
        Keep only normalised spectra (paper step 2).
    elements, drop_elements : list of str, optional
        Keep only / drop these absorbing elements (paper step 3).
    exact_duplicates : bool
        Remove bitwise-equal gridded spectra of the same element (paper step 4).
    near_duplicates : bool
        Remove spectra within ``near_duplicate_tol`` at every point of an earlier kept one.
    near_duplicate_tol : float
        Tolerance on ``mu`` (paper: 0.005).
    near_duplicate_elements : list of str, optional
        Restrict near-duplicate removal to these elements (paper: Cd, Zn, Cr, S); None = all.
    outliers : bool
        Pointwise ``sigma`` filter around each element's mean spectrum (paper step 5).
    sigma : float
        Width of the acceptance band in standard deviations (paper: 3).
    batch_size : int
        Spectra per record batch (memory ~ batch_size * (points in + n_points) * 40 bytes).
    """

    n_points: int = Field(200, ge=2, description="grid points per element (--n-points)")
    window: float = Field(35.0, gt=0, description="grid width in eV; spacing = window / n_points (--window)")
    start: dict[str, float] | None = Field(
        None, description="explicit grid starts in eV per element, e.g. {\"Cu\": 8970, \"Fe\": 7100} "
                          "(--start Cu=8970,Fe=7100; null: per-element minimum energy)")
    fill_below: Literal["edge", "none"] = Field(
        "edge", description="grid points below a spectrum's first energy: 'edge' holds its first value, 'none' "
                            "removes the spectrum (--strict-range)")
    selection: bool = Field(True, description="keep only spectra marked as normalised (--no-selection: false)")
    elements: list[str] | None = Field(None, description="keep only these absorbing elements (--elements; "
                                                          "null: all)")
    drop_elements: list[str] | None = Field(None, description="drop these absorbing elements (--drop-elements)")
    exact_duplicates: bool = Field(True, description="remove exact duplicates (--no-exact-duplicates: false)")
    near_duplicates: bool = Field(True, description="remove near duplicates (--no-near-duplicates: false)")
    near_duplicate_tol: float = Field(0.005, ge=0, description="near duplicates: tolerance on every grid point "
                                                               "(--near-duplicate-tol)")
    near_duplicate_elements: list[str] | None = Field(
        None, description="elements for near-duplicate removal (--near-duplicate-elements; null: all)")
    outliers: bool = Field(True, description="per-element statistical filter (--no-outliers: false)")
    sigma: float = Field(3.0, gt=0, description="outlier band in standard deviations (--sigma)")
    batch_size: int = Field(8192, ge=1, description="spectra per record batch (--batch-size)")

    @field_validator("elements", "drop_elements", "near_duplicate_elements")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [element_symbol(s) for s in v]

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> CurateOptions:
        """Named settings: ``"default"`` (every step, all elements) or ``"paper"`` (plus Z < 52
        without noble gases and near duplicates only in Cd, Zn, Cr, S, as in the paper).

        Raises
        ------
        DataError
            For an unknown preset name or an invalid override.
        """
        base = dict(preset_options(name))
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(base, f"preset {name}")

    def validate(self) -> None:
        """Raise :class:`DataError` naming the first invalid setting (values assigned without
        validation, e.g. by ``model_construct``)."""
        type(self).from_dict(self.model_dump(), "curate options")

    @property
    def step(self) -> float:
        """Grid spacing in eV (``window / n_points``)."""
        return float(self.window) / int(self.n_points)


#: names of :func:`preset_options`
CURATE_PRESETS = ("default", "paper")


def preset_options(name: str) -> dict[str, Any]:
    """The options a curate preset sets: ``"default"`` none, ``"paper"`` the elements and
    near-duplicate elements of the paper.

    Raises
    ------
    DataError
        For an unknown preset name.
    """
    if name == "default":
        return {}
    if name == "paper":
        return {"elements": paper_elements(), "near_duplicate_elements": list(PAPER_NEAR_DUPLICATE_ELEMENTS)}
    raise DataError(f"unknown curate preset {name!r}: expected 'default' or 'paper'")


def group_label(element: str, edge: str) -> str:
    """Report / grid key of an (element, edge) pair.

    Parameters
    ----------
    element : str
        Absorbing element symbol.
    edge : str
        Edge name (``"K"``, ``"L3"``, ...).

    Returns
    -------
    str
        ``"Cu"`` for K edges (the paper's per-element grids), ``"Cu L3"`` otherwise.
    """
    return element if edge == "K" else f"{element} {edge}"


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _open(path: Path) -> pq.ParquetFile:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        # buffered reads: memory follows the batch size, not the row-group size
        return pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def check_inputs(paths: Sequence[Path]) -> list[int]:
    """Check every input has ``absorbing_element``, ``energy`` and ``mu`` list columns.

    Parameters
    ----------
    paths : sequence of Path
        Parquet files.

    Returns
    -------
    list of int
        Row count of each file.

    Raises
    ------
    DataError
        Naming the file and the missing or mistyped column.
    """
    rows = []
    for p in paths:
        f = _open(p)
        schema = f.schema_arrow
        for col in ("absorbing_element", "energy", "mu"):
            if col not in schema.names:
                raise DataError(f"{p}: missing column {col!r} (needs absorbing_element, energy, mu)")
        for col in ("energy", "mu"):
            t = schema.field(col).type
            if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
                raise DataError(f"{p}: field {col!r} must be a list of numbers, found {t}")
        rows.append(f.metadata.num_rows)
    return rows


def _read_batches(paths: Sequence[Path], columns: Sequence[str], batch_size: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    for i, p in enumerate(paths):
        f = _open(p)
        cols = [c for c in columns if c in f.schema_arrow.names]
        try:
            for b in f.iter_batches(batch_size=batch_size, columns=cols):
                yield i, b
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{p}: cannot read column(s) {', '.join(cols)} ({exc})") from None


def _batches(paths: Sequence[Path], columns: Sequence[str], batch_size: int,
             depth: int = 2, bar=None) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Record batches of every input in order, decoded ``depth`` batches ahead in a thread
    (Parquet decoding releases the GIL, so it overlaps the numpy / numba work on 2 cores);
    ``bar`` (tqdm) advances by the rows of each batch handed out."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in _read_batches(paths, columns, batch_size):
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if bar is not None:
                bar.update(item[1].num_rows)
    finally:
        stop.set()
        if bar is not None:
            bar.close()


def _flat(col: pa.Array, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Values (float64) and offsets of a list column."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    off = np.asarray(col.offsets, dtype=np.int64)
    vals = col.values
    try:
        v = vals.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    except (pa.ArrowInvalid, TypeError, ValueError) as exc:
        raise DataError(f"{where}: field {name!r} must hold numbers ({exc})") from None
    return v, off  # offsets index the (unsliced) values buffer


class _Groups:
    """Global codes of (element, edge) groups, built while streaming."""

    def __init__(self) -> None:
        self.code: dict[tuple[str, str], int] = {}
        self.labels: list[str] = []
        self.elements: list[str] = []
        self._norm_cache: dict[str, str | None] = {}

    def _element(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        if raw not in self._norm_cache:
            from xasml.spectrum import normalize_element

            try:
                self._norm_cache[raw] = normalize_element(raw)
            except SpectrumError:
                self._norm_cache[raw] = None
        return self._norm_cache[raw]

    def encode(self, batch: pa.RecordBatch) -> np.ndarray:
        """Group code per row (-1 where the element is missing or unknown)."""
        n = batch.num_rows
        el = pc.dictionary_encode(batch.column("absorbing_element").cast(pa.string()))
        el_idx = el.indices.to_numpy(zero_copy_only=False)
        el_idx = np.where(np.isnan(el_idx.astype(float)), -1, el_idx).astype(np.int64)
        el_dict = el.dictionary.to_pylist()
        if "edge" in batch.schema.names:
            ed = pc.dictionary_encode(batch.column("edge").cast(pa.string()))
            ed_idx = ed.indices.to_numpy(zero_copy_only=False)
            ed_idx = np.where(np.isnan(ed_idx.astype(float)), -1, ed_idx).astype(np.int64)
            ed_dict = [str(e).strip().upper() if e is not None else "K" for e in ed.dictionary.to_pylist()]
        else:
            ed_idx = np.zeros(n, dtype=np.int64)
            ed_dict = ["K"]
        ned = len(ed_dict) + 1
        pair = (el_idx + 1) * ned + (ed_idx + 1)
        upair, inv = np.unique(pair, return_inverse=True)
        lut = np.empty(len(upair), dtype=np.int64)
        for t, pr in enumerate(upair.tolist()):
            ei, di = pr // ned - 1, pr % ned - 1
            sym = self._element(el_dict[ei]) if ei >= 0 else None
            if sym is None:
                lut[t] = -1
                continue
            edge = ed_dict[di] if di >= 0 else "K"
            key = (sym, edge)
            if key not in self.code:
                self.code[key] = len(self.labels)
                self.labels.append(group_label(sym, edge))
                self.elements.append(sym)
            lut[t] = self.code[key]
        return lut[inv.ravel()]


def _normalisation(batch: pa.RecordBatch) -> np.ndarray:
    """Per row: 1 normalised, 0 not normalised, -1 unknown.

    A boolean ``normalized`` column decides where it is not null; otherwise ``kind``:
    ``norm``/``standardized`` normalised, ``mu``/``raw`` not - except ``mu`` rows whose ``source``
    is a FEFF ``xmu.dat``, which FEFF normalises itself; other kinds (``average``, null) unknown.
    """
    n = batch.num_rows
    out = np.full(n, -1, dtype=np.int8)
    names = batch.schema.names
    if "kind" in names:
        k = pc.dictionary_encode(batch.column("kind").cast(pa.string()))
        idx = k.indices.to_numpy(zero_copy_only=False).astype(float)
        vals = [str(v).strip().lower() if v is not None else None for v in k.dictionary.to_pylist()]
        lut = np.array([1 if v in NORMALISED_KINDS else 0 if v in RAW_KINDS else -1 for v in vals] + [-1],
                       dtype=np.int8)
        idx = np.where(np.isnan(idx), len(vals), idx).astype(np.int64)
        out = lut[idx]
        if "source" in names and (out == 0).any():
            # FEFF's xmu.dat mu is normalised by FEFF (header "xsedge+ 50, used to normalize mu"),
            # whatever the builder called it
            feff = pc.ends_with(batch.column("source").cast(pa.string()), "xmu.dat").fill_null(False)
            out = np.where((out == 0) & feff.to_numpy(zero_copy_only=False), 1, out).astype(np.int8)
    if "normalized" in names:
        col = batch.column("normalized")
        try:
            v = col.cast(pa.bool_())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(f"field 'normalized' must be boolean, found {col.type}") from None
        known = v.is_valid().to_numpy(zero_copy_only=False)
        val = v.fill_null(False).to_numpy(zero_copy_only=False)
        out = np.where(known, val.astype(np.int8), out).astype(np.int8)
    return out


# ---------------------------------------------------------------------------------------------
# the curation
# ---------------------------------------------------------------------------------------------
def curate_parquet(inputs: Sequence[str | Path], out: str | Path, options: CurateOptions | None = None,
                   report_path: str | Path | None = None, extra_report: dict | None = None,
                   show_progress: bool = False) -> dict:
    """Curate site spectra stored in dataset-format Parquet files into one curated dataset.

    Parameters
    ----------
    inputs : sequence of str or Path
        Parquet files with at least ``absorbing_element``, ``energy`` (list, eV) and ``mu``
        (list) columns; ``edge`` (default ``"K"``), ``kind``/``normalized`` (step 2),
        ``material_id``, ``absorbing_index``, ``multiplicity``, ``source`` are used when present.
        Read as one stream, file after file (row order = priority of duplicates).
    out : str or Path
        Output Parquet file (xasml dataset format, ``xasml.kind = "curated"``, row
        ``kind = "standardized"``, ``energy`` = the element's grid, extra column ``input_row``:
        0-based row in the concatenated input). Written atomically.
    options : CurateOptions, optional
        Steps and parameters (default: :class:`CurateOptions` ()).
    report_path : str or Path, optional
        Where to write the JSON report (a Markdown summary goes next to it, ``.md``).
    extra_report : dict, optional
        Merged into the report (e.g. conversion counts of non-Parquet inputs).
    show_progress : bool
        Print one line per pass to stderr.

    Returns
    -------
    dict
        The report: ``settings``, ``grids`` (per element: ``start``, ``step``, ``n_points``),
        ``elements`` (per element: ``input``, ``removed`` {reason: n}, ``kept``, notes),
        ``totals``, ``steps`` (removals per step), ``near_duplicate_search``, ``notes``,
        ``timings_s``, ``spectra_per_second``, ``peak_rss_mib_after`` (per pass).

    Raises
    ------
    DataError
        If an input is missing, not Parquet, lacks a required column, or an option is invalid.
    """
    t_all = time.perf_counter()
    opt = options or CurateOptions()
    opt.validate()
    paths = [Path(p) for p in inputs]
    if not paths:
        raise DataError("no input files")
    n_total = int(sum(check_inputs(paths)))
    N = int(opt.n_points)
    bs = int(opt.batch_size)
    clock = _Clock()
    log = (lambda msg: print(f"xasml curate: {msg}", file=sys.stderr)) if show_progress else (lambda msg: None)

    groups = _Groups()
    # tqdm bars over the spectra of each pass (shown when stderr is a terminal and not --quiet)
    bar = (lambda desc: progress_bar(n_total, desc)) if show_progress else (lambda desc: None)
    group, gmin = _pass1_groups(paths, groups, n_total, bs, bar=bar("curate pass 1/3: groups"))
    clock.stop("pass1_min_energy")
    log(f"pass 1: {n_total} spectra, {len(groups.labels)} elements ({clock.timings['pass1_min_energy']:.1f} s)")
    starts = _grid_starts(gmin, groups, opt.start)
    group_kept, group_near = _group_switches(groups, opt)
    rows = _Rows.create(group, n_blocks=len(alg.block_bounds(N)))
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = tempfile.TemporaryDirectory(prefix=".xasml-curate-", dir=out_path.parent)
    spill_path = Path(tmpdir.name) / "gridded.f8"
    try:
        ring = _Ring(bs, N)
        clock.start()
        t_interp, t_keys = _pass2_grid(paths, rows, starts, group_kept, opt, spill_path, ring,
                                       bar=bar("curate pass 2/3: grid"))
        clock.stop("pass2_grid")
        clock.timings["pass2_interpolation"] = t_interp
        clock.timings["pass2_keys"] = t_keys
        log(f"pass 2: gridded {int((rows.status == 0).sum())} spectra ({clock.timings['pass2_grid']:.1f} s)")

        near_stats = _remove_duplicates(rows, spill_path, N, group_near, opt, clock)
        rows.keys = None
        log(f"duplicates: {int((rows.status == 40).sum())} exact, {int((rows.status == 50).sum())} near "
            f"({clock.timings['exact_duplicates'] + clock.timings['near_duplicates']:.1f} s)")

        clock.start()
        bounds = _outlier_bounds(rows, spill_path, N, len(groups.labels), bs, float(opt.sigma)) \
            if opt.outliers and n_total else None
        clock.stop("outlier_statistics")

        clock.start()
        grids = {groups.labels[k]: {"start": float(starts[k]), "step": opt.step, "n_points": N}
                 for k in range(len(groups.labels)) if np.isfinite(starts[k])}
        schema = _output_schema(opt, grids, paths)
        grid_table = starts[:, None] + opt.step * np.arange(N, dtype=np.float64)[None, :]
        n_written = _pass3_output(paths, rows, bounds, grid_table, groups, schema, out_path, spill_path, ring, bs,
                                  bar=bar("curate pass 3/3: output"))
        clock.stop("pass3_output")
    finally:
        tmpdir.cleanup()
    total = time.perf_counter() - t_all
    clock.timings["total"] = total
    report = _report(groups, rows.group, rows.status, rows.filled, rows.norm_unknown, opt, grids, near_stats,
                     clock.timings, n_total, n_written, paths, out_path)
    report["peak_rss_mib_after"] = clock.peak_rss
    if extra_report:
        report.update(extra_report)
    log(f"kept {n_written} of {n_total} spectra in {total:.1f} s ({report['spectra_per_second']:.0f} spectra/s)")
    if report_path is not None:
        write_report(report, report_path)
    return report


class _Clock:
    """Seconds and peak memory after each named stage of a curation (the report's ``timings_s``
    and ``peak_rss_mib_after``)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.peak_rss: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def start(self) -> None:
        """Start timing the next stage."""
        self._t0 = time.perf_counter()

    def stop(self, stage: str) -> None:
        """Record the stage's seconds and the peak memory so far; the next stage starts now."""
        self.timings[stage] = time.perf_counter() - self._t0
        self.peak_rss[stage] = _rss_mib()
        self._t0 = time.perf_counter()


@dataclass
class _Rows:
    """Per-row bookkeeping of a curation, over the rows of all inputs in order."""

    group: np.ndarray         #: (element, edge) group code; -1 where the element is missing or unknown
    status: np.ndarray        #: 0 = kept so far, else the code of the step that removed the row (``_CODE``)
    filled: np.ndarray        #: grid points below the spectrum's first energy took its first value
    norm_unknown: np.ndarray  #: neither ``normalized`` nor ``kind`` says whether the row is normalised
    spilled: np.ndarray       #: the gridded spectrum is in the spill file (in row order)
    keys: np.ndarray | None   #: block-mean fingerprints of the gridded spectra (duplicate steps only)

    @classmethod
    def create(cls, group: np.ndarray, n_blocks: int) -> _Rows:
        n = group.size
        return cls(group=group, status=np.zeros(n, dtype=np.int8), filled=np.zeros(n, dtype=bool),
                   norm_unknown=np.zeros(n, dtype=bool), spilled=np.zeros(n, dtype=bool),
                   keys=np.zeros((n, n_blocks), dtype=np.float64))


class _Ring:
    """Reused ``(batch_size, n_points)`` buffers handed out in turn: a buffer can still be queued
    for a background write while the next batches fill others (at most 3 in use: 2 queued writes)."""

    def __init__(self, rows: int, cols: int, n: int = 4) -> None:
        self._bufs = [np.empty((rows, cols)) for _ in range(n)]
        self._i = 0

    def next(self) -> np.ndarray:
        buf = self._bufs[self._i % len(self._bufs)]
        self._i += 1
        return buf


def _pass1_groups(paths: Sequence[Path], groups: _Groups, n_total: int, bs: int,
                  bar=None) -> tuple[np.ndarray, list[float]]:
    """Pass 1: the group code of every row and each group's minimum first energy (valid rows)."""
    group = np.full(n_total, -1, dtype=np.int64)
    gmin: list[float] = []
    r0 = 0
    for fi, b in _batches(paths, ("absorbing_element", "edge", "energy"), bs, bar=bar):
        g = groups.encode(b)
        n = b.num_rows
        group[r0:r0 + n] = g
        e, off = _flat(b.column("energy"), "energy", str(paths[fi]))
        ok = alg.row_validity(e, None, off, None) & (g >= 0)
        while len(gmin) < len(groups.labels):
            gmin.append(np.inf)
        if ok.any():
            first = e[off[:-1][ok]]
            gg = g[ok]
            m = np.full(len(groups.labels), np.inf)
            np.minimum.at(m, gg, first)
            for k in np.flatnonzero(np.isfinite(m)):
                gmin[k] = min(gmin[k], float(m[k]))
        r0 += n
    return group, gmin


def _grid_starts(gmin: list[float], groups: _Groups, explicit: dict[str, float] | None) -> np.ndarray:
    """First grid energy of each group: its minimum energy, or the explicit start given for it."""
    G = len(groups.labels)
    starts = np.array(gmin + [np.inf] * (G - len(gmin)), dtype=np.float64)
    for label, s in (explicit or {}).items():
        if label in groups.labels:
            starts[groups.labels.index(label)] = float(s)
    return starts


def _group_switches(groups: _Groups, opt: CurateOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per group: kept by the element filter (step 3); subject to near-duplicate removal (step 4)."""
    keep_el = set(opt.elements) if opt.elements else None
    drop_el = set(opt.drop_elements or ())
    group_kept = np.array([(keep_el is None or el in keep_el) and el not in drop_el for el in groups.elements],
                          dtype=bool)
    near_el = set(opt.near_duplicate_elements) if opt.near_duplicate_elements else None
    group_near = np.array([opt.near_duplicates and (near_el is None or el in near_el) for el in groups.elements],
                          dtype=bool)
    return group_kept, group_near


def _pass2_grid(paths: Sequence[Path], rows: _Rows, starts: np.ndarray, group_kept: np.ndarray,
                opt: CurateOptions, spill_path: Path, ring: _Ring, bar=None) -> tuple[float, float]:
    """Pass 2: selection, element filter, interpolation onto the grid and block-mean keys.

    The gridded spectra are appended to ``spill_path`` in row order (``rows.spilled``).

    Returns
    -------
    tuple of float
        Seconds spent interpolating and computing keys.
    """
    N = int(opt.n_points)
    bounds = alg.block_bounds(N)
    r0 = 0
    t_interp = t_hash = 0.0
    columns = ("absorbing_element", "edge", "energy", "mu", "kind", "normalized", "source")
    with open(spill_path, "wb") as spill, _Background() as bg:
        for fi, b in _batches(paths, columns, int(opt.batch_size), bar=bar):
            n = b.num_rows
            sl = slice(r0, r0 + n)
            g = rows.group[sl]
            st = np.zeros(n, dtype=np.int8)
            norm = _normalisation(b)
            if opt.selection:
                st[norm == 0] = _CODE["not_normalised"]
            rows.norm_unknown[sl] = norm == -1
            gk = np.where(g >= 0, group_kept[np.maximum(g, 0)], True)
            st[(st == 0) & ~gk] = _CODE["element_filtered"]
            st[(st == 0) & (g < 0)] = _CODE["invalid"]
            todo = st == 0
            if todo.any():
                ti = time.perf_counter()
                e, eoff = _flat(b.column("energy"), "energy", str(paths[fi]))
                m, moff = _flat(b.column("mu"), "mu", str(paths[fi]))
                Yok, ist, fl = alg.interpolate_rows(e, m, eoff, moff, starts[np.maximum(g, 0)], opt.step, N,
                                                    opt.fill_below, active=todo, out=ring.next(), compact=True)
                for code_i, code_s in _INTERP_CODE.items():
                    st[ist == code_i] = code_s
                rows_ok = np.flatnonzero(ist == alg.OK)
                rows.filled[r0 + rows_ok] = fl[rows_ok]
                t_interp += time.perf_counter() - ti
                th = time.perf_counter()
                rows.keys[r0 + rows_ok] = alg.block_means(Yok, bounds)
                rows.spilled[r0 + rows_ok] = True
                if rows_ok.size:
                    bg.submit(spill.write, memoryview(Yok).cast("B"))
                t_hash += time.perf_counter() - th
            rows.status[sl] = st
            r0 += n
    return t_interp, t_hash


class _SpillReader:
    """Gridded spectra of given rows, read back from the spill file by positional reads (no
    memory map: fetched rows do not stay resident)."""

    def __init__(self, path: Path, spilled: np.ndarray, n_points: int) -> None:
        self._path = path
        self._pos = np.cumsum(spilled) - 1  # row -> position in the spill
        self._n = n_points
        self._fd = -1

    def __enter__(self) -> _SpillReader:
        self._fd = os.open(self._path, os.O_RDONLY)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._fd)

    def fetch(self, rows: np.ndarray) -> np.ndarray:
        row_bytes = self._n * 8
        buf = b"".join([os.pread(self._fd, row_bytes, int(p) * row_bytes) for p in self._pos[rows]])
        return np.frombuffer(buf, dtype=np.float64).reshape(len(rows), self._n)


def _remove_duplicates(rows: _Rows, spill_path: Path, N: int, group_near: np.ndarray, opt: CurateOptions,
                       clock: _Clock) -> dict:
    """Step 4: exact duplicates, then near duplicates in the groups of ``group_near``
    (``rows.status`` updated; stages ``exact_duplicates`` and ``near_duplicates`` timed).

    Returns
    -------
    dict
        Counts of the near-duplicate search (``candidates``, ``prefiltered``, ``pairs``).
    """
    clock.start()
    near_stats = {"candidates": 0, "prefiltered": 0, "pairs": 0}
    with _SpillReader(spill_path, rows.spilled, N) as spill:
        if opt.exact_duplicates:
            dup = alg.exact_duplicates(rows.group, rows.keys, rows.status == 0, spill.fetch)
            rows.status[dup] = _CODE["exact_duplicate"]
        clock.stop("exact_duplicates")
        for code in np.flatnonzero(group_near):
            cand = np.flatnonzero((rows.status == 0) & (rows.group == code))
            if cand.size < 2:
                continue
            i, j, st_ = alg.near_duplicate_pairs(rows.keys[cand], float(opt.near_duplicate_tol),
                                                 lambda local, cand=cand: spill.fetch(cand[local]))
            for k in near_stats:
                near_stats[k] += st_[k]
            removed = alg.greedy_keep_first(cand.size, i, j)
            rows.status[cand[removed]] = _CODE["near_duplicate"]
    clock.stop("near_duplicates")
    return near_stats


def _outlier_bounds(rows: _Rows, spill_path: Path, N: int, G: int, bs: int,
                    sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 5's acceptance band per group: mean ± sigma * std of the remaining spectra (two
    sequential reads of the spill)."""
    mean = _group_reduce(spill_path, rows.spilled, N, rows.group, rows.status, G, bs, None)
    cnt = np.bincount(rows.group[(rows.status == 0) & (rows.group >= 0)], minlength=G).astype(float)
    mean = mean / np.maximum(cnt, 1)[:, None]
    var = _group_reduce(spill_path, rows.spilled, N, rows.group, rows.status, G, bs, mean) \
        / np.maximum(cnt, 1)[:, None]
    return alg.outlier_bounds(mean, np.sqrt(var), sigma)


def _output_schema(opt: CurateOptions, grids: dict, paths: Sequence[Path]) -> pa.Schema:
    """The dataset-format schema of the output (plus ``input_row``) with its ``xasml.*`` metadata."""
    metadata = {"curate": {"settings": opt.to_dict(), "grids": grids, "inputs": [str(p) for p in paths]}}
    schema = SCHEMA.append(pa.field("input_row", pa.int64()))
    return schema.with_metadata({
        "xasml.format_version": json.dumps(FORMAT_VERSION),
        "xasml.kind": json.dumps(OUTPUT_KIND),
        "xasml.attribution": json.dumps("curated by xasml curate from: " + ", ".join(p.name for p in paths)),
        "xasml.metadata": json.dumps(metadata),
    })


def _pass3_output(paths: Sequence[Path], rows: _Rows, bounds: tuple[np.ndarray, np.ndarray] | None,
                  grid_table: np.ndarray, groups: _Groups, schema: pa.Schema, out_path: Path, spill_path: Path,
                  ring: _Ring, bs: int, bar=None) -> int:
    """Pass 3: the outlier test (``bounds``: lower and upper band per group, None = no test) and
    the kept rows written atomically to ``out_path``.

    Returns
    -------
    int
        Rows written.
    """
    meta_cols = ("material_id", "absorbing_element", "edge", "absorbing_index", "multiplicity", "source")
    n_written = 0
    with atomic_path(out_path) as tmp, open(spill_path, "rb") as spill:
        # dictionary-encode the strings and the (few distinct) grid energies, not mu
        writer = pq.ParquetWriter(tmp, schema, compression="zstd",
                                  use_dictionary=["material_id", "absorbing_element", "edge", "source", "kind",
                                                  "energy.list.element"])
        try:
            with _Background() as bg:
                r0 = 0
                for fi, b in _batches(paths, meta_cols, bs, bar=bar):
                    n = b.num_rows
                    sp = rows.spilled[r0:r0 + n]
                    k = int(sp.sum())
                    Ysp = ring.next()[:k]
                    if k:
                        spill.readinto(memoryview(Ysp).cast("B"))
                    loc = np.cumsum(sp) - 1                  # row in the batch -> row in Ysp
                    st = rows.status[r0:r0 + n]
                    g = rows.group[r0:r0 + n]
                    if bounds is not None:
                        _mark_outliers(st, g, Ysp, loc, *bounds)
                    keep = np.flatnonzero(st == 0)
                    if keep.size:
                        table = _output_table(b, keep, Ysp[loc[keep]], g, grid_table, groups, r0, schema,
                                              str(paths[fi]))
                        bg.submit(writer.write_table, table)
                        n_written += keep.size
                    r0 += n
        finally:
            writer.close()
    return n_written


def _mark_outliers(st: np.ndarray, g: np.ndarray, Ysp: np.ndarray, loc: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray) -> None:
    """Mark (in ``st``, a view of the batch's status) kept rows with a point outside their group's band."""
    cand = np.flatnonzero(st == 0)
    if cand.size:
        gc = g[cand]
        yc = Ysp[loc[cand]]
        bad = ~np.all((yc >= lower[gc]) & (yc <= upper[gc]), axis=1)
        st[cand[bad]] = _CODE["outlier"]


class _Background:
    """Run calls (file writes) one after another in a helper thread, at most 2 pending, so
    that writing overlaps the next batch's work; errors re-raise in the caller."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._ex = ThreadPoolExecutor(max_workers=1)
        self._pending: list = []

    def submit(self, fn, *args) -> None:
        self._pending.append(self._ex.submit(fn, *args))
        while len(self._pending) > 2:
            self._pending.pop(0).result()

    def __enter__(self) -> "_Background":
        return self

    def __exit__(self, *exc) -> None:
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._ex.shutdown(wait=True)


def _rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``getrusage``; Linux reports KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(r / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _group_reduce(spill_path: Path, spilled: np.ndarray, N: int, group: np.ndarray, status: np.ndarray, G: int,
                  bs: int, mean: np.ndarray | None) -> np.ndarray:
    """Per-group sum of the kept spectra (``mean`` None) or of their squared deviations."""
    acc = np.zeros((G, N))
    rows_sp = np.flatnonzero(spilled)
    buf = np.empty((bs, N))
    with open(spill_path, "rb") as f:
        for a in range(0, rows_sp.size, bs):
            rows = rows_sp[a:a + bs]
            Y = buf[: rows.size]
            f.readinto(memoryview(Y).cast("B"))
            idx = np.flatnonzero(status[rows] == 0)
            if not idx.size:
                continue
            g = group[rows[idx]]
            o = np.argsort(g, kind="stable")
            gs = g[o]
            X = Y[idx[o]]
            if mean is not None:
                X = (X - mean[gs]) ** 2
            ug, first = np.unique(gs, return_index=True)
            acc[ug] += np.add.reduceat(X, first, axis=0)
    return acc


def _output_table(b: pa.RecordBatch, keep: np.ndarray, Ykeep: np.ndarray, g: np.ndarray, grid_table: np.ndarray,
                  groups: _Groups, r0: int, schema: pa.Schema, where: str) -> pa.Table:
    n = keep.size
    N = Ykeep.shape[1]
    take = pa.array(keep)
    names = b.schema.names

    def col(name: str, typ: pa.DataType, default: Any) -> pa.Array:
        if name in names:
            c = b.column(name).take(take)
            try:
                return c.cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(f"{where}: field {name!r} cannot be read as {typ}") from None
        return pa.array([default] * n, type=typ)

    gk = g[keep]
    lab_el = np.array(groups.elements, dtype=object)[gk]
    edges = np.array([k[1] for k in sorted(groups.code, key=groups.code.get)], dtype=object)[gk]
    offsets = pa.array(np.arange(0, (n + 1) * N, N, dtype=np.int32))
    energy = pa.ListArray.from_arrays(offsets, pa.array(grid_table[gk].ravel()))
    mu = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(Ykeep).ravel()))
    source = col("source", pa.string(), None)
    if "source" not in names:
        source = pa.array([where] * n, type=pa.string())
    arrays = [
        col("material_id", pa.string(), None),
        pa.array(lab_el.tolist(), type=pa.string()),
        pa.array(edges.tolist(), type=pa.string()),
        col("absorbing_index", pa.int64(), None),
        col("multiplicity", pa.int64(), 1),
        energy,
        mu,
        source,
        pa.array(["standardized"] * n, type=pa.string()),
        pa.array(r0 + keep, type=pa.int64()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _report(groups: _Groups, group: np.ndarray, status: np.ndarray, filled: np.ndarray, norm_unknown: np.ndarray,
            opt: CurateOptions, grids: dict, near_stats: dict, timings: dict, n_total: int, n_written: int,
            paths: Sequence[Path], out: Path) -> dict:
    labels = groups.labels + ["?"]  # "?" = missing or unknown element
    gi = np.where(group >= 0, group, len(groups.labels))
    L = len(labels)
    per_code = {code: np.bincount(gi[status == code], minlength=L) for _, _, code in REASONS}
    kept = np.bincount(gi[status == 0], minlength=L)
    inp = np.bincount(gi, minlength=L)
    fill_k = np.bincount(gi[(status == 0) & filled], minlength=L)
    unk = np.bincount(gi[norm_unknown], minlength=L)
    unk_k = np.bincount(gi[norm_unknown & (status == 0)], minlength=L)
    elements = {}
    for k in np.argsort(labels, kind="stable"):
        if inp[k] == 0:
            continue
        removed = {reason: int(per_code[code][k]) for _, reason, code in REASONS if per_code[code][k]}
        elements[labels[k]] = {"input": int(inp[k]), "removed": removed, "kept": int(kept[k]),
                               "normalisation_unknown": int(unk[k]), "normalisation_unknown_kept": int(unk_k[k]),
                               "filled_below_first_energy_kept": int(fill_k[k])}
    steps: dict[str, dict[str, int]] = {}
    for step_name, reason, code in REASONS:
        steps.setdefault(step_name, {})[reason] = int((status == code).sum())
    removed_total = int(sum(sum(v.values()) for v in steps.values()))
    notes = []
    if norm_unknown.any():
        notes.append(f"{int(norm_unknown.sum())} spectra do not say whether they are normalised (no "
                     "'normalized' column, kind not norm/standardized/mu): kept by the selection step")
    if filled.any() and opt.fill_below == "edge":
        notes.append(f"{int((filled & (status == 0)).sum())} kept spectra start above their element's grid start: "
                     "grid points below their first energy hold the first mu value")
    return {
        "inputs": [str(p) for p in paths],
        "output": str(out),
        "settings": opt.to_dict(),
        "grids": grids,
        "totals": {"input": int(n_total), "removed": removed_total, "kept": int(n_written)},
        "steps": steps,
        "elements": elements,
        "near_duplicate_search": near_stats,
        "notes": notes,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "spectra_per_second": float(n_total / timings["total"]) if timings["total"] > 0 else None,
        "method": "Data Curation and Cleaning (paper Sec. III.B, steps 1-5); outliers: OmniXAS pointwise "
                  "mean ± sigma·std",
    }


def summary_markdown(report: dict) -> str:
    """A short Markdown summary of a curation report.

    Parameters
    ----------
    report : dict
        As returned by :func:`curate_parquet`.

    Returns
    -------
    str
        Title line, timing, one table (input, removals per reason, kept per element) and notes.
    """
    cols = ["not_normalised", "element_filtered", "invalid", "no_overlap", "grid_beyond_end", "grid_below_start",
            "exact_duplicate", "near_duplicate", "outlier"]
    used = [c for c in cols if any(e["removed"].get(c) for e in report["elements"].values())]
    t = report["totals"]
    lines = [f"# xasml curate: {t['kept']} of {t['input']} spectra kept", "",
             f"{report['timings_s']['total']:.1f} s, {report['spectra_per_second']:.0f} spectra/s. "
             f"Output: `{report['output']}`.", ""]
    lines.append("| element | input | " + " | ".join(used) + " | kept |")
    lines.append("|---|---:|" + "---:|" * len(used) + "---:|")
    for el, e in report["elements"].items():
        lines.append(f"| {el} | {e['input']} | " + " | ".join(str(e["removed"].get(c, 0)) for c in used)
                     + f" | {e['kept']} |")
    lines.append(f"| **total** | {t['input']} | "
                 + " | ".join(str(sum(e["removed"].get(c, 0) for e in report["elements"].values())) for c in used)
                 + f" | {t['kept']} |")
    if report.get("notes"):
        lines.append("")
        lines += [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict, path: str | Path) -> Path:
    """Write the JSON report to ``path`` and its Markdown summary next to it (``.md``), atomically.

    Parameters
    ----------
    report : dict
        As returned by :func:`curate_parquet`.
    path : str or Path
        The ``.json`` file.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    atomic_write_json(path, report)
    atomic_write_text(path.with_suffix(".md"), summary_markdown(report))
    return path

