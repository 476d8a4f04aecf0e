"""Inputs of ``xasml curate``: any collection of site spectra, as dataset-format Parquet.

Parquet files are used as they are. FEFF trees (``<root>/.../FEFF-XANES/<index>_<El>/xmu.dat``,
read compound by compound with :func:`xasml.io.feff.read_feff_compound`) and Materials Project
XAS documents (``.json`` files or folders of them, :func:`xasml.io.mp.read_mp_xas_document`)
are converted to the dataset format first, streamed in chunks into a temporary Parquet file.

FEFF's ``xmu.dat`` ``mu`` column is normalised by FEFF itself (header line ``xsedge+ 50, used to
normalize mu``), so converted FEFF spectra get ``kind="norm"``; Materials Project documents keep
``kind="average"`` (their normalisation is not recorded), which the selection step keeps and
counts as "normalisation unknown".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from xasml.datasets.format import SCHEMA, spectra_to_frame
from xasml.errors import DataError, SpectrumError
from xasml.spectrum import Spectrum

MAX_ERRORS = 20


def input_kind(path: str | Path) -> str:
    """``"parquet"``, ``"feff"`` (a folder with ``FEFF-XANES/*/xmu.dat`` below it) or ``"mp"``
    (a ``.json`` file or a folder of them).

    Raises
    ------
    DataError
        If the path does not exist or holds none of these.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: input not found")
    if p.is_file():
        if p.suffix.lower() in (".parquet", ".pq"):
            return "parquet"
        if p.suffix.lower() == ".json":
            return "mp"
        if p.name == "xmu.dat":
            return "feff"
        raise DataError(f"{p}: unsupported input (expected .parquet, an MP XAS .json document, or a folder of "
                        "FEFF-XANES/<index>_<El>/xmu.dat)")
    if next(_feff_files(p), None) is not None:
        return "feff"
    if any(f.name != "material.json" for f in p.rglob("*.json")):
        return "mp"
    raise DataError(f"{p}: no FEFF-XANES/<index>_<El>/xmu.dat files and no .json XAS documents found")


def _feff_files(root: Path) -> Iterator[Path]:
    for f in sorted(root.rglob("xmu.dat")):
        if f.parent.parent.name == "FEFF-XANES":
            yield f


def _read_each(sources: Iterable[Path], read, errors: list[str], counts: dict,
               count_spectra: bool = True) -> Iterator[Spectrum]:
    """The spectra ``read(source)`` gives (a Spectrum or a list of them) for each source; an
    unreadable source is counted and its error kept (up to ``MAX_ERRORS``), never fatal.
    ``counts["files"]`` grows by the spectra read (``count_spectra``) or by one per source."""
    for src in sources:
        try:
            got = read(src)
        except SpectrumError as exc:
            counts["unreadable"] += 1
            if len(errors) < MAX_ERRORS:
                errors.append(str(exc))
            continue
        got = got if isinstance(got, list) else [got]
        counts["files"] += len(got) if count_spectra else 1
        yield from got


def _feff_spectra(root: Path, errors: list[str], counts: dict) -> Iterator[Spectrum]:
    from xasml.io.feff import read_feff_compound, read_feff_xmu

    if root.is_file():
        got = _read_each([root], read_feff_xmu, errors, counts)
    else:
        folders = sorted({f.parent.parent.parent for f in _feff_files(root)})
        got = _read_each(folders, read_feff_compound, errors, counts)
    for s in got:
        yield s.replace(kind="norm")


def _mp_spectra(root: Path, errors: list[str], counts: dict) -> Iterator[Spectrum]:
    from xasml.io.mp import read_mp_xas_document

    files = [root] if root.is_file() else sorted(f for f in root.rglob("*.json") if f.name != "material.json")
    yield from _read_each(files, read_mp_xas_document, errors, counts, count_spectra=False)


def convert_to_parquet(path: str | Path, out: str | Path, chunk: int = 2000) -> dict:
    """Convert a FEFF tree or MP XAS document(s) to one dataset-format Parquet file, streaming.

    Parameters
    ----------
    path : str or Path
        FEFF root / compound folder / ``xmu.dat``, or MP ``.json`` file / folder.
    out : str or Path
        Parquet file to write (plain write: callers put it in a temporary folder).
    chunk : int
        Spectra per written row group (memory bound of the conversion).

    Returns
    -------
    dict
        ``input``, ``format``, ``files`` (spectra files read), ``spectra``, ``unreadable`` (files
        skipped) and ``errors`` (their one-line messages, at most 20).

    Raises
    ------
    DataError
        If the path holds no readable spectrum at all.
    """
    p = Path(path)
    kind = input_kind(p)
    if kind == "parquet":
        raise DataError(f"{p}: already Parquet, nothing to convert")
    errors: list[str] = []
    counts = {"files": 0, "unreadable": 0}
    it = _feff_spectra(p, errors, counts) if kind == "feff" else _mp_spectra(p, errors, counts)
    n = 0
    writer = pq.ParquetWriter(out, SCHEMA, compression="zstd")
    try:
        buf: list[Spectrum] = []
        for s in it:
            buf.append(s)
            if len(buf) >= chunk:
                n += _write_chunk(writer, buf)
                buf = []
        if buf:
            n += _write_chunk(writer, buf)
    finally:
        writer.close()
    if n == 0:
        first = f": {errors[0]}" if errors else ""
        raise DataError(f"{p}: no readable spectra ({counts['unreadable']} unreadable file(s)){first}")
    return {"input": str(p), "format": kind, "files": counts["files"], "spectra": n,
            "unreadable": counts["unreadable"], "errors": errors}


def _write_chunk(writer: pq.ParquetWriter, spectra: Sequence[Spectrum]) -> int:
    frame = spectra_to_frame(spectra)
    writer.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False))
    return len(spectra)


def prepare_inputs(paths: Sequence[str | Path], workdir: str | Path) -> tuple[list[Path], list[dict]]:
    """Parquet paths for :func:`xasml.curate.core.curate_parquet`, converting the other inputs.

    Parameters
    ----------
    paths : sequence of str or Path
        The user's inputs, in priority order.
    workdir : str or Path
        Folder for the converted files (temporary).

    Returns
    -------
    parquet_paths : list of Path
    conversions : list of dict
        One :func:`convert_to_parquet` summary per converted input.

    Raises
    ------
    DataError
        For a missing or unsupported input.
    """
    out, conv = [], []
    for i, p in enumerate(paths):
        p = Path(p)
        if input_kind(p) == "parquet":
            out.append(p)
            continue
        target = Path(workdir) / f"input{i:03d}.parquet"
        conv.append(convert_to_parquet(p, target))
        out.append(target)
    return out, conv


def curate(inputs: Sequence[str | Path], out: str | Path, options=None, report_path: str | Path | None = None,
           show_progress: bool = False) -> dict:
    """Curate any collection of site spectra (Parquet, FEFF trees, MP documents) into ``out``.

    Parameters and return value as :func:`xasml.curate.core.curate_parquet`; the report gains
    ``conversions`` (one entry per converted input: files read, spectra, unreadable files and
    their messages, and the seconds all conversions took; ``timings_s`` covers the curation of
    the converted files only).

    Raises
    ------
    DataError
        For a missing or unsupported input, a Parquet file without the needed columns, or
        invalid options.
    """
    import tempfile

    from xasml.curate.core import curate_parquet

    outp = Path(out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".xasml-curate-in-", dir=outp.parent) as work:
        t0 = time.perf_counter()
        parquet, conv = prepare_inputs(inputs, work)
        t_conv = round(time.perf_counter() - t0, 3)
        for c in conv:
            c["seconds_all_conversions"] = t_conv
        return curate_parquet(parquet, outp, options, report_path=report_path,
                              extra_report={"conversions": conv, "inputs": [str(p) for p in inputs]},
                              show_progress=show_progress)
