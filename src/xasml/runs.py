"""Run folders: the unit of reproducibility.

Every training command writes one folder::

    <out>/config.json      resolved configuration (every option, defaults included)
    <out>/run.json         xasml version, git revision, python/torch versions, seed, data fingerprint, timing
    <out>/splits.json      the split lists (ids per split)
    <out>/models/<name>/   weights (safetensors / JSON, never pickle) and the fitted preprocessing
    <out>/metrics.json     the evaluation
    <out>/report/          report.md and PNG figures
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from xasml.errors import DataError
from xasml.utils import atomic_write_json

#: files that mark a folder as a run folder (``--overwrite`` clears only such folders)
RUN_MARKERS = ("config.json", "run.json")


def default_run_dir(prefix: str, root: str | Path = "runs") -> Path:
    """A fresh, timestamped run folder path ``<root>/<prefix>-YYYYmmdd-HHMMSS`` (suffix ``-2``, ``-3``, ...
    when that exists already).

    Parameters
    ----------
    prefix : str
        Capability name, e.g. ``"forward"`` or ``"local-Cu"``.
    root : str or Path
        Parent folder.

    Returns
    -------
    Path
        A path that does not exist yet.
    """
    base = Path(root) / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def claim_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Make ``path`` an empty folder owned by the run about to start.

    A run folder is owned by one run: mixing the files of two runs (an interrupted rerun leaves new
    models beside the old metrics; a rerun with fewer models leaves stale model folders that
    ``predict --model`` would use) is refused.

    Parameters
    ----------
    path : str or Path
        The ``--out`` folder.
    overwrite : bool
        Clear a non-empty folder first; allowed only for a folder that is a run folder (holds
        ``config.json`` or ``run.json``), so that a mistyped ``--out`` never deletes other files.

    Returns
    -------
    Path
        The (empty) folder, created with its parents.

    Raises
    ------
    DataError
        If ``path`` is a file, or is a non-empty folder and ``overwrite`` is false, or is a
        non-empty folder that is not a run folder.
    """
    import shutil

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: --out is a file; expected a run folder (new or empty)")
    if path.is_dir():
        content = sorted(p.name for p in path.iterdir())
        if content:
            shown = ", ".join(content[:5]) + (", ..." if len(content) > 5 else "")
            if not overwrite:
                raise DataError(f"{path}: run folder is not empty ({len(content)} entries: {shown}); a run folder "
                                "belongs to one run: choose a new --out (the default is a fresh timestamped "
                                "folder), or pass --overwrite to clear it first")
            if not any((path / m).exists() for m in RUN_MARKERS):
                raise DataError(f"{path}: not a run folder (no {' or '.join(RUN_MARKERS)}; holds {shown}); "
                                "--overwrite clears only run folders: choose another --out")
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def git_revision(cwd: str | Path | None = None) -> str | None:
    """The git commit of the source tree ``cwd`` (default: this package), or None."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class RunFolder:
    """A run folder being written.

    Parameters
    ----------
    path : str or Path
        Folder to create (parents included); it must be new or empty unless ``overwrite``
        (see :func:`claim_run_dir`). Files are then written one by one, atomically.
    config : dict
        The resolved configuration; written at once to ``config.json``.
    seed : int
        Seed of the run.
    overwrite : bool
        Clear an existing run folder at ``path`` first.

    Raises
    ------
    DataError
        If ``path`` is not empty and ``overwrite`` is false (see :func:`claim_run_dir`).
    """

    def __init__(self, path: str | Path, config: dict[str, Any], seed: int | None = None,
                 overwrite: bool = False):
        from xasml import __version__

        self.path = claim_run_dir(path, overwrite=overwrite)
        self._t0 = time.time()
        self.info: dict[str, Any] = {
            "xasml_version": __version__,
            "git_revision": git_revision(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "seed": seed,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        try:
            import torch

            self.info["torch"] = torch.__version__
        except ImportError:  # pragma: no cover
            pass
        atomic_write_json(self.path / "config.json", config)
        self._write_info()

    def _write_info(self) -> None:
        atomic_write_json(self.path / "run.json", self.info)

    def set_data(self, fingerprint: str, description: dict[str, Any] | None = None) -> None:
        """Record the data fingerprint (and a description: path, counts) in ``run.json``."""
        self.info["data_fingerprint"] = fingerprint
        if description:
            self.info["data"] = description
        self._write_info()

    def write_splits(self, splits: dict[str, list]) -> Path:
        """Write the split lists to ``splits.json``."""
        return atomic_write_json(self.path / "splits.json", splits)

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        """Write ``metrics.json``."""
        return atomic_write_json(self.path / "metrics.json", metrics)

    def model_dir(self, name: str) -> Path:
        """Folder for one model's weights: ``models/<name>``."""
        d = self.path / "models" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def report_dir(self) -> Path:
        """Folder of the report: ``report/`` (created)."""
        d = self.path / "report"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def finish(self, **extra: Any) -> None:
        """Record the end time, wall-clock seconds and anything else in ``run.json``."""
        self.info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.info["wall_seconds"] = round(time.time() - self._t0, 2)
        self.info.update(extra)
        self._write_info()
