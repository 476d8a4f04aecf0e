"""Benchmark of the local-structure capability (Carbone et al., Phys. Rev. Materials 3, 033604 (2019)).

Two parts, each writing JSON into ``--out``:

``labels``  time ChemEnv + bond-valence labelling without any cache on a random sample of
            structures (seconds per site, failures), to check that the whole set labels in minutes;
``run``     the full ``xasml local run`` (default configuration), then a comparison table of
            macro F1 (protocol a = the paper's Cu oxides T:4/S:5/O:6) with Table II of the paper,
            and the wall-clock time.

Usage::

    python benchmarks/local.py labels [--data PATH] [--n 100] [--n-jobs 2] [--out benchmarks/results/local]
    python benchmarks/local.py run    [--data PATH] [--out benchmarks/results/local]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path


def bench_labels(data: str, element: str, n: int, n_jobs: int, out: Path) -> dict:
    from xasml.datasets.local import discover_sites
    from xasml.labels.site import label_sites, summarize_labels

    sites = discover_sites(data, element)
    g = sites.groupby("material_id").agg(structure_path=("structure_path", "first"),
                                         indices=("absorbing_index", list)).reset_index()
    rows = list(g.itertuples())
    random.Random(0).shuffle(rows)
    tasks = [(r.material_id, r.structure_path, r.indices) for r in rows[:n]]
    t0 = time.time()
    df = label_sites(tasks, cache=None, n_jobs=n_jobs)
    wall = time.time() - t0
    s = summarize_labels(df)
    s.pop("errors")
    per_site = wall / max(len(df), 1)
    res = {"n_structures": len(tasks), "n_sites": len(df), "wall_seconds": round(wall, 1), "n_jobs": n_jobs,
           "wall_seconds_per_site": round(per_site, 3),
           "projected_minutes_all_sites": round(per_site * len(sites) / 60, 1), "n_sites_total": len(sites),
           "summary": s}
    out.mkdir(parents=True, exist_ok=True)
    (out / "labels_benchmark.json").write_text(json.dumps(res, indent=2))
    return res


def bench_run(data: str | None, out: Path) -> dict:
    from xasml.local.config import LocalConfig
    from xasml.local.run import PAPER_CU, run_local

    cfg = LocalConfig() if data is None else LocalConfig(data=data)
    t0 = time.time()
    metrics = run_local(cfg, out / "run")
    wall = time.time() - t0
    table = []
    for pname, pm in metrics["classification"].items():
        for mname, sc in pm["models"].items():
            arch = mname.split("_")[1].upper()
            key = ("pre-" if sc["region"] == "pre-edge" else "") + arch
            table.append({"protocol": pname, "model": mname, "macro_f1": sc["macro_f1"]["mean"],
                          "std": sc["macro_f1"]["std"],
                          "per_class": {c: v["mean"] for c, v in sc["per_class"].items()},
                          "paper_cu": PAPER_CU.get(key) if pname == "a" else None})
    res = {"wall_seconds": round(wall, 1), "classification": table,
           "regression": {t: {k: r["test"][k] for k in ("mae", "coverage_2sigma", "n")}
                          for t, r in metrics["regression"].items()},
           "timings_s": metrics.get("timings_s")}
    (out / "run_benchmark.json").write_text(json.dumps(res, indent=2))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["labels", "run"])
    ap.add_argument("--data", default=None, help="data folder (default: $XASML_DATA or ../shared/data/omnixas-cu-feff)")
    ap.add_argument("--element", default="Cu")
    ap.add_argument("--n", type=int, default=100, help="structures in the labelling sample")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/local")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.what == "labels":
        from xasml.datasets.sites import default_data_path

        res = bench_labels(args.data or default_data_path(), args.element, args.n, args.n_jobs, out)
    else:
        res = bench_run(args.data, out)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
