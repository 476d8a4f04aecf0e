"""Benchmark of the topology indicator on the full shared FEFF10 dataset.

Runs ``xasml topology run`` (network + every baseline, same test split per seed) for several
seeds, building the dataset from the compound folders and re-labelling it from the catalogues
(conflicting compounds dropped), and writes

    <out>/results.json   per seed: the test-split table, timings; mean and std over seeds
    <out>/results.md     the table: F1 topological, F1 trivial, AUC per model (mean ± std), timing
    <out>/seed<N>/       the run folders (report, metrics, weights)

Usage::

    python benchmarks/topology.py [--data ../shared/data/feff10-topology-v0 [more.parquet ...]]
        [--grow data/feff10-topology-grown.parquet] [--labels ../shared/data/topology-labels]
        [--omnixas ../shared/data/omnixas-cu-feff] [--seeds 0 1 2 3 4] [--out runs/benchmarks/topology]
        [--config FILE] [--threads 1]

With ``--grow`` every seed runs twice: on ``--data`` alone, then with the ``--grow`` compounds
added to the training split only (same val and test compounds), so the two tables answer
whether more training compounds help, on identical test compounds.

The test split has about 30 compounds per seed, so single-seed scores move by several points
between seeds; compare models on the mean over seeds (and on the same seed, paired).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _fmt(vals: list) -> str:
    v = [x for x in vals if x is not None]
    if not v:
        return "—"
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def pooled_per_element(runs: list[Path], out: Path, models: tuple[str, ...] = ("topology_net", "svm_spectra")) -> dict:
    """Per-element recall / precision / F1 of test predictions pooled over all seeds' runs.

    Each seed tests a different ~15 % of the compounds, so pooling gives every element many more
    test compounds than one split does (the data of the paper's Figure 3d,e and S4, S6). Writes
    ``pooled_f1_<class>_<model>.png`` periodic tables into ``out``.
    """
    from xasml.evaluation.metrics import grouped_binary_metrics
    from xasml.report.figures import plot_periodic_table

    result = {}
    for name in models:
        y, pred, groups = [], [], []
        for run in runs:
            m = json.loads((run / "metrics.json").read_text())
            if name not in m["models"] or "compounds" not in m:
                continue
            t = m["models"][name]
            p = np.asarray(t["splits"]["test"]["probability"])
            y += m["compounds"]["test"]["y"]
            pred += (p >= t["threshold"]).astype(int).tolist()
            groups += m["compounds"]["test"]["elements"]
        if not y:
            continue
        per = grouped_binary_metrics(y, pred, groups)
        result[name] = per
        for cls in ("topological", "trivial"):
            vals = {el: v["per_class"][cls]["f1"] for el, v in per.items() if v["per_class"][cls]["support"] > 0}
            counts = {el: v["per_class"][cls]["support"] for el, v in per.items()}
            plot_periodic_table(vals, out / f"pooled_f1_{cls}_{name}.png", counts=counts, label="F1",
                                title=f"{name}: F1 of {cls} test compounds per element, pooled over {len(runs)} seeds")
    return result


def _summarize(per_seed: list[dict]) -> tuple[dict, dict]:
    """Per model: lists of scores over seeds, and mean/std/values."""
    models: dict[str, dict[str, list]] = {}
    for s in per_seed:
        for row in s["table"]:
            m = models.setdefault(row["model"], {"F1 topological": [], "F1 trivial": [], "AUC": [], "fit s": []})
            for key in m:
                m[key].append(row.get(key))

    def stat(v, f):
        v = [x for x in v if x is not None]
        return float(f(v)) if v else None

    summary = {name: {key: {"mean": stat(v, np.mean), "std": stat(v, np.std), "values": v} for key, v in m.items()}
               for name, m in models.items()}
    return models, summary


def _wins(models: dict, other: dict | None, a: str, b: str, key: str) -> int | None:
    """Seeds on which model ``a`` scores higher than ``b`` (``b`` read from ``other`` when given)."""
    other = models if other is None else other
    if a not in models or b not in other:
        return None
    return int(sum(x > y for x, y in zip(models[a][key], other[b][key]) if x is not None and y is not None))


def _table(models: dict) -> list[str]:
    lines = ["| model | F1 topological | F1 trivial | AUC | fit time (s) |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, m in models.items():
        lines.append(f"| {name} | {_fmt(m['F1 topological'])} | {_fmt(m['F1 trivial'])} | {_fmt(m['AUC'])} | "
                     f"{_fmt(m['fit s'])} |")
    return lines


def _one_run(run_topology, data, out: Path, seed: int, overrides: dict) -> dict:
    t = time.time()
    run = run_topology(data=data, out=out, seed=seed, config=overrides)
    metrics = json.loads((run / "metrics.json").read_text())
    runinfo = json.loads((run / "run.json").read_text())
    val = {name: {k: m["splits"]["val"].get(k) for k in ("auc", "macro_f1")}
           for name, m in metrics["models"].items() if "val" in m.get("splits", {})}
    return {"seed": seed, "run": str(run), "wall_s": round(time.time() - t, 1),
            "splits": metrics["splits"], "table": metrics["table_test"], "val": val,
            "resolution": metrics.get("resolution"), "timing": metrics.get("timing"),
            "data_fingerprint": runinfo.get("data_fingerprint"), "data": runinfo.get("data")}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", default=[str(SHARED / "feff10-topology-v0")],
                    help="feff10-topology-v0-style folder(s) / packed FEFF datasets read together, or one .parquet")
    ap.add_argument("--grow", nargs="+", default=None, metavar="PATH",
                    help="more compounds (folders / packed FEFF datasets): each seed is rerun with them added to the "
                         "TRAINING split only, val and test kept as in the run without them")
    ap.add_argument("--labels", default=str(SHARED / "topology-labels"), help="catalogue folder ('' to keep the data's labels)")
    ap.add_argument("--omnixas", default=str(SHARED / "omnixas-cu-feff"), help="omnixas-cu-feff folder to join ('' for none)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default=str(REPO / "runs" / "benchmarks" / "topology"))
    ap.add_argument("--config", default=None, help="TOML/JSON config for every run")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--resolution-all-seeds", action="store_true",
                    help="run the energy-resolution study for every seed (default: first seed only)")
    args = ap.parse_args(argv)

    import torch

    from xasml.topology.config import load_config
    from xasml.topology.run import run_topology

    torch.set_num_threads(args.threads)
    paths = [Path(d) for d in args.data]
    for d in paths + [Path(g) for g in args.grow or []]:
        if not d.exists():
            print(f"benchmark: data not found at {d} (pass --data / --grow)", file=sys.stderr)
            return 1
    data = paths[0] if len(paths) == 1 else paths
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    per_seed, grown, t_all = [], [], time.time()
    for k, seed in enumerate(args.seeds):
        cfg = load_config(args.config)
        if len(paths) > 1 or paths[0].is_dir() or args.grow:
            cfg["data"]["labels"] = args.labels or None
            cfg["data"]["omnixas"] = args.omnixas or None
        if k > 0 and not args.resolution_all_seeds:
            cfg["resolution"]["enabled"] = False
        overrides = {key: cfg[key] for key in cfg if key != "seed"}
        overrides["data"] = {kk: v for kk, v in cfg["data"].items() if kk != "resolved_path"}
        per_seed.append(_one_run(run_topology, data, out / f"seed{seed}", seed, overrides))
        print(f"[benchmark] seed {seed}: {per_seed[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
        if args.grow:
            sp = json.loads((Path(per_seed[-1]["run"]) / "splits.json").read_text())
            g = json.loads(json.dumps(overrides))
            g["split"]["fixed"] = {"val": sp["val"], "test": sp["test"]}
            g["resolution"]["enabled"] = False
            grown.append(_one_run(run_topology, paths + [Path(x) for x in args.grow], out / f"grown-seed{seed}",
                                  seed, g))
            print(f"[benchmark] seed {seed} grown: {grown[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)

    models, summary = _summarize(per_seed)
    comparison = {f"topology_net > {b} ({key})": _wins(models, None, "topology_net", b, key)
                  for b in ("svm_type", "nn_type", "svm_spectra") for key in ("F1 topological", "F1 trivial", "AUC")}
    import platform

    pooled = pooled_per_element([Path(s["run"]) for s in per_seed], out)

    result = {"benchmark": "topology", "data": [str(p) for p in paths], "labels": args.labels, "seeds": args.seeds,
              "n_seeds": len(args.seeds), "machine": {"platform": platform.platform(), "torch": torch.__version__,
                                                      "threads": args.threads,
                                                      "cuda": torch.cuda.is_available()},
              "wall_seconds": round(time.time() - t_all, 1), "summary": summary, "paired_wins": comparison,
              "pooled_per_element": pooled,
              "per_seed": per_seed}
    lines = [f"# Topology indicator benchmark ({len(args.seeds)} seeds: {', '.join(map(str, args.seeds))})", "",
             (f"Data: `{', '.join(map(str, paths))}` ({per_seed[0]['data'].get('n_compounds')} compounds; split "
              f"{per_seed[0]['splits']} for seed {per_seed[0]['seed']}). Test-split scores, mean ± std over seeds."),
             "", *_table(models)]
    lines += ["", "Paired comparison (number of seeds where the network scores higher):", ""]
    lines += [f"- {k}: {v}/{len(args.seeds)}" for k, v in comparison.items() if v is not None]
    if grown:
        gmodels, gsummary = _summarize(grown)
        gcomp = {f"topology_net > {b} ({key})": _wins(gmodels, None, "topology_net", b, key)
                 for b in ("svm_type", "nn_type", "svm_spectra") for key in ("F1 topological", "F1 trivial", "AUC")}
        gains = {f"{m} grown > {m} ({key})": _wins(gmodels, models, m, m, key)
                 for m in ("topology_net", "nn_type", "svm_spectra") for key in ("F1 topological", "F1 trivial", "AUC")}
        def val_mean(runs, name, key):
            v = [r["val"].get(name, {}).get(key) for r in runs]
            v = [x for x in v if x is not None]
            return round(float(np.mean(v)), 4) if v else None

        val_cmp = {name: {f"{key} {arm}": val_mean(runs, name, key) for key in ("auc", "macro_f1")
                          for arm, runs in (("base", per_seed), ("grown", grown))}
                   for name in ("topology_net", "nn_type", "svm_spectra")}
        result["grown_validation"] = val_cmp
        result["grown"] = {"paths": args.grow, "summary": gsummary, "paired_wins": gcomp, "gains_over_base": gains,
                           "per_seed": grown}
        lines += ["", f"## With the grown compounds added to training ({', '.join(args.grow)})", "",
                  (f"Same val and test compounds per seed as above; training split {grown[0]['splits'].get('train')} "
                   f"compounds instead of {per_seed[0]['splits'].get('train')} (seed {grown[0]['seed']})."), "",
                  *_table(gmodels), "", "Paired (seeds where the network scores higher):", ""]
        lines += [f"- {k}: {v}/{len(args.seeds)}" for k, v in gcomp.items() if v is not None]
        lines += ["", "Paired (seeds where the model trained with the grown set scores higher than without):", ""]
        lines += [f"- {k}: {v}/{len(args.seeds)}" for k, v in gains.items() if v is not None]
        lines += ["", "Validation split (the same compounds in both arms; used for early stopping and the "
                      "threshold, so optimistic, but the only split a choice may be made on), mean over seeds:", "",
                  "| model | AUC base | AUC grown | macro F1 base | macro F1 grown |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {n} | {v['auc base']} | {v['auc grown']} | {v['macro_f1 base']} | {v['macro_f1 grown']} |"
                  for n, v in val_cmp.items()]
    from xasml.utils import atomic_write_json, atomic_write_text

    result["wall_seconds"] = round(time.time() - t_all, 1)
    atomic_write_json(out / "results.json", result)
    if "topology_net" in pooled:
        rows = sorted(pooled["topology_net"].items(), key=lambda kv: -kv[1]["n"])[:15]
        lines += ["", ("Network, test predictions pooled over seeds, 15 most frequent elements "
                       "(`pooled_f1_*.png` for the periodic tables):"), "",
                  "| element | n | F1 topological | F1 trivial |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {el} | {v['n']} | {v['per_class']['topological']['f1']:.3f} | "
                  f"{v['per_class']['trivial']['f1']:.3f} |" for el, v in rows]
    times = ", ".join(f"{s['seed']}: {s['wall_s']:.0f} s" for s in per_seed + grown)
    lines += ["", (f"Per-run time: {times}; total {result['wall_seconds']:.0f} s on {platform.platform()} "
                   f"({args.threads} torch thread(s)).")]
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
