"""Benchmarks of ``xasml simulate feff`` (FEFF10 on Dask), results in ``benchmarks/results/simulate/``.

* ``reproduce``: re-simulate structures of the shared ``feff10-topology-v0`` and
  ``feff10-local-v0`` sets with the ``v0`` preset and compare every site's ``xmu.dat`` with the
  shipped one: Pearson r of mu on the common grid, the largest energy-grid difference (eV).
  Criterion: r >= 0.999 and the same grid within 0.01 eV.
* ``scaling``: the same sites with one and with two local workers; sites per hour of each and
  the ratio (criterion: >= 1.8x with two workers on two cores).

Usage::

    python benchmarks/simulate.py reproduce [--n 12] [--shared ../shared/data]
    python benchmarks/simulate.py scaling [--n-sites 8]

Both record the machine load (``os.getloadavg``) before and after: other work on the machine
(for example background simulations at a lower priority) is disclosed there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "simulate"


def _cheap_structures(shared: Path, n_topology: int, n_local: int, spread: bool = False) -> list[tuple[Path, str, str]]:
    """(structure.cif, key, elements) of compounds of the two v0 sets: the cheapest (fewest atoms x
    sites), or with ``spread`` evenly spaced over the cheaper half of each set."""
    from pymatgen.core import Structure

    out = []
    for name, n, elements in (("feff10-topology-v0", n_topology, "all"), ("feff10-local-v0", n_local, None)):
        rows = []
        for mj in sorted((shared / name / "FEFF10").glob("*/material.json")):
            meta = json.loads(mj.read_text())
            s = Structure.from_file(mj.parent / "structure.cif")
            if len(meta["sites"]) != len(list((mj.parent / "FEFF-XANES").glob("*/xmu.dat"))):
                continue
            rows.append((len(s) * len(meta["sites"]), mj.parent, meta.get("element") or elements))
        rows.sort(key=lambda r: (r[0], r[1].name))
        if spread and n > 1:  # evenly over the cheaper half: one- and two-site compounds, many elements
            take = sorted({int(round(i)) for i in np.linspace(0, (len(rows) - 1) / 2, n)})
            rows = [rows[i] for i in take]
        out += [(p / "structure.cif", p.name, el) for _, p, el in rows[:n]]
    return out


def _compare(ref: Path, new: Path) -> dict:
    from xasml.io.feff import read_feff_xmu

    a, b = read_feff_xmu(ref), read_feff_xmu(new)
    if len(a.energy) != len(b.energy):
        return {"same_grid": False, "n_ref": len(a.energy), "n_new": len(b.energy), "pearson_r": None,
                "max_abs_dE_eV": None}
    de = float(np.max(np.abs(a.energy - b.energy)))
    return {"same_grid": de <= 0.01, "n_ref": len(a.energy), "n_new": len(b.energy),
            "pearson_r": float(np.corrcoef(a.mu, b.mu)[0, 1]), "max_abs_dE_eV": de}


def reproduce(args) -> dict:
    from xasml.simulate.engine import simulate
    from xasml.simulate.sources import from_files

    shared = Path(args.shared)
    picks = _cheap_structures(shared, args.n - args.n_local, args.n_local, spread=True)
    work = Path(tempfile.mkdtemp(prefix="xasml-reproduce-"))
    rows, t0, load0 = [], time.perf_counter(), os.getloadavg()
    summaries = []
    try:
        for cif, key, el in picks:
            d = work / "in" / key
            d.mkdir(parents=True)
            shutil.copy(cif, d / "structure.cif")
        # topology compounds: every element; local compounds: their one absorber, key suffix stripped
        topo = [p for p in picks if p[2] == "all"]
        summaries.append(simulate(from_files([work / "in" / k for _, k, _ in topo]), work / "out", "all",
                                  workers=args.workers))
        for cif, key, el in picks:
            if el == "all":
                continue
            base = key.rsplit("-", 1)[0]
            (work / "in" / key).rename(work / "in" / base)
            summaries.append(simulate(from_files([work / "in" / base]), work / "out", [el], workers=args.workers))
        for cif, key, _ in picks:
            ref_dir = cif.parent / "FEFF-XANES"
            for ref in sorted(ref_dir.glob("*/xmu.dat")):
                new = work / "out" / "FEFF10" / key / "FEFF-XANES" / ref.parent.name / "xmu.dat"
                row = {"key": key, "site": ref.parent.name}
                row.update(_compare(ref, new) if new.exists() else {"same_grid": False, "pearson_r": None,
                                                                      "missing": True})
                rows.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rs = [r["pearson_r"] for r in rows if r.get("pearson_r") is not None]
    res = {"structures": len(picks), "sites": len(rows),
           "sites_passing": sum(1 for r in rows if r.get("pearson_r") is not None and r["pearson_r"] >= 0.999
                                and r["same_grid"]),
           "min_pearson_r": min(rs) if rs else None, "median_pearson_r": float(np.median(rs)) if rs else None,
           "max_abs_dE_eV": max((r["max_abs_dE_eV"] for r in rows if r.get("max_abs_dE_eV") is not None),
                                default=None),
           "core_seconds": round(sum(s["this_run"]["core_seconds"] for s in summaries), 1),
           "wall_seconds": round(time.perf_counter() - t0, 1), "workers": args.workers,
           "load_before": load0, "load_after": os.getloadavg(), "sites_detail": rows}
    return res


def scaling(args) -> dict:
    from xasml.simulate.engine import simulate
    from xasml.simulate.sources import from_files

    shared = Path(args.shared)
    picks = _cheap_structures(shared, args.n_structures, 0, spread=True)
    work = Path(tempfile.mkdtemp(prefix="xasml-scaling-"))
    chosen, n_sites = [], 0
    for cif, key, _ in picks:
        k = len(json.loads((cif.parent / "material.json").read_text())["sites"])
        if n_sites + k > args.n_sites:
            continue
        chosen.append((cif, key))
        n_sites += k
        if n_sites == args.n_sites:
            break
    out = {"sites": n_sites, "structures": [k for _, k in chosen], "runs": {}}
    try:
        for cif, key in chosen:
            (work / "in" / key).mkdir(parents=True)
            shutil.copy(cif, work / "in" / key / "structure.cif")
        for w in (1, 2):
            load0 = os.getloadavg()
            t0 = time.perf_counter()
            s = simulate(from_files([work / "in" / k for _, k in chosen]), work / f"out{w}", "all", workers=w)
            wall = time.perf_counter() - t0
            out["runs"][str(w)] = {"workers": w, "wall_seconds": round(wall, 1),
                                   "sites_done": s["this_run"]["done"], "failed": s["this_run"]["failed"],
                                   "core_seconds": s["this_run"]["core_seconds"],
                                   "sites_per_hour": round(3600 * s["this_run"]["done"] / wall, 1),
                                   "compute_wall_seconds": s["this_run"]["compute_wall_seconds"],
                                   "compute_sites_per_hour": s["this_run"]["compute_sites_per_hour"],
                                   "load_before": load0, "load_after": os.getloadavg()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r1, r2 = out["runs"]["1"], out["runs"]["2"]
    # end to end (cluster start-up and input writing included) and in the compute phase (from the
    # first task submitted to the last result), which is what a long run sees
    out["speedup_2_vs_1"] = round(r2["sites_per_hour"] / r1["sites_per_hour"], 3)
    out["speedup_2_vs_1_compute"] = round(r2["compute_sites_per_hour"] / r1["compute_sites_per_hour"], 3)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=("reproduce", "scaling"))
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--n", type=int, default=12, help="reproduce: structures in all")
    p.add_argument("--n-local", type=int, default=2, help="reproduce: of which from feff10-local-v0")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--n-sites", type=int, default=24, help="scaling: sites per run")
    p.add_argument("--n-structures", type=int, default=60, help="scaling: candidate structures (spread)")
    args = p.parse_args(argv)
    from xasml import __version__
    from xasml.simulate.engine import versions

    res = reproduce(args) if args.which == "reproduce" else scaling(args)
    res.update(date=time.strftime("%Y-%m-%d %H:%M:%S"), cpus=os.cpu_count(), versions=versions(),
               xasml=__version__)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.which}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "sites_detail"}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
