"""The result store of ``xasml serve``: one SQLite file (Python's ``sqlite3``), so that a restart
resumes without re-analysing or losing anything.

One row per input (a watched file, an upload, a Tiled run), keyed by its ``path`` and holding
the ``key`` of the content it was analysed from (size, modification time and SHA-256 of the
bytes): a file whose key is stored is not analysed again; a file that grew gets a new key and
its row is replaced.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ResultStore", "file_key", "finite"]


def finite(obj: Any) -> Any:
    """A JSON-ready copy of ``obj`` with every NaN or infinite float replaced by None.

    Browsers' ``JSON.parse`` rejects NaN and Infinity, so results go through this before the page
    or the store sees them.

    Parameters
    ----------
    obj : any
        Nested dicts, lists and tuples of numbers, strings, None and numpy scalars.

    Returns
    -------
    any
        The same structure (tuples as lists, keys as str, numpy scalars as Python numbers).
    """
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalars
        return finite(obj.item())
    return obj

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL,
    result TEXT NOT NULL,
    updated REAL NOT NULL,
    analyses INTEGER NOT NULL DEFAULT 1
);
"""


def file_key(path: str | Path) -> str:
    """The identity of a file's content: ``"<size>:<mtime_ns>:<sha256>"``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"{st.st_size}:{st.st_mtime_ns}:{h.hexdigest()}"


class ResultStore:
    """Analysis results in an SQLite file (thread-safe; written in transactions, so an
    interruption keeps either the old row or the new one).

    Parameters
    ----------
    path : str or Path
        The database file (created with its folder).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def key_of(self, path: str) -> str | None:
        """The content key stored for ``path`` (None when not stored)."""
        with self._lock:
            row = self._db.execute("SELECT key FROM entries WHERE path = ?", (str(path),)).fetchone()
        return row[0] if row else None

    def put(self, origin: str, path: str, name: str, key: str, result: dict[str, Any],
            options: dict[str, Any] | None = None) -> int:
        """Store (or replace) the result of ``path``.

        Parameters
        ----------
        origin : {"watch", "upload", "tiled"}
        path : str
            The input's identity (a file path, or ``tiled:<uri>/<node>``).
        name : str
            What the page shows.
        key : str
            Content key (:func:`file_key`).
        result : dict
            :meth:`xasml.serve.analysis.Analyzer.analyze`'s record.
        options : dict, optional
            The options it was analysed with.

        Returns
        -------
        int
            The entry id (kept when a row is replaced).
        """
        now = time.time()
        blob = json.dumps(finite(result), allow_nan=False, default=str)
        opts = json.dumps(options or {})
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT id FROM entries WHERE path = ?", (str(path),)).fetchone()
                if row:
                    self._db.execute("UPDATE entries SET origin=?, name=?, key=?, status=?, options=?, result=?, "
                                     "updated=?, analyses=analyses+1 WHERE id=?",
                                     (origin, name, key, result.get("status", "ok"), opts, blob, now, row[0]))
                    entry_id = int(row[0])
                else:
                    cur = self._db.execute("INSERT INTO entries (origin, path, name, key, status, options, result, "
                                           "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                           (origin, str(path), name, key, result.get("status", "ok"), opts, blob, now))
                    entry_id = int(cur.lastrowid)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return entry_id

    def get(self, entry_id: int) -> dict[str, Any] | None:
        """One entry: ``id``, ``origin``, ``path``, ``name``, ``key``, ``status``, ``options``,
        ``result``, ``updated`` (Unix s), ``analyses`` (how often it was analysed); None if absent."""
        with self._lock:
            row = self._db.execute("SELECT id, origin, path, name, key, status, options, result, updated, analyses "
                                   "FROM entries WHERE id = ?", (int(entry_id),)).fetchone()
        return _entry(row) if row else None

    def entries(self, with_result: bool = True) -> list[dict[str, Any]]:
        """Every entry, oldest first (see :meth:`get`)."""
        with self._lock:
            rows = self._db.execute("SELECT id, origin, path, name, key, status, options, "
                                    f"{'result' if with_result else _NO_RESULT}, updated, analyses "
                                    "FROM entries ORDER BY id").fetchall()
        return [_entry(r) for r in rows]

    def count(self, origin: str | None = None) -> int:
        """Number of entries (of ``origin`` when given)."""
        with self._lock:
            if origin is None:
                return int(self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
            return int(self._db.execute("SELECT COUNT(*) FROM entries WHERE origin = ?", (origin,)).fetchone()[0])


#: SQL for an empty result column (listing entries without their results)
_NO_RESULT = "'{}'"


def _entry(row) -> dict[str, Any]:
    keys = ("id", "origin", "path", "name", "key", "status", "options", "result", "updated", "analyses")
    d = dict(zip(keys, row))
    d["options"] = json.loads(d["options"])
    d["result"] = json.loads(d["result"])
    return d
