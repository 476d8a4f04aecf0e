"""Dump the energy/μ arrays xasml's XDI reader produces for every XAS Data Library file to one
.npz, so that xraylarch (run in its own virtual environment by ``larch_reference.py``) normalises
exactly the same numbers and only the mathematics is compared.

Usage (xasml venv)::

    .venv/bin/python scripts/larch/dump_xasml_arrays.py ../shared/data/experimental/xas-data-library/data /tmp/xasdl.npz
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from xasml.errors import SpectrumError
from xasml.io.xdi import read_xdi


def main(root: str, out: str) -> None:
    base = Path(root)
    arrays: dict[str, np.ndarray] = {}
    names = []
    for i, f in enumerate(sorted(p for p in base.rglob("*") if p.is_file())):
        rel = str(f.relative_to(base))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = read_xdi(f)
            try:
                ref = read_xdi(f, mode="reference")
            except SpectrumError:
                ref = None
        names.append(rel)
        arrays[f"e{i}"] = s.energy
        arrays[f"m{i}"] = s.mu
        if ref is not None:
            arrays[f"r{i}"] = ref.mu
    np.savez_compressed(out, names=np.array(names), **arrays)
    print(f"{len(names)} spectra -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
