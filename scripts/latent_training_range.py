"""Store the training range in a latent model fitted before models carried one.

    python scripts/latent_training_range.py MODEL_DIR DATA [DATA ...]

MODEL_DIR is a latent model folder (``latent.json``); DATA are site tables, FEFF folders or packed
datasets holding the model's simulated domain (for the shipped Cu model: the OmniXAS Cu folder and
the FEFF10 foils and metals, ``../shared/data/omnixas-cu-feff data/feff10-foils.parquet
data/feff10-metals.parquet``). The spectra are put on the model's grid exactly as ``latent fit``
does (:func:`xasml.datasets.sites.spectra_matrix` with the model's energy offsets), encoded, and
the range of their latents and labels is written into ``latent.json`` as ``training_range``
(:func:`xasml.latent.model.training_range`), with ``source`` naming what was encoded. ``xasml
latent fit`` stores the range of its training split itself; this script is for older folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from xasml.datasets.sites import SiteGrid, load_sites, spectra_matrix  # noqa: E402
from xasml.edges import edge_energy  # noqa: E402
from xasml.latent.model import LatentModel, training_range  # noqa: E402
from xasml.utils import atomic_write_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="latent model folder (latent.json)")
    ap.add_argument("data", nargs="+", help="site tables, FEFF folders or packed datasets of the model's domain")
    args = ap.parse_args(argv)
    m = LatentModel.load(args.model)
    el = m.element
    frame = load_sites(args.data, [el])
    start = float(m.grid.start) - edge_energy(el, m.edge)
    step = (float(m.grid.stop) - float(m.grid.start)) / (int(m.grid.n_points) - 1)
    grid = SiteGrid(edge=m.edge, grid_start=start, step=step, n_points=int(m.grid.n_points), normalization="max")
    scales = {sim: {el: off} for sim, off in m.energy_scale.items()}
    X, keep, dropped = spectra_matrix(frame, grid, scales)
    frame = frame[keep].reset_index(drop=True)
    Z = m.rankaae.transform(m.inputs(X))
    Y = np.column_stack([frame[t].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
                         for t in ("oxidation_state", "coordination_number")])
    sims = ", ".join(f"{s} {n}" for s, n in frame["simulation"].value_counts().sort_index().items())
    tr = training_range(Z, Y, m.targets, f"every {el} site of {', '.join(Path(d).name for d in args.data)} on the "
                                         f"model's grid ({len(Z)} spectra: {sims}; train, validation and test "
                                         "splits together), added by scripts/latent_training_range.py")
    meta_path = Path(args.model) / "latent.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["training_range"] = tr
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")  # the shipped files' layout
    print(json.dumps({"model": str(meta_path), "dropped": dropped, **tr}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
