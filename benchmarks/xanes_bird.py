"""The XANES bird (Lu-group perspective, paper 002 §III.C, Fig. 7) on every site spectrum xasml has.

Sources: ``feff10-topology-v0`` (all elements), ``feff10-local-v0`` (3d metals), the OmniXAS Cu
FEFF set, the sets grown with ``xasml simulate`` (``data/*.parquet`` when present) and the
unlabelled OmniXAS ``ml_data`` FEFF validation spectra of Co, Cr, Ni, Ti and V (their Cu
spectra are the OmniXAS Cu set again, so they are left out). Steps:

1. ``xasml curate`` with the paper's preset (200 points over 35 eV per element from its lowest
   energy, normalised spectra, Z < 52 without noble gases, exact duplicates, near duplicates in
   Cd/Zn/Cr/S, pointwise 3σ filter per element);
2. bond-valence oxidation states of the absorbers (``xasml.labels.site``; the shipped Cu labels
   reused) where a structure exists;
3. UMAP with the paper's parameters (n_neighbors 94, min_dist 0.1, random_state 1579);
4. the map coloured by periodic-table section and by oxidation state, and a report.

Usage::

    python benchmarks/xanes_bird.py [--shared ../shared/data] [--out benchmarks/results/xanes_bird]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def omnixas_ml_parquet(shared: Path, out: Path, elements=("Co", "Cr", "Ni", "Ti", "V")) -> int:
    """The OmniXAS ml_data FEFF validation spectra as a dataset Parquet (kind ``norm``)."""
    from xasml.datasets.format import write_dataset

    ml = shared / "omnixas-ml-data"
    grid = json.loads((ml / "energy_grid.json").read_text())
    rows = []
    for el in elements:
        y = np.loadtxt(ml / "ml_data" / f"{el}_FEFF_val_y.txt", ndmin=2)
        ids = (ml / "material_id_and_site" / f"{el}_FEFF_val.txt").read_text().split()
        e = grid["e_start_eV"][el] + grid["step_eV"] * np.arange(grid["n_points"])
        for mid_site, mu in zip(ids, y):
            mid, site = mid_site.rsplit("_", 1)
            rows.append({"material_id": mid, "absorbing_element": el, "edge": "K", "absorbing_index": int(site),
                         "multiplicity": 1, "energy": e.tolist(), "mu": mu.tolist(),
                         "source": f"omnixas-ml-data/ml_data/{el}_FEFF_val_y.txt", "kind": "norm"})
    write_dataset(out, pd.DataFrame(rows), kind="spectra", attribution="OmniXAS (BSD-3-Clause)")
    return len(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "xanes_bird"))
    p.add_argument("--max-spectra", type=int, default=None, help="embed a seeded subset of this size")
    p.add_argument("--n-jobs", type=int, default=1)
    args = p.parse_args(argv)

    from xasml.curate import CurateOptions, curate
    from xasml.datasets.format import read_dataset
    from xasml.datasets.sites import build_site_table
    from xasml.evaluation.bird import xanes_bird
    from xasml.report.figures import plot_embedding

    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    grown = sorted((REPO / "data").glob("*.parquet"))
    feff_sources = [shared / "feff10-topology-v0", shared / "feff10-local-v0", shared / "omnixas-cu-feff" / "FEFF" / "Cu",
                    *grown]
    with tempfile.TemporaryDirectory(prefix="xasml-bird-") as tmp:
        tmp = Path(tmp)
        n_ml = omnixas_ml_parquet(shared, tmp / "omnixas_ml.parquet")
        report = curate([*feff_sources, tmp / "omnixas_ml.parquet"], tmp / "curated.parquet",
                        CurateOptions.preset("paper"), report_path=out / "curation.json")
        cur, _ = read_dataset(tmp / "curated.parquet")
    t_curate = time.time() - t0
    # oxidation states where a structure exists (topology/local/grown sets; Cu from the shipped labels)
    elements = sorted(set(cur["absorbing_element"]))
    sites, lab_report = build_site_table(feff_sources, elements, cache=REPO / "runs" / "cache" / "bird_labels.parquet",
                                         seed_cache=REPO / "src" / "xasml" / "data" / "local" / "labels_Cu.parquet",
                                         n_jobs=args.n_jobs)
    ox = sites.set_index(["material_id", "absorbing_index"])["oxidation_state"]
    ox = ox[~ox.index.duplicated()]
    keys = list(zip(cur["material_id"], cur["absorbing_index"].astype("Int64")))
    states = [ox.get(k) if k[1] is not pd.NA else None for k in keys]
    X = np.stack([np.asarray(m, dtype=float) for m in cur["mu"]])
    t1 = time.time()
    bird = xanes_bird(X, list(cur["absorbing_element"]), states, max_spectra=args.max_spectra)
    t_umap = time.time() - t1
    Z = bird["embedding"]
    f1 = plot_embedding(Z, np.array(bird["group"]), out / "xanes_bird_groups.png", s=3, alpha=0.6,
                        title=f"XANES bird: {len(Z)} K-edge site spectra, by periodic-table section",
                        xlabel="UMAP 1", ylabel="UMAP 2")
    f2 = plot_embedding(Z, np.array(bird["oxidation"]), out / "xanes_bird_oxidation.png", s=3, alpha=0.6,
                        title="XANES bird by bond-valence oxidation state of the absorber",
                        xlabel="UMAP 1", ylabel="UMAP 2")
    els = np.array([cur["absorbing_element"].iloc[i] for i in bird["rows"]])
    by_el = np.where(np.isin(els, ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")), els,
                     np.array(bird["group"], dtype=object))
    f3 = plot_embedding(Z, by_el, out / "xanes_bird_elements.png", s=3, alpha=0.6,
                        title="XANES bird: 3d metals by element, other absorbers by section",
                        xlabel="UMAP 1", ylabel="UMAP 2")
    counts_el = pd.Series([cur["absorbing_element"].iloc[i] for i in bird["rows"]]).value_counts()
    counts_group = pd.Series(bird["group"]).value_counts()
    counts_ox = pd.Series(bird["oxidation"]).value_counts()
    res = {"n_input": int(report["n_input"]) if "n_input" in report else None, "n_ml_data": n_ml,
           "n_curated": int(len(cur)), "n_embedded": int(len(Z)), "umap": bird["params"],
           "elements": {k: int(v) for k, v in counts_el.items()},
           "groups": {k: int(v) for k, v in counts_group.items()},
           "oxidation_states": {k: int(v) for k, v in counts_ox.items()},
           "sources": [str(s) for s in feff_sources] + ["omnixas-ml-data (Co, Cr, Ni, Ti, V validation spectra)"],
           "labels": {k: v for k, v in lab_report.items() if k != "by_dataset"},
           "seconds": {"curate": round(t_curate, 1), "umap": round(t_umap, 1), "total": round(time.time() - t0, 1)},
           "figures": [f1.name, f2.name, f3.name]}
    np.save(out / "embedding.npy", Z.astype(np.float32))
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    md = ["# XANES bird (paper 002, Fig. 7)", "",
          (f"{res['n_embedded']} K-edge site spectra of {len(counts_el)} elements after curation with the paper's "
           f"preset (`curation.json`), UMAP n_neighbors={bird['params']['n_neighbors']}, "
           f"min_dist={bird['params']['min_dist']}, random_state={bird['params']['seed']}, "
           f"{bird['params']['n_points']} points per spectrum (each on its element's grid)."), "",
          f"Sources: {', '.join(res['sources'])}.", "",
          "| periodic-table section | spectra |", "| --- | ---: |",
          *[f"| {k} | {v} |" for k, v in res["groups"].items()], "",
          "| oxidation state (BVAnalyzer) | spectra |", "| --- | ---: |",
          *[f"| {k} | {v} |" for k, v in res["oxidation_states"].items()], "",
          f"![groups]({f1.name})", "", f"![oxidation]({f2.name})", "", f"![elements]({f3.name})", "",
          ("The map is dominated by 3d metals because xasml's data are (the OmniXAS Cu set and the 3d-metal "
           "sets); the paper's map had 295,832 Materials Project spectra of 47 elements."), "",
          (f"Time on 2 cores: curation {res['seconds']['curate']} s, UMAP {res['seconds']['umap']} s, "
           f"total {res['seconds']['total']} s (labels cached).")]
    (out / "report.md").write_text("\n".join(md) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k not in ("elements",)}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
