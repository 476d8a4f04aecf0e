"""Write what xasml chooses for every beamline column file (energy column, its units, the μ
expression, element and edge) to a JSON file, so that ``larch_reference.py beamline`` (run in the
xraylarch virtual environment) rebuilds the same μ from larch's own ``read_ascii`` arrays and
records larch's channel names and ``pre_edge`` e0 on it.

Usage (xasml venv)::

    PYTHONPATH=src .venv/bin/python scripts/larch/dump_beamline_choices.py \
        ../shared/data/experimental/beamline-files /tmp/beamline_choices.json
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from xasml.errors import SpectrumError
from xasml.io.reader import read_spectrum


def main(root: str, out: str) -> None:
    rows = {}
    for f in sorted(Path(root).iterdir()):
        if f.name.startswith(("README", "LICENSE")):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = read_spectrum(f)
        except SpectrumError as exc:
            rows[f.name] = {"error": exc.message}
            continue
        m = s.metadata
        ename = m["energy_source"].split(" ")[0]
        rows[f.name] = {"columns": m["columns"], "energy_index": m["columns"].index(ename) + 1,
                        "energy_source": m["energy_source"], "mu_source": m["mu_source"],
                        "element": s.absorbing_element, "edge": s.edge}
    Path(out).write_text(json.dumps(rows, indent=1, sort_keys=True))
    print(f"{len(rows)} files -> {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
