"""Oxidation state and coordination number of Ti along the zinc titanate film, with and without SDM.

The experimental case study of the Lu-group perspective (paper 002, §II.B-E, Figure 5): 100
measured Ti K-edge spectra along the Ti fraction f_Ti of a combinatorial Zn-Ti-O film
(``shared/data/experimental/tizn-film``, mcr_const, BSD-3-Clause). Each spectrum is given to
the Ti ``oxidation`` and ``cn`` model bundles as measured (their own preprocessing) and after
spectral domain mapping (cBSS with 4 motifs, 100 restarts: :mod:`xasml.measure.sdm`). Expected
(paper): OS flat near +4 (Ti4+ everywhere; the paper's SDM prediction is about +3.85) while the
prediction without SDM drifts at low f_Ti; CN rising to a peak near f_Ti 0.39.

    python benchmarks/tizn_film_sdm.py --model-dir DIR     # DIR/oxidation, DIR/cn: Ti bundles
    python benchmarks/tizn_film_sdm.py --dev-bundles DIR   # first build tiny development Ti bundles in DIR

``--dev-bundles`` trains small ensemble regressors on the 34 FEFF10 Ti sites of
``tests/data/sdm/ti_sites.npz`` (a development stand-in until the shipped Ti models exist).
Writes ``benchmarks/results/tizn_film_sdm/{results.json, os_cn_vs_fti.png}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FILM = Path("experimental") / "tizn-film" / "TiZn_multimodal_K-edge_spectra.csv"


def build_dev_bundles(out: Path, seed: int = 0) -> Path:
    """Tiny Ti oxidation/cn bundles (grid 4960-5010 eV, 101 points, max-normalised) with training spectra."""
    from xasml.models.bundle import ModelBundle
    from xasml.models.local_nets import SpectrumEnsembleRegressor
    from xasml.preprocess.grid import EnergyGrid

    z = np.load(ROOT / "tests" / "data" / "sdm" / "ti_sites.npz")
    X = z["X"].astype(float)
    for task, key in (("oxidation", "oxidation_state"), ("cn", "coordination_number")):
        est = SpectrumEnsembleRegressor(hidden=(64, 32), epochs=200, n_members=8, seed=seed, device="cpu",
                                        n_threads=1).fit(X, z[key])
        ModelBundle(task=task, estimator=est, element="Ti", edge="K", grid=EnergyGrid(4960.0, 5010.0, X.shape[1]),
                    feature_slice=(0, X.shape[1]), reference_mu=X.mean(axis=0),
                    info={"purpose": "development stand-in for the Ti models (benchmarks/tizn_film_sdm.py)",
                          "n_train_sites": len(X), "target": key}, training_spectra=X).save(out / task)
    return out


def plot(f, res: dict, path: Path) -> None:
    """Two panels (without / with SDM): OS on the left axis, CN on a right axis; error bars = model std."""
    from xasml.report.figures import _new_figure, _save

    fig = _new_figure((10.0, 3.9))
    axes = fig.subplots(1, 2)
    lims = {}  # the same axis range in both panels, so the trends compare
    for task in ("oxidation", "cn"):
        if task in res:
            v = [np.array(res[task][k]["prediction"]) + sgn * np.array(res[task][k]["std"])
                 for k in ("without_sdm", "with_sdm") for sgn in (-1, 1)]
            lo, hi = float(np.min(v)), float(np.max(v))
            lims[task] = (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    for ax, title, key in zip(axes, ("without SDM", "with SDM"), ("without_sdm", "with_sdm")):
        twin = ax.twinx()
        for task, target, color, name in (("oxidation", ax, "tab:red", "OS"), ("cn", twin, "tab:blue", "CN")):
            if task not in res:
                continue
            target.errorbar(f, res[task][key]["prediction"], yerr=res[task][key]["std"], fmt="o", ms=2.5, lw=0.6,
                            color=color, alpha=0.8)
            target.set_ylabel(f"predicted {name}", color=color)
            target.set_ylim(*lims[task])
        ax.set_xlabel("Ti fraction f_Ti")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _save(fig, path)


def main(argv=None) -> int:
    from xasml.io.matrix import read_spectrum_matrix
    from xasml.models.bundle import ModelBundle
    from xasml.measure.sdm import map_with_bundle, plot_basis
    from xasml.utils import atomic_write_json, set_threads, shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--model-dir", type=Path, help="folder holding oxidation/ and cn/ Ti bundles")
    g.add_argument("--dev-bundles", type=Path, help="build development Ti bundles here first, then use them")
    ap.add_argument("--data", type=Path, default=None, help="the film CSV (default: shared data)")
    ap.add_argument("--n-motifs", type=int, default=4)
    ap.add_argument("--n-restarts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tizn_film_sdm")
    args = ap.parse_args(argv)
    set_threads(1)
    model_dir = args.model_dir
    if args.dev_bundles is not None:
        t = time.perf_counter()
        model_dir = build_dev_bundles(args.dev_bundles, args.seed)
        print(f"development bundles in {model_dir} ({time.perf_counter() - t:.1f} s)")
    data = args.data or shared_data_dir() / FILM
    spectra = read_spectrum_matrix(data, "Ti", label_name="f_Ti")
    f = np.array([s.metadata["f_Ti"] for s in spectra])
    res: dict = {"data": str(data), "n_spectra": len(spectra), "n_motifs": args.n_motifs,
                 "n_restarts": args.n_restarts, "seed": args.seed, "model_dir": str(model_dir), "f_Ti": f.tolist()}
    for task in ("oxidation", "cn"):
        path = model_dir / task
        if not (path / "bundle.json").exists():
            print(f"no {task} bundle in {model_dir}; skipped", file=sys.stderr)
            continue
        bundle = ModelBundle.load(path)
        out = map_with_bundle(bundle, spectra, args.n_motifs, n_restarts=args.n_restarts, seed=args.seed)
        r = out["result"]
        entry = {"model": {"path": str(path), "info": bundle.info, "n_training_spectra": len(bundle.training_spectra)},
                 "sdm": r.summary(), "weights": r.weights.round(4).tolist()}
        for key in ("predictions", "predictions_sdm"):
            p = np.array([x["prediction"] for x in out[key]])
            s = np.array([x["std"] for x in out[key]])
            low, high = f < 0.2, f > 0.5
            entry["with_sdm" if key.endswith("sdm") else "without_sdm"] = {
                "prediction": p.tolist(), "std": s.tolist(), "mean": float(p.mean()), "spread": float(p.std()),
                "range": float(p.max() - p.min()), "mean_f_below_0.2": float(p[low].mean()),
                "mean_f_above_0.5": float(p[high].mean()), "mean_model_std": float(s.mean()),
                "corr_with_f_Ti": float(np.corrcoef(f, p)[0, 1]) if p.std() > 0 else 0.0}
        res[task] = entry
        args.out.mkdir(parents=True, exist_ok=True)
        plot_basis(r, args.out / f"basis_{task}.png", title=f"Ti K, {task} model: simulated vs optimised motifs")
        w, s = entry["without_sdm"], entry["with_sdm"]
        print(f"{task}: SDM {r.summary()['restarts_per_second']} restarts/s, residual RMS {r.residual.mean():.4f}, "
              f"mean weights {r.summary()['mean_weights']}")
        for name, e in (("without SDM", w), ("with SDM", s)):
            print(f"  {name:12s} mean {e['mean']:.3f}  spread {e['spread']:.3f}  range {e['range']:.3f}  "
                  f"f<0.2: {e['mean_f_below_0.2']:.3f}  f>0.5: {e['mean_f_above_0.5']:.3f}  "
                  f"corr(f_Ti) {e['corr_with_f_Ti']:+.2f}  model std {e['mean_model_std']:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "results.json", res)
    plot(f, res, args.out / "os_cn_vs_fti.png")
    print(f"wrote {args.out}/results.json, os_cn_vs_fti.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
