"""Small shared helpers: atomic file writes, seeding, device choice, progress bars, fingerprints."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    An interruption leaves either the old file or the new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays allowed)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def is_number(value: Any) -> bool:
    """True when ``float(value)`` works (text of a number, or a number): the readers' one test."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def cache_dir() -> Path:
    """xasml's cache folder: ``$XASML_CACHE``, else ``~/.cache/xasml`` (unpacked datasets, label caches)."""
    return Path(os.environ.get("XASML_CACHE", Path.home() / ".cache" / "xasml"))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if installed) PyTorch random generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


def get_device(prefer: str | None = None) -> str:
    """Return ``"cuda"`` when a GPU is present (or ``prefer`` says so), else ``"cpu"``."""
    import torch

    if prefer:
        return prefer
    return "cuda" if torch.cuda.is_available() else "cpu"


def progress(iterable: Iterable, desc: str = "", total: int | None = None, disable: bool | None = None):
    """Wrap ``iterable`` in a tqdm progress bar (hidden when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)


def progress_bar(total: int, desc: str = "", disable: bool | None = None):
    """A tqdm bar of ``total`` steps to ``update`` by hand (hidden when stderr is not a terminal).

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
        Label in front of the bar.
    disable : bool, optional
        ``None`` (default): shown only when stderr is a terminal; ``True``: hidden; ``False``: shown.

    Returns
    -------
    tqdm.tqdm
        Close it (or use it as a context manager) when the work is done.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=disable, leave=False)


def fingerprint_files(paths: Iterable[str | Path], root: str | Path | None = None) -> str:
    """SHA-256 over the relative names and contents of ``paths`` (sorted): a data fingerprint."""
    h = hashlib.sha256()
    root = Path(root) if root is not None else None
    for p in sorted(Path(x) for x in paths):
        name = str(p.relative_to(root)) if root is not None else str(p)
        h.update(name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over the bytes of numpy arrays (a fingerprint of a built dataset)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads for PyTorch and for the BLAS / OpenMP pools of NumPy and scikit-learn.

    The models here are small: on a 2-core machine one thread per pool is fastest, and letting
    torch's OpenMP pool and OpenBLAS each start one thread per core makes them spin against each
    other (seen: an SVM fit 50x slower after a torch training in the same process).

    Parameters
    ----------
    n : int, optional
        Threads per pool; default: the environment variable ``XASML_THREADS``, else 1.

    Returns
    -------
    int
        The number used.
    """
    import sys

    from threadpoolctl import threadpool_limits

    if n is None:
        n = int(os.environ.get("XASML_THREADS", "1"))
    n = max(1, int(n))
    threadpool_limits(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:
        # torch is not imported yet (commands that never need it start 2 s faster): it reads
        # OMP_NUM_THREADS when it is imported and sizes its intra-op pool from it
        os.environ["OMP_NUM_THREADS"] = str(n)
        os.environ["MKL_NUM_THREADS"] = str(n)
    return n


def shared_data_dir() -> Path:
    """The development copy of the public data sets: ``$XASML_SHARED_DATA``, else ``shared/data``
    next to the source checkout (``<checkout>/../shared/data``). Defaults of the ``run``
    commands only; a user passes ``--data`` (see ``docs/data.md``)."""
    env = os.environ.get("XASML_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"  # src/xasml/utils.py -> checkout
