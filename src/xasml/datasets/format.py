"""The xasml dataset file: one Parquet table of site (or element) spectra, with a schema.

Every capability stores its spectra in this one format, one row per spectrum::

    material_id        string    material identifier (mp-id, AMCSD key, sample name)
    absorbing_element  string    chemical symbol
    edge               string    "K", "L3", ...
    absorbing_index    int64     0-based site index in the structure (null for element averages)
    multiplicity       int64     number of equivalent sites (weight in element averages)
    energy             list<float64>   absolute energies, eV, strictly increasing
    mu                 list<float64>   absorption
    source             string    file the spectrum came from (relative to the dataset root)
    kind               string    "mu", "norm", "average", "standardized"
    ...                any further columns (labels, splits, descriptors) the task needs

File-level key/value metadata (Parquet schema metadata, JSON-encoded) carries
``xasml.format_version``, ``xasml.kind`` (the task), ``xasml.attribution`` (origin and licence of
the data) and anything else a builder records, e.g. grids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xasml.errors import DataError, SpectrumError
from xasml.spectrum import Spectrum
from xasml.utils import atomic_path

FORMAT_VERSION = 1
REQUIRED_COLUMNS = ("material_id", "absorbing_element", "edge", "absorbing_index", "multiplicity",
                    "energy", "mu", "source", "kind")

SCHEMA = pa.schema([
    ("material_id", pa.string()),
    ("absorbing_element", pa.string()),
    ("edge", pa.string()),
    ("absorbing_index", pa.int64()),
    ("multiplicity", pa.int64()),
    ("energy", pa.list_(pa.float64())),
    ("mu", pa.list_(pa.float64())),
    ("source", pa.string()),
    ("kind", pa.string()),
])


def spectra_to_frame(spectra: Sequence[Spectrum], extra: dict[str, Sequence] | None = None) -> pd.DataFrame:
    """Tabulate spectra (one row each) in the dataset schema, plus ``extra`` columns."""
    df = pd.DataFrame({
        "material_id": [s.material_id for s in spectra],
        "absorbing_element": [s.absorbing_element for s in spectra],
        "edge": [s.edge for s in spectra],
        "absorbing_index": pd.array([s.absorbing_index for s in spectra], dtype="Int64"),
        "multiplicity": [s.multiplicity for s in spectra],
        "energy": [np.asarray(s.energy, dtype=float) for s in spectra],
        "mu": [np.asarray(s.mu, dtype=float) for s in spectra],
        "source": [s.source for s in spectra],
        "kind": [s.kind for s in spectra],
    })
    for k, v in (extra or {}).items():
        if len(v) != len(df):
            raise DataError(f"extra column {k!r} has {len(v)} values for {len(df)} spectra")
        df[k] = list(v)
    return df


def write_dataset(path: str | Path, frame: pd.DataFrame, kind: str, metadata: dict[str, Any] | None = None,
                  attribution: str | dict | None = None) -> Path:
    """Write a dataset table to Parquet, atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.parquet`` file.
    frame : pandas.DataFrame
        Must have the :data:`REQUIRED_COLUMNS` (see :func:`spectra_to_frame`); other columns are kept.
    kind : str
        The task the dataset is for (``"topology"``, ``"local"``, ``"forward"``, ...).
    metadata : dict, optional
        JSON-serialisable file-level metadata (grids, builder options, ...).
    attribution : str or dict, optional
        Origin and licence of the data.

    Raises
    ------
    DataError
        If a required column is missing.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: dataset is missing column(s) {', '.join(missing)}")
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    # enforce the core schema for the required columns
    cols = []
    for name in table.column_names:
        col = table[name]
        if name in SCHEMA.names:
            col = col.cast(SCHEMA.field(name).type)
        cols.append(col)
    table = pa.Table.from_arrays(cols, names=table.column_names)
    meta = {
        "xasml.format_version": json.dumps(FORMAT_VERSION),
        "xasml.kind": json.dumps(kind),
        "xasml.attribution": json.dumps(attribution),
        "xasml.metadata": json.dumps(metadata or {}),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_dataset(path: str | Path, kind: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a dataset written by :func:`write_dataset`.

    Parameters
    ----------
    path : str or Path
        The ``.parquet`` file.
    kind : str, optional
        If given, the file's ``xasml.kind`` must equal it.

    Returns
    -------
    frame : pandas.DataFrame
        ``energy`` and ``mu`` cells are float64 numpy arrays.
    info : dict
        ``format_version``, ``kind``, ``attribution``, ``metadata``.

    Raises
    ------
    DataError
        If the file is missing, not Parquet, lacks the xasml metadata or required columns, or is
        of another kind.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: dataset file not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet dataset ({exc})") from None
    raw = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "xasml.format_version" not in raw:
        raise DataError(f"{path}: not an xasml dataset (no 'xasml.format_version' metadata)")
    info = {
        "format_version": json.loads(raw["xasml.format_version"]),
        "kind": json.loads(raw.get("xasml.kind", "null")),
        "attribution": json.loads(raw.get("xasml.attribution", "null")),
        "metadata": json.loads(raw.get("xasml.metadata", "{}")),
    }
    if info["format_version"] > FORMAT_VERSION:
        raise DataError(f"{path}: format version {info['format_version']} is newer than this xasml "
                        f"({FORMAT_VERSION}); upgrade xasml")
    if kind is not None and info["kind"] != kind:
        raise DataError(f"{path}: field 'xasml.kind' is {info['kind']!r}, expected {kind!r}")
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    frame = table.to_pandas()
    for col in ("energy", "mu"):
        frame[col] = [np.asarray(v, dtype=float) for v in frame[col]]
    return frame, info


def frame_to_spectra(frame: pd.DataFrame) -> list[Spectrum]:
    """Turn dataset rows back into validated :class:`Spectrum` objects.

    Raises
    ------
    SpectrumError
        Naming the row's ``source`` (or row number) if a stored spectrum is invalid.
    """
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        idx = row.absorbing_index
        try:
            out.append(Spectrum(energy=row.energy, mu=row.mu, absorbing_element=row.absorbing_element,
                                edge=row.edge, material_id=row.material_id,
                                absorbing_index=None if pd.isna(idx) else int(idx),
                                multiplicity=int(row.multiplicity), source=row.source or f"row {i}",
                                kind=row.kind))
        except SpectrumError:
            raise
    return out
