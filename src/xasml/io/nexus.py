"""HDF5/NeXus scans (BLISS at the ESRF, SOLEIL, generic NeXus) as column tables.

Read the way xraylarch's ``open_xas_source`` reads them (``larch.io.xas_data_source``; our own
code): each top-level ``NXentry`` is one scan; its 1-D counters are

* BLISS files (root attribute ``creator = "bliss"``): the datasets of ``<entry>/measurement``;
* SOLEIL files (``NXsource`` or ``NXinstrument`` named ``...SOLEIL...``): ``<entry>/scan_data``;
* other NeXus files: each ``NXdetector``'s ``data`` and ``NXpositioner``'s ``value`` in the
  entry's ``NXinstrument``,

sorted by name and normalised like column-file labels (:func:`xasml.io.headers.larch_name`).
The table then goes through the same channel vocabulary, μ choice and element identification as a
column file (:func:`xasml.io.columns.read_columns`). Only the 1-D datasets are read (h5py reads
each lazily); nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xasml.errors import MissingExtraError, SpectrumError

__all__ = ["HDF5_SIGNATURE", "is_hdf5", "read_nexus_table"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | Path) -> bool:
    """Whether a file is HDF5 (NeXus, BLISS, SOLEIL scans), by its first 8 bytes.

    Parameters
    ----------
    path : str or Path
        Any file; only its first 8 bytes are read.

    Returns
    -------
    bool
        True when the file starts with the HDF5 signature (:data:`HDF5_SIGNATURE`); False otherwise,
        also when it cannot be opened (the reader then names the problem).
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def _str(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _str(v[()])
    return str(v)


def _nxclass(obj) -> str:
    return _str(obj.attrs.get("NX_class", ""))


def _child_of_class(group, nxclass: str):
    for name in group:
        try:
            child = group[name]
        except (KeyError, OSError):
            continue  # broken link
        if _nxclass(child) == nxclass:
            return child
    return None


def _name_of(group) -> str:
    if group is not None and "name" in group:
        try:
            return _str(group["name"][()])
        except (KeyError, OSError, TypeError):
            return ""
    return ""


def read_nexus_table(path: str | Path, scan: str | int | None = None):
    """One scan of an HDF5/NeXus file as a :class:`~xasml.io.columns.ColumnFile`.

    Parameters
    ----------
    path : str or Path
        The HDF5 file.
    scan : str or int, optional
        The entry name (``"1.1"``, ``"scan_3"``) or its 1-based position; default the last entry,
        with a warning naming the others when there are several.

    Returns
    -------
    ColumnFile
        ``convention`` ``"nexus-bliss"``, ``"nexus-soleil"`` or ``"nexus"``; ``header`` holds the
        entry's ``title`` and ``start_time``; ``data_lines`` are 1-based point indices.

    Raises
    ------
    SpectrumError
        When the file is not readable HDF5, has no entry, the scan is not there, or the entry
        holds no 1-D counters of one common length.
    MissingExtraError
        When h5py is not installed (``pip install 'xasml[hdf5]'``).
    """
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is in the test environment
        raise MissingExtraError("h5py", "hdf5") from None
    from xasml.io.columns import ColumnFile
    from xasml.io.headers import HeaderInfo, unique_labels

    src = str(path)
    msgs: list[str] = []
    try:
        fh = h5py.File(path, "r", locking=False)
    except (OSError, ValueError) as exc:
        raise SpectrumError(f"not a readable HDF5 file ({str(exc)[:80]})", source=src) from None
    try:
        with fh:
            entries = []
            for name in fh:
                try:
                    obj = fh[name]
                except (KeyError, OSError):
                    continue
                if isinstance(obj, h5py.Group) and _nxclass(obj) in ("NXentry", ""):
                    entries.append(name)
            if not entries:
                raise SpectrumError("HDF5 file with no NeXus entry (scan) at its top level", source=src)
            if scan is None:
                pick = entries[-1]
                if len(entries) > 1:
                    msgs.append(f"{src}: {len(entries)} scans ({', '.join(entries[:8])}"
                                f"{', ...' if len(entries) > 8 else ''}): read {pick}, the last; choose another "
                                "with --scan")
            else:
                key = str(scan).strip()
                if key in entries:
                    pick = key
                elif key.isdigit() and 1 <= int(key) <= len(entries):
                    pick = entries[int(key) - 1]
                else:
                    raise SpectrumError(f"no scan {key!r} in the file: its scans are {', '.join(entries[:20])}",
                                        source=src, field="scan")
            entry = fh[pick]
            creator = _str(fh.attrs.get("creator", "")).lower()
            instrument = _child_of_class(entry, "NXinstrument")
            source = _child_of_class(entry, "NXsource") or (_child_of_class(instrument, "NXsource")
                                                            if instrument is not None else None)
            if creator == "bliss":
                convention, group_name = "nexus-bliss", "measurement"
            elif "soleil" in (_name_of(source) + _name_of(instrument)).lower():
                convention, group_name = "nexus-soleil", "scan_data"
            else:
                convention, group_name = "nexus", None
            arrays: list[tuple[str, np.ndarray]] = []
            if group_name is not None:
                group = entry.get(group_name)
                if group is None:
                    raise SpectrumError(f"scan {pick}: no '{group_name}' group of counters", source=src,
                                        field="scan")
                for name in group:
                    try:
                        d = group[name]
                    except (KeyError, OSError):
                        continue
                    if isinstance(d, h5py.Dataset) and d.ndim == 1 and d.dtype.kind in "fiu":
                        arrays.append((name, d))
            elif instrument is not None:
                for name in instrument:
                    try:
                        det = instrument[name]
                    except (KeyError, OSError):
                        continue
                    cls = _nxclass(det)
                    key = {"NXdetector": "data", "NXpositioner": "value"}.get(cls)
                    if key is None or not isinstance(det, h5py.Group) or key not in det:
                        continue
                    d = det[key]
                    if isinstance(d, h5py.Dataset) and d.ndim == 1 and d.dtype.kind in "fiu":
                        arrays.append((name, d))
            arrays.sort(key=lambda t: t[0])
            if not arrays:
                raise SpectrumError(f"scan {pick}: no 1-D counters ({convention})", source=src, field="scan")
            n = min(int(d.shape[0]) for _, d in arrays)
            lengths = {int(d.shape[0]) for _, d in arrays}
            if len(lengths) > 1:
                msgs.append(f"{src}: counters of scan {pick} have lengths {sorted(lengths)}: cut to {n} points")
            data_list = [(nm, np.asarray(d[:n], dtype=float)) for nm, d in arrays]
            header = {}
            for k in ("title", "start_time"):
                if k in entry:
                    try:
                        header[k] = _str(entry[k][()])
                    except (OSError, TypeError):
                        pass
    except SpectrumError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise SpectrumError(f"corrupt or unreadable HDF5 content ({type(exc).__name__}: {str(exc)[:80]})",
                            source=src) from None
    if n < 1:
        raise SpectrumError(f"scan {pick}: no data points", source=src)
    labels = unique_labels([nm for nm, _ in data_list], len(data_list))
    info = HeaderInfo(labels=labels, convention=convention)
    return ColumnFile(path=src, columns=labels, data={lab: arr for lab, (_, arr) in zip(labels, data_list)},
                      header=header, comments=[v for v in header.values()], data_lines=np.arange(1, n + 1),
                      separator="hdf5", decimal=".", warnings=msgs, convention=convention, info=info, scan=pick,
                      header_lines=[])
