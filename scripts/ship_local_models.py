"""Copy the per-element local-structure models of a multi-element run into the package.

    python scripts/ship_local_models.py RUN_DIR [--dest src/xasml/data/local]

RUN_DIR is a run folder of ``xasml local run --elements ...`` (its ``models/<El>/<task>/``
bundles). Every bundle is checked by loading it (``ModelBundle.load``), its training spectra are
capped at 1,000 rows (seeded subset; enough for spectral-domain-mapping motifs and
out-of-domain distances), and ``shipped.json`` records the run, the regime and the sizes. Bundles
of the first Cu-only models at ``<dest>/<task>/`` are removed (the per-element ones replace them).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xasml.models.bundle import TASKS, ModelBundle  # noqa: E402
from xasml.utils import atomic_write_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--dest", type=Path, default=ROOT / "src" / "xasml" / "data" / "local")
    ap.add_argument("--max-spectra", type=int, default=1000)
    ap.add_argument("--tasks", default="coordination,cn,oxidation", help="tasks to take from this run (the others keep "
                                                                       "what is shipped)")
    args = ap.parse_args()
    metrics = json.loads((args.run / "metrics.json").read_text())
    run_info = json.loads((args.run / "run.json").read_text())
    tasks = args.tasks.split(",")
    old = args.dest / "shipped.json"
    shipped = json.loads(old.read_text()) if old.exists() and set(tasks) != set(TASKS) else {"models": {}}
    shipped.setdefault("runs", {})
    for t in tasks:
        shipped["runs"][t] = {"run": args.run.name, "git_revision": run_info.get("git_revision"),
                              "data_fingerprint": run_info.get("data_fingerprint")}
    for k in ("run", "git_revision", "data_fingerprint"):
        shipped.pop(k, None)
    for task in TASKS:  # the first, Cu-only bundles
        legacy = args.dest / task
        if legacy.exists():
            shutil.rmtree(legacy)
    for src in sorted((args.run / "models").glob("*/*/bundle.json")):
        el, task = src.parent.parent.name, src.parent.name
        if task not in tasks:
            continue
        b = ModelBundle.load(src.parent)
        if b.training_spectra is not None and len(b.training_spectra) > args.max_spectra:
            rng = np.random.default_rng(0)
            b.training_spectra = b.training_spectra[np.sort(rng.choice(len(b.training_spectra), args.max_spectra,
                                                                       replace=False))]
        # the bundle keeps the alignment it was trained with (MultiConfig.geometry_alignment)
        dst = args.dest / el / task
        if dst.exists():
            shutil.rmtree(dst)
        b.save(dst)
        ModelBundle.load(dst)
        size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
        row = {"regime": b.info.get("regime"), "n_train_sites": b.info.get("n_train_sites"), "bytes": size}
        row.update({k: v for k, v in (b.info.get("cv") or {}).items() if not isinstance(v, (list, dict))})
        shipped["models"].setdefault(el, {})[task] = row
        print(f"{el:2s} {task:12s} {row['regime']:12s} {row['n_train_sites']:5d} sites {size / 1e3:7.0f} kB")
    shipped["sites_by_element"] = metrics["data"]["sites_by_element"]
    atomic_write_json(args.dest / "shipped.json", shipped)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
