"""The Tiled feed of ``xasml serve --tiled URI``: new runs on a Tiled server are analysed as they land.

NSLS-II beamlines publish their scans through Tiled (bluesky → databroker → Tiled). The feed
looks at the container at ``URI`` every ``poll`` seconds with the ``tiled`` client; each new node
that holds a table with an energy column and ion-chamber channels (``i0`` and ``it``/``itrans``,
optionally ``ir``/``irefer``; or a ``mu`` column) is written as an XDI file into the store's
``tiled/`` folder (so the run is read by the same readers as any file, the reference channel
calibrates it, and it can be downloaded) and queued for analysis. A node may be the table itself
or a bluesky run (a container whose ``primary`` stream holds the table, directly or under
``data``/``internal``). The absorber comes from the node's metadata (``element``/``edge``, or
``Element.symbol``/``Element.edge``, also under ``start``), else from the edge energy.
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xasml.errors import MissingExtraError, SpectrumError

__all__ = ["TiledFeed", "run_to_xdi_text"]

_ENERGY = ("energy", "energy_ev", "e", "mono_energy", "dcm_energy")
_I0 = ("i0", "i_0", "io")
_IT = ("it", "itrans", "i1", "i_t")
_IR = ("ir", "irefer", "iref", "i2", "i_r")
_MU = ("mu", "mutrans", "xmu")


def _pick(columns: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    low = {k.lower(): k for k in columns}
    for n in names:
        if n in low:
            return low[n], columns[low[n]]
    return None


def _meta_value(meta: dict, *keys: str) -> str | None:
    for scope in (meta, meta.get("start") if isinstance(meta.get("start"), dict) else {}):
        for k in keys:
            v = scope.get(k)
            if isinstance(v, str) and v.strip():
                return v.strip()
    return None


def run_to_xdi_text(key: str, table, metadata: dict, uri: str) -> str:
    """An XDI file of one Tiled run: energy (eV) and its channels, the absorber, and the run's
    numeric metadata as ``Tiled.<name>`` fields (for plotting a series against them).

    Parameters
    ----------
    key : str
        The node's key on the server.
    table : pandas.DataFrame or dict of arrays
        The run's data table.
    metadata : dict
        The node's metadata.
    uri : str
        The server container, recorded in the file.

    Returns
    -------
    str

    Raises
    ------
    SpectrumError
        Naming the run, when the table has no energy column or no absorption channels.
    """
    cols = {str(k): np.asarray(table[k], dtype=float) for k in list(table.keys())}
    src = f"tiled:{uri}/{key}"
    energy = _pick(cols, _ENERGY)
    if energy is None:
        raise SpectrumError(f"no energy column (expected one of {', '.join(_ENERGY)}); columns are "
                            f"{', '.join(cols) or 'none'}", source=src, field="energy")
    chans = []
    i0, it, ir, mu = _pick(cols, _I0), _pick(cols, _IT), _pick(cols, _IR), _pick(cols, _MU)
    if i0 is not None and it is not None:
        chans += [("i0", i0[1]), ("itrans", it[1])] + ([("irefer", ir[1])] if ir is not None else [])
    elif mu is not None:
        chans += [("mutrans", mu[1])]
    else:
        raise SpectrumError("no absorption channels (expected i0 and it/itrans, or mu); columns are "
                            f"{', '.join(cols)}", source=src, field="columns")
    names = ["energy"] + [c for c, _ in chans]
    lines = ["# XDI/1.0 xasml-serve-tiled/1"] + [f"# Column.{i}: {n}{' eV' if n == 'energy' else ''}"
                                                 for i, n in enumerate(names, start=1)]
    el = _meta_value(metadata, "element", "Element.symbol", "absorbing_element")
    edge = _meta_value(metadata, "edge", "Element.edge")
    if el:
        lines.append(f"# Element.symbol: {el}")
    if edge:
        lines.append(f"# Element.edge: {edge}")
    sample = _meta_value(metadata, "sample", "sample_name", "Sample.name")
    lines.append(f"# Sample.name: {sample or key}")
    for k, v in sorted(metadata.items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            tag = re.sub(r"[^A-Za-z0-9_]", "_", str(k))
            lines.append(f"# Tiled.{tag}: {v}")
    lines += [f"# Tiled.uri: {uri}", f"# Tiled.key: {key}", "# ///", f"# Tiled run {key}", "#-----",
              "# " + " ".join(names)]
    data = np.column_stack([energy[1]] + [a for _, a in chans])
    lines += [" ".join(f"{v:.10g}" for v in row) for row in data]
    return "\n".join(lines) + "\n"


def _table_of(node) -> tuple[Any, dict]:
    """(data table, metadata) of a node: a table node, or a bluesky run with a ``primary`` stream."""
    meta = dict(node.metadata or {})
    family = str(getattr(node, "structure_family", ""))
    if family.endswith("table"):
        return node.read(), meta
    if family.endswith("container"):
        for path in (("primary",), ("primary", "data"), ("primary", "internal")):
            try:
                sub = node
                for p in path:
                    sub = sub[p]
            except (KeyError, TypeError):
                continue
            if str(getattr(sub, "structure_family", "")).endswith("table"):
                return sub.read(), meta
            if path == ("primary", "data") and str(getattr(sub, "structure_family", "")).endswith("container"):
                return {k: sub[k].read() for k in sub}, meta
    raise SpectrumError(f"not a table or a run with a 'primary' table (structure family {family or 'unknown'})",
                        source=f"tiled:{getattr(node, 'uri', '')}")


class TiledFeed:
    """Poll a Tiled container and hand each new run on as an XDI file.

    Parameters
    ----------
    uri : str
        The container's URI (``http://host:port`` or ``.../api/v1/metadata/<path>`` as the
        client takes it).
    out_dir : Path
        Where the XDI files are written (the store's ``tiled/`` folder).
    submit : callable
        ``submit(origin, path, name=..., entry_path=...)``
        (:meth:`xasml.serve.service.ServeService.submit_file`).
    api_key : str, optional
    poll : float
        Seconds between looks at the server.
    on_error : callable, optional
        Called with a one-line message when the server cannot be reached or a run cannot be used.
    """

    def __init__(self, uri: str, out_dir: Path, submit: Callable, api_key: str | None = None, poll: float = 1.0,
                 on_error: Callable[[str], None] | None = None):
        self.uri = uri.rstrip("/")
        self.out_dir = Path(out_dir)
        self.submit = submit
        self.api_key = api_key
        self.poll = float(poll)
        self.on_error = on_error or (lambda msg: None)
        self.seen: set[str] = set()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None

    def start(self) -> "TiledFeed":
        """Start polling in a daemon thread.

        Raises
        ------
        MissingExtraError
            Without the ``tiled`` client (extra ``serve``).
        """
        try:
            import tiled.client  # noqa: F401 - only to fail early with the extra named
        except ImportError:
            raise MissingExtraError("tiled", "serve") from None
        self._thread = threading.Thread(target=self._run, name="xasml-tiled", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _error(self, msg: str) -> None:
        msg = " ".join(msg.split())[:400]
        if msg != self.last_error:
            self.on_error(msg)
        self.last_error = msg

    def _connect(self):
        from tiled.client import from_uri

        return from_uri(self.uri, api_key=self.api_key)

    def poll_once(self) -> int:
        """Look at the server once; return how many new runs were handed on."""
        if self._client is None:
            self._client = self._connect()
        keys = list(self._client)
        n = 0
        for key in keys:
            if key in self.seen or self._stop.is_set():
                continue
            self.seen.add(key)
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(key))[:100] or "run"
            try:
                table, meta = _table_of(self._client[key])
                text = run_to_xdi_text(str(key), table, meta, self.uri)
            except SpectrumError as exc:
                self._error(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - what the client raises for a run it cannot read
                self._error(f"tiled:{self.uri}/{key}: cannot be read ({type(exc).__name__}: {exc})")
                continue
            path = self.out_dir / f"{name}.xdi"
            # the same run written again keeps its file (and its content key): a restart analyses nothing twice
            if not (path.exists() and path.read_text() == text):
                from xasml.utils import atomic_write_text

                atomic_write_text(path, text)
            self.submit("tiled", path, name=str(key), entry_path=f"tiled:{self.uri}/{key}")
            n += 1
        self.last_error = None
        return n

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - server down, network: report and retry
                self._client = None
                self._error(f"tiled:{self.uri}: {type(exc).__name__}: {exc}")
            self._stop.wait(self.poll)
