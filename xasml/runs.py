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

from xasml.utils import atomic_write_json


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
        Folder to create (parents included). Existing files are overwritten one by one,
        atomically.
    config : dict
        The resolved configuration; written at once to ``config.json``.
    seed : int
        Seed of the run.
    """

    def __init__(self, path: str | Path, config: dict[str, Any], seed: int | None = None):
        from xasml import __version__

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
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
        d = self.path / "report"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def finish(self, **extra: Any) -> None:
        """Record the end time, wall-clock seconds and anything else in ``run.json``."""
        self.info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.info["wall_seconds"] = round(time.time() - self._t0, 2)
        self.info.update(extra)
        self._write_info()
