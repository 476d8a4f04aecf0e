"""The long-running part of ``xasml serve``: models loaded once, one analysis queue, the result
store, the folder watch and the Tiled feed, and the events pushed to open pages.

Everything the page can make the server read or write goes through :meth:`ServeService.allowed`:
only files inside the watched folder, the upload store and the ``--references`` folder are read,
and only the store folder is written.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from xasml.errors import SpectrumError, XasmlError
from xasml.serve.analysis import AnalysisOptions, Analyzer
from xasml.serve.store import ResultStore, file_key
from xasml.utils import atomic_path

__all__ = ["ServeConfig", "ServeService", "default_store"]

log = logging.getLogger("xasml.serve")


def default_store() -> Path:
    """The default folder of the serve result store.

    Returns
    -------
    Path
        ``$XASML_SERVE_STORE`` when set, else ``~/.local/share/xasml/serve``.
    """
    env = os.environ.get("XASML_SERVE_STORE")
    return Path(env) if env else Path.home() / ".local" / "share" / "xasml" / "serve"


@dataclass
class ServeConfig:
    """Settings of a serve process (the ``xasml serve`` options).

    Parameters
    ----------
    watch : Path, optional
        Folder whose new and grown files are analysed.
    tiled : str, optional
        URI of a Tiled server (container) whose new runs are analysed.
    tiled_api_key : str, optional
        API key for the Tiled server (default ``$TILED_API_KEY``).
    references : Path, optional
        Folder of reference foil scans offered for calibration; a ``references.parquet`` in it (a
        library made with ``xasml references add``) joins the shipped reference library as
        evidence of measured standards.
    store : Path
        Folder of the result store (``results.sqlite``), the uploads and the Tiled scans.
    max_upload_bytes : int
        Largest accepted upload (and watched file), bytes.
    max_upload_files : int
        Most files in one upload request.
    max_uploads : int
        Most uploads kept in the store.
    settle : float
        Seconds a watched file must stay unchanged to count as complete.
    tiled_poll : float
        Seconds between looks at the Tiled server.
    """

    watch: Path | None = None
    tiled: str | None = None
    tiled_api_key: str | None = None
    references: Path | None = None
    store: Path = None  # type: ignore[assignment]
    max_upload_bytes: int = 50 * 1024 * 1024
    max_upload_files: int = 20
    max_uploads: int = 2000
    settle: float = 0.5
    tiled_poll: float = 1.0

    def __post_init__(self):
        self.store = Path(self.store) if self.store is not None else default_store()
        self.watch = Path(self.watch).resolve() if self.watch is not None else None
        self.references = Path(self.references).resolve() if self.references is not None else None


def _safe_name(name: str) -> str:
    """A file name reduced to letters, digits, ``._-`` (no folders), at most 100 characters."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name).replace("\\", "/")).name).strip("._") or "upload"
    return base[-100:]


def _renamed(obj: Any, old: str, new: str) -> Any:
    """``obj`` with ``old`` (a stored file's path) replaced by ``new`` in every string."""
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, dict):
        return {k: _renamed(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed(v, old, new) for v in obj]
    return obj


class ServeService:
    """Models, store, watch, Tiled feed and page events of one ``xasml serve`` process.

    Parameters
    ----------
    config : ServeConfig

    Raises
    ------
    SpectrumError
        If the watched or references folder is not a folder.
    """

    def __init__(self, config: ServeConfig):
        self.config = c = config
        for what, folder in (("--watch", c.watch), ("--references", c.references)):
            if folder is not None and not folder.is_dir():
                raise SpectrumError(f"{what}: not a folder", source=str(folder))
        c.store.mkdir(parents=True, exist_ok=True)
        self.store_dir = c.store.resolve()
        self.upload_dir = self.store_dir / "uploads"
        self.tiled_dir = self.store_dir / "tiled"
        self.export_dir = self.store_dir / "exports"
        for d in (self.upload_dir, self.tiled_dir, self.export_dir):
            d.mkdir(exist_ok=True)
        self.store = ResultStore(self.store_dir / "results.sqlite")
        self.reference_errors: list[str] = []
        self.analyzer = Analyzer(references=self._load_references(), library=self._user_library())
        self.analyzer.standards()  # a library that cannot be read stops the start, naming the file
        self._queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xasml-analysis")
        self._subscribers: list[Callable[[dict], None]] = []
        self._sub_lock = threading.Lock()
        self.watcher = None
        self.tiled_feed = None
        self.started = time.time()

    # -- set-up ------------------------------------------------------------------------------
    def _user_library(self) -> list[Path]:
        """The ``--references`` folder when it holds a reference library (``references.parquet``)."""
        from xasml.references.library import LIBRARY_FILE

        folder = self.config.references
        return [folder] if folder is not None and (folder / LIBRARY_FILE).is_file() else []

    def _load_references(self) -> dict:
        """Reference foil scans of the ``--references`` folder, by file name (unreadable ones noted;
        the reference library file is not a scan)."""
        import warnings

        from xasml.io.reader import read_spectra
        from xasml.references.library import LIBRARY_FILE

        refs: dict = {}
        folder = self.config.references
        if folder is None:
            return refs
        for p in sorted(folder.iterdir()):
            if not p.is_file() or p.name.startswith(".") or p.name == LIBRARY_FILE:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    refs[p.name] = read_spectra(p)[0]
            except (XasmlError, OSError, ValueError) as exc:
                self.reference_errors.append(" ".join(str(exc).split()))
        return refs

    def start(self, warm: bool = True, elements: list[str] | None = None) -> "ServeService":
        """Load the models (``warm``: of ``elements``, default every shipped one), start the folder
        watch and the Tiled feed."""
        if warm:
            self.analyzer.warm_up(elements)
        if self.config.watch is not None:
            from xasml.serve.watch import FolderWatcher

            def on_complete(p: Path) -> None:
                if p.resolve() == self.store_dir or self.store_dir in p.resolve().parents:
                    return  # a store kept inside the watched folder is not analysed
                self.submit_file("watch", p)

            self.watcher = FolderWatcher(self.config.watch, on_complete, settle=self.config.settle).start()
        if self.config.tiled:
            from xasml.serve.tiled import TiledFeed

            self.tiled_feed = TiledFeed(self.config.tiled, self.tiled_dir, self.submit_file,
                                        api_key=self.config.tiled_api_key, poll=self.config.tiled_poll,
                                        on_error=self._feed_error).start()
        return self

    def stop(self) -> None:
        """Stop the watch and the feed, finish queued analyses, close the store."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.tiled_feed is not None:
            self.tiled_feed.stop()
        self._queue.shutdown(wait=True, cancel_futures=False)
        self.store.close()

    # -- events ------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[dict], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (``{"type": "entry", "id", "rows"}`` and
        ``{"type": "status", ...}``); returns the function that unsubscribes."""
        with self._sub_lock:
            self._subscribers.append(callback)

        def unsubscribe():
            with self._sub_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def publish(self, event: dict) -> None:
        """Send ``event`` to every subscriber (a failing subscriber is dropped)."""
        with self._sub_lock:
            subs = list(self._subscribers)
        for cb in subs:
            try:
                cb(event)
            except Exception:
                with self._sub_lock:
                    if cb in self._subscribers:
                        self._subscribers.remove(cb)

    def _feed_error(self, message: str) -> None:
        log.warning(message)
        self.publish({"type": "status", "level": "error", "message": message})

    # -- safety ------------------------------------------------------------------------------
    def roots(self) -> list[Path]:
        """The folders files may be read from: the watched one, the upload store, the Tiled scans
        and the references."""
        return [r for r in (self.config.watch, self.upload_dir, self.tiled_dir, self.config.references) if r]

    def allowed(self, path: str | Path) -> Path:
        """``path`` resolved (symbolic links followed), if it lies inside one of :meth:`roots`.

        Raises
        ------
        SpectrumError
            Naming the path, when it is outside them.
        """
        p = Path(path).resolve()
        for root in self.roots():
            if p == root or root in p.parents:
                return p
        raise SpectrumError("outside the watched folder and the upload store: not read", source=str(path))

    # -- analysis ----------------------------------------------------------------------------
    def submit_file(self, origin: str, path: str | Path, options: dict | None = None, force: bool = False,
                    name: str | None = None, entry_path: str | None = None) -> Future:
        """Queue the analysis of a file; the future gives the entry id (None when the stored
        result is of the same content and ``force`` is false).

        Parameters
        ----------
        origin : {"watch", "upload", "tiled"}
        path : str or Path
            The file (inside :meth:`roots`).
        options : dict, optional
            :class:`~xasml.serve.analysis.AnalysisOptions` fields; default the entry's stored ones.
        force : bool
            Analyse even when the content is unchanged (the user changed the options).
        name : str, optional
            Shown name (default the file name).
        entry_path : str, optional
            Store identity (default the resolved path; Tiled runs use their URI).
        """
        return self._queue.submit(self._analyse, origin, path, options, force, name, entry_path, time.time())

    def _analyse(self, origin, path, options, force, name, entry_path, queued_at) -> int | None:
        try:
            p = self.allowed(path)
            ident = entry_path or str(p)
            try:
                st = p.stat()
                size = st.st_size
                # a file over the size limit is not read, not even to hash it
                key = file_key(p) if size <= self.config.max_upload_bytes else f"{size}:{st.st_mtime_ns}:-"
            except OSError as exc:
                if origin == "watch":  # gone before it was read (renamed, deleted): nothing to show
                    return None
                raise SpectrumError(f"cannot be read ({exc.strerror})", source=str(p)) from None
            stored_key = self.store.key_of(ident)
            if not force and stored_key == key:
                return None
            if options is None and stored_key is not None:
                old = self._entry_by_path(ident)
                options = old["options"] if old else None
            if size > self.config.max_upload_bytes:
                result = {"file": str(p), "name": p.name, "status": "error", "spectra": [],
                          "error": f"{p}: {size} bytes, larger than the limit of {self.config.max_upload_bytes} "
                                   "bytes (--max-upload-mb): not read"}
            else:
                result = self.analyzer.analyze(p, options)
            if origin != "watch" and name:  # the page names uploads and runs as the user knows them
                result = {**_renamed(result, str(p), name), "file": str(p)}
            result["queued_at"] = queued_at
            result["analysed_at"] = time.time()
            entry_id = self.store.put(origin, ident, name or p.name, key, result, result.get("options", options))
        except Exception as exc:  # noqa: BLE001 - the server never stops for one file
            msg = " ".join(str(exc).split()) or type(exc).__name__
            log.warning("analysis failed: %s", msg)
            self.publish({"type": "status", "level": "error", "message": msg})
            return None
        self.publish({"type": "entry", "id": entry_id, "origin": origin, "name": name or p.name,
                      "status": result["status"], "analysed_at": result["analysed_at"]})
        return entry_id

    def _entry_by_path(self, ident: str) -> dict | None:
        for e in self.store.entries(with_result=False):
            if e["path"] == ident:
                return e
        return None

    def reanalyse(self, entry_id: int, options: dict[str, Any]) -> int:
        """Analyse a stored entry again with new options (the page's edits) and wait for it.

        Raises
        ------
        SpectrumError
            For an unknown entry, bad options (the field named), or an entry without a file.
        """
        e = self.store.get(entry_id)
        if e is None:
            raise SpectrumError(f"no entry {entry_id}", source="page")
        AnalysisOptions.from_dict(options, e["name"])  # bad options: an error now, not in the queue
        fut = self.submit_file(e["origin"], e["result"].get("file") or e["path"], options=options, force=True,
                               name=e["name"], entry_path=e["path"])
        out = fut.result(timeout=120)
        if out is None:
            raise SpectrumError("could not be analysed again (see the status line)", source=e["name"])
        return out

    def save_upload(self, filename: str, data: bytes) -> Path:
        """Write an uploaded file into the upload store (temporary name, then rename).

        Raises
        ------
        SpectrumError
            When the file is larger than the limit, or the store holds the most uploads allowed.
        """
        if len(data) > self.config.max_upload_bytes:
            raise SpectrumError(f"{len(data)} bytes, larger than the upload limit of {self.config.max_upload_bytes} "
                                "bytes", source=filename)
        if self.store.count("upload") >= self.config.max_uploads:
            raise SpectrumError(f"the upload store holds {self.config.max_uploads} files, the limit (--max-uploads)",
                                source=filename)
        target = self.upload_dir / f"{uuid.uuid4().hex[:8]}_{_safe_name(filename)}"
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        return target

    def rows(self) -> list[dict[str, Any]]:
        """The results table (one row per spectrum, :func:`xasml.serve.export.result_rows`)."""
        from xasml.serve.export import result_rows

        return result_rows(self.store.entries())

    def series(self, element: str | None = None) -> dict[str, Any]:
        """The series view of the scans of one element: rows (the combined oxidation state ± σ of
        the model and the measured standards, the model's, the flag, and the numeric header
        fields), PCA scores of the model-input spectra, the domain map (the scans projected on the
        first two principal components of the oxidation model's training spectra, with those
        spectra), and the factor analysis of the normalised scans: the number of components by
        Malinowski's IND and the target transformation of the library's standards
        (:func:`xasml.references.pca.pca_of_unknowns`).

        Parameters
        ----------
        element : str, optional
            Default: the element with most scans.

        Returns
        -------
        dict
            ``element``, ``elements``, ``rows`` (``oxidation_state`` and ``oxidation_state_std``:
            the combined answer where there is one, else the model's; ``model_oxidation_state``,
            ``model_oxidation_state_std``, ``flagged``), ``header_fields``, ``pca`` (``scores``
            (n, 2), ``explained``), ``domain`` (``training`` (m, 2), ``scans`` (n, 2),
            ``explained``); PCA parts are None with fewer than 2 scans or no training spectra;
            ``factors``: :func:`~xasml.references.pca.pca_of_unknowns` of the scans' ``flat``
            (``pca`` with ``n_components``, ``eigenvalues``, ``ind``, ``variance_fraction``;
            ``targets``, best first), or ``{"error": ...}`` (fewer than 3 scans, mixed edges).
        """
        import numpy as np
        from sklearn.decomposition import PCA

        entries = self.store.entries()
        scans = []
        for e in entries:
            for i, s in enumerate(e["result"].get("spectra") or []):
                if "error" not in s and s.get("answers"):
                    scans.append((e, i, s))
        counts: dict[str, int] = {}
        for _, _, s in scans:
            counts[s["absorbing_element"]] = counts.get(s["absorbing_element"], 0) + 1
        if element is None and counts:
            element = max(counts, key=counts.get)
        scans = [t for t in scans if t[2]["absorbing_element"] == element]
        rows, X = [], []
        for n, (e, i, s) in enumerate(scans):
            ox = s["answers"].get("oxidation", {})
            comb = ox.get("combined") or {}
            has = comb.get("oxidation_state") is not None
            rows.append({"scan": n, "entry": e["id"], "spectrum": i, "name": e["name"], "label": s.get("label"),
                         "oxidation_state": comb["oxidation_state"] if has else ox.get("prediction"),
                         "oxidation_state_std": comb.get("sigma") if has else ox.get("std"),
                         "combined": has, "flagged": ox.get("flagged"),
                         "model_oxidation_state": ox.get("prediction"), "model_oxidation_state_std": ox.get("std"),
                         "e0": s.get("e0"), "header": s.get("header", {}), "analysed_at": e["result"].get(
                             "analysed_at")})
            if s.get("model_input"):
                X.append(s["model_input"]["x"])
        fields = sorted({k for r in rows for k in r["header"]})
        out: dict[str, Any] = {"element": element, "elements": sorted(counts), "rows": rows, "header_fields": fields,
                               "pca": None, "domain": None, "factors": self._factors([s for _, _, s in scans])}
        if len(X) == len(rows) and len(X) >= 2:
            A = np.asarray(X, dtype=float)
            k = min(2, len(A) - 1, A.shape[1])
            p = PCA(n_components=k).fit(A)
            sc = p.transform(A)
            if k == 1:
                sc = np.column_stack([sc, np.zeros(len(sc))])
            out["pca"] = {"scores": np.round(sc, 5).tolist(),
                          "explained": [round(float(v), 4) for v in p.explained_variance_ratio_]}
        b = self.analyzer.bundle("oxidation", element) if element else None
        if b is not None and b.training_spectra is not None and X:
            T = np.asarray(b.training_spectra, dtype=float)
            A = np.asarray(X, dtype=float)
            if A.shape[1] == T.shape[1]:
                p = PCA(n_components=2).fit(T)
                out["domain"] = {"training": np.round(p.transform(T), 4).tolist(),
                                 "scans": np.round(p.transform(A), 4).tolist(),
                                 "explained": [round(float(v), 4) for v in p.explained_variance_ratio_]}
        return out

    def _factors(self, spectra: list[dict]) -> dict[str, Any]:
        """Factor analysis of the scans' normalised spectra (:func:`xasml.references.pca.pca_of_unknowns`),
        or ``{"error": message}``."""
        from xasml.errors import DataError
        from xasml.references.evidence import unknown_from_curves
        from xasml.references.pca import pca_of_unknowns

        try:
            if len(spectra) < 3:
                raise DataError(f"PCA of a series needs at least 3 spectra (got {len(spectra)})")
            unknowns = [unknown_from_curves(s["absorbing_element"], s["edge"], s["curves"]["energy"],
                                            s["curves"]["flat"], s["e0"], name=s.get("label") or "")
                        for s in spectra]
            res = pca_of_unknowns(unknowns, self.analyzer.standards())
        except (XasmlError, ValueError) as exc:
            return {"error": " ".join(str(exc).split())}
        res["targets"] = res["targets"][:8]
        return res

    def status(self) -> dict[str, Any]:
        """What the page's header shows: folders, feed, limits, loaded models and references."""
        return {
            "watch": str(self.config.watch) if self.config.watch else None,
            "tiled": self.config.tiled,
            "tiled_error": getattr(self.tiled_feed, "last_error", None),
            "store": str(self.store_dir),
            "references": sorted(self.analyzer.references),
            "library": {"user": [str(p) for p in self.analyzer.library or []],
                        "standards": int(len(self.analyzer.standards()))},
            "reference_errors": self.reference_errors,
            "models": self.analyzer.loaded_elements(),
            "entries": self.store.count(),
            "limits": {"max_upload_bytes": self.config.max_upload_bytes,
                       "max_upload_files": self.config.max_upload_files, "max_uploads": self.config.max_uploads},
            "uptime_s": round(time.time() - self.started, 1),
        }
