"""Folder watching for ``xasml serve --watch``: each new or grown file is handed on once, when complete.

Changes come from ``watchfiles`` (the Rust ``notify`` library: inotify on Linux, FSEvents on
macOS). A file counts as complete when its size and modification time have not changed for
``settle`` seconds, so a scan that an acquisition program writes in pieces is not read
half-written. Hidden files and the usual temporary names (``.tmp``, ``.part``, ``~``, ``.swp``)
are ignored: a writer that writes to such a name and renames is seen once, at the rename.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

__all__ = ["FolderWatcher", "is_candidate"]

_TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".swp", ".crdownload", "~", ".lock", ".sqlite", ".sqlite-wal",
                  ".sqlite-shm", ".sqlite-journal")


def is_candidate(path: str | Path, root: str | Path) -> bool:
    """True for a file under ``root`` worth analysing: not hidden (no part of its path below
    ``root`` starts with a dot) and not a temporary name.

    Parameters
    ----------
    path, root : str or Path

    Returns
    -------
    bool
    """
    try:
        rel = Path(os.path.abspath(path)).relative_to(Path(root).resolve())  # links are judged by the service
    except ValueError:
        return False
    if any(part.startswith((".", "_")) for part in rel.parts) or not rel.parts:
        return False
    return not rel.name.lower().endswith(_TEMP_SUFFIXES)


class FolderWatcher:
    """Watch ``folder`` (recursively) and call ``on_complete(path)`` for each complete new or changed file.

    Parameters
    ----------
    folder : str or Path
        The folder to watch.
    on_complete : callable
        Called with the resolved ``Path`` of each complete file, from the watcher's thread;
        it decides whether the content is new (see :class:`xasml.serve.store.ResultStore`).
    settle : float
        Seconds without a change of size or modification time after which a file is complete.
    scan_existing : bool
        Hand on the files already in the folder at start (a restart resumes the folder; the
        store skips what it has).

    Notes
    -----
    :meth:`start` runs the watch in a daemon thread; :meth:`stop` ends it (within about 0.2 s).
    """

    def __init__(self, folder: str | Path, on_complete: Callable[[Path], None], settle: float = 0.5,
                 scan_existing: bool = True):
        self.folder = Path(folder).resolve()
        self.on_complete = on_complete
        self.settle = float(settle)
        self.scan_existing = scan_existing
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: dict[Path, tuple[tuple[int, int], float]] = {}
        self.ready = threading.Event()

    def start(self) -> "FolderWatcher":
        """Start watching in a background thread."""
        self._thread = threading.Thread(target=self._run, name="xasml-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _note(self, path: Path) -> None:
        if not is_candidate(path, self.folder):
            return
        try:
            st = path.stat()
        except OSError:
            self._pending.pop(path, None)
            return
        if not path.is_file():
            return
        sig = (st.st_size, st.st_mtime_ns)
        old = self._pending.get(path)
        if old is None or old[0] != sig:
            self._pending[path] = (sig, time.monotonic())

    def _flush(self) -> None:
        now = time.monotonic()
        for path in list(self._pending):
            self._note(path)  # refresh: a change the events missed restarts the clock
            if path not in self._pending:
                continue
            sig, since = self._pending[path]
            if now - since >= self.settle:
                del self._pending[path]
                try:
                    self.on_complete(path)
                except Exception:  # the callback reports its own errors; the watch goes on
                    pass

    def _scan(self) -> None:
        """Note every file already in the folder; they are complete, so none waits to settle."""
        before = set(self._pending)
        for dirpath, dirnames, filenames in os.walk(self.folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            for name in sorted(filenames):
                self._note(Path(dirpath) / name)
        for path in set(self._pending) - before:
            sig, _ = self._pending[path]
            self._pending[path] = (sig, time.monotonic() - self.settle)

    def _run(self) -> None:
        from watchfiles import Change, watch

        for changes in watch(self.folder, stop_event=self._stop, yield_on_timeout=True, rust_timeout=100,
                             debounce=300, step=30, recursive=True, watch_filter=None, raise_interrupt=False):
            if not self.ready.is_set():  # the watch is armed: what is there now is seen by the scan or an event
                if self.scan_existing:
                    self._scan()
                self.ready.set()
            for change, p in changes:
                if change != Change.deleted:
                    self._note(Path(p))
                else:
                    self._pending.pop(Path(p), None)
            self._flush()
            if self._stop.is_set():
                break
