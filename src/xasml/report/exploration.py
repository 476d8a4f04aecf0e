"""Per-element PCA + k-means exploration report (Andrejevic et al. 2022, Sec. 3.1, Figure 1).

:func:`exploration_report` runs :func:`xasml.evaluation.exploration.pca_kmeans` for every
absorbing element of a labelled set, sorts the elements into the three patterns the paper
describes, and writes a Markdown report with Figure 1-style panels, confusion matrices,
periodic tables of the per-element F1 and a table of all elements.

From the command line, on a ``feff10-topology-v0``-style folder::

    python -m xasml.report.exploration --data ../shared/data/feff10-topology-v0 --out runs/exploration
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from xasml.utils import atomic_write_json, shared_data_dir

__all__ = ["classify_pattern", "element_matrices", "exploration_report", "main"]

CLASS_NAMES = ("trivial", "topological")

#: Short descriptions of the three patterns of Andrejevic et al. (2022), Figure 1 rows I-III.
PATTERNS = {
    "I": "one class favoured: nearly all of one class in one cluster, the other class split",
    "II": "balanced: both classes recovered with similar recall",
    "III": "no clustering by class",
}


def element_matrices(X, Z, mask, y, symbols: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split padded per-absorber arrays into one (spectra, labels) pair per element.

    Parameters
    ----------
    X : array_like, shape (n, max_absorbers, m)
        Element spectra of each compound (e.g. ``TopologyData.X``).
    Z : array_like of int, shape (n, max_absorbers)
        Atomic number of each absorber.
    mask : array_like of bool, shape (n, max_absorbers)
        True where an absorber is present.
    y : array_like, shape (n,)
        0/1 label of each compound.
    symbols : bool
        Key the result by element symbol (else by atomic number).

    Returns
    -------
    dict
        element -> (X_el of shape (n_el, m), y_el of shape (n_el,)), elements by atomic number.
    """
    from pymatgen.core.periodic_table import Element

    X, Z, mask, y = np.asarray(X), np.asarray(Z), np.asarray(mask, bool), np.asarray(y)
    out = {}
    for z in sorted({int(v) for v in Z[mask]}):
        rows, cols = np.nonzero((Z == z) & mask)
        key = Element.from_Z(z).symbol if symbols else z
        out[key] = (np.asarray(X[rows, cols], dtype=float), y[rows].astype(int))
    return out


def classify_pattern(metrics: Mapping, gap: float = 0.3, min_balanced: float = 0.7) -> str:
    """Which of the paper's three PCA + k-means patterns (Figure 1 rows) an element shows.

    Parameters
    ----------
    metrics : dict
        ``binary_metrics`` output of the matched clusters.
    gap : float
        Recall difference between the classes above which one class is "favoured" (row I).
    min_balanced : float
        Balanced accuracy needed to call a balanced result a separation (row II).

    Returns
    -------
    str
        ``"I"`` (one class favoured), ``"II"`` (balanced separation) or ``"III"`` (no
        clustering by class). The thresholds are ours; the paper classifies by eye.
    """
    r_triv = metrics["per_class"][CLASS_NAMES[0]]["recall"]
    r_top = metrics["per_class"][CLASS_NAMES[1]]["recall"]
    if metrics["balanced_accuracy"] < 0.6:
        return "III"
    if abs(r_top - r_triv) >= gap:
        return "I"
    return "II" if metrics["balanced_accuracy"] >= min_balanced else "III"


def exploration_report(data: Mapping[str, tuple], folder: str | Path,
                       title: str = "Per-element PCA + k-means exploration",
                       energies: Mapping[str, np.ndarray] | None = None, variance: float = 0.8,
                       n_clusters: int = 2, seed: int = 0, min_count: int = 6, min_per_class: int = 2,
                       n_panels: int = 3, balanced: bool = True, source: str = "") -> tuple[Path, dict]:
    """Run the per-element exploration and write ``<folder>/report.md`` with its figures.

    Parameters
    ----------
    data : dict
        element symbol -> ``(X, y)`` or ``(X, y, fit_mask)``: spectra (n_el, m_el) on one grid
        per element and 0/1 labels (see :func:`element_matrices`).
    folder : str or Path
        Output folder (``report.md``, ``exploration.json``, ``figures/*.png``).
    title : str
        Report title.
    energies : dict, optional
        element -> energy grid (eV) of its spectra; adds example-spectra figures.
    variance, n_clusters, seed, balanced
        Passed to :func:`xasml.evaluation.exploration.pca_kmeans`.
    min_count, min_per_class : int
        Elements with fewer spectra, or fewer of either class, are listed as skipped.
    n_panels : int
        Figure 1-style panels per pattern (the elements with most spectra).
    source : str
        Where the data came from (printed in the report).

    Returns
    -------
    (Path, dict)
        The report path and the summary also written to ``exploration.json``: per-element rows,
        the element-averaged metrics (paper Figure 3b,c "PCA + k-means" bars), the pattern of each
        element and the skipped elements.
    """
    from xasml.evaluation.exploration import pca_kmeans_by_element, summarize_pca_kmeans
    from xasml.report import figures as F
    from xasml.report.markdown import Report

    folder = Path(folder)
    figs = folder / "figures"
    results = pca_kmeans_by_element(dict(data), min_count=min_count, min_per_class=min_per_class,
                                    variance=variance, n_clusters=n_clusters, seed=seed, balanced=balanced)
    skipped = {el: {"n": len(item[1]), "n_pos": int(np.sum(item[1]))}
               for el, item in data.items() if el not in results}
    summary = summarize_pca_kmeans(results, class_names=CLASS_NAMES)
    for row in summary["rows"]:
        row["pattern"] = classify_pattern(results[row["element"]].metrics)
    rows = sorted(summary["rows"], key=lambda r: (-r["n"], r["element"]))
    summary.update({"rows": rows, "skipped": skipped, "variance": variance, "n_clusters": n_clusters,
                    "seed": seed, "balanced": balanced,
                    "patterns": {p: [r["element"] for r in rows if r["pattern"] == p] for p in PATTERNS}})

    rep = Report(folder, title)
    rep.paragraph(
        "Unsupervised exploration after Andrejevic et al., *Adv. Mater.* 34, 2204113 (2022), Sec. 3.1 and "
        f"Figure 1. For each absorbing element: PCA of its spectra, keeping the fewest leading components "
        f"that explain at least {100 * variance:.0f} % of the variance; k-means with {n_clusters} clusters on "
        "them; clusters matched to classes by the optimal assignment that minimises misclassifications "
        + ("weighted by inverse class frequency (maximum balanced accuracy)." if balanced else
           "(unweighted counts).")
        + (f" Data: `{source}`." if source else ""))
    counts_line = (f"{len(results)} elements analysed ({sum(r['n'] for r in rows)} element spectra); "
                   f"{len(skipped)} skipped (fewer than {min_count} spectra or fewer than {min_per_class} "
                   "of a class).")
    rep.bullets([counts_line] + [f"Pattern {p} ({desc}): {', '.join(summary['patterns'][p]) or '—'}"
                                 for p, desc in PATTERNS.items()])

    rep.heading("Element-averaged scores (the paper's PCA + k-means reference, Figure 3b,c)")
    mean = summary["mean"]
    rep.table([{"class": c, **mean[c]} for c in CLASS_NAMES])
    if rows:
        p = F.plot_metric_bars({c: {"recall": mean[c]["recall"], "precision": mean[c]["precision"],
                                    "F1": mean[c]["f1"]} for c in reversed(CLASS_NAMES)},
                               ["recall", "precision", "F1"], figs / "mean_scores.png",
                               title="PCA + k-means, mean over elements")
        rep.figure(p, "Recall, precision and F1 of each class, averaged over elements (unweighted).")

        rep.heading("Per-element F1 (Figure 3d,e style)")
        counts = {r["element"]: r["n"] for r in rows}
        for c in reversed(CLASS_NAMES):
            p = F.plot_periodic_table({r["element"]: r[f"f1_{c}"] for r in rows}, figs / f"periodic_f1_{c}.png",
                                      title=f"PCA + k-means: F1 of {c} examples", counts=counts, label="F1")
            rep.figure(p, f"F1 of the {c} class per absorbing element (n = spectra of that element).")

        rep.heading("Decision boundaries (Figure 1a) and confusion matrices (Figure 1b)")
        for pat, desc in PATTERNS.items():
            els = summary["patterns"][pat][:n_panels]
            if not els:
                continue
            rep.heading(f"Pattern {pat}: {desc}", level=3)
            for el in els:
                res = results[el]
                y_el = np.asarray(data[el][1]).astype(int)
                p = F.plot_pca_kmeans(res, y_el, figs / f"pca_kmeans_{el}.png", title=f"{el} K edge")
                rep.figure(p, f"{el}: spectra on PC1-PC2 coloured by true class; background: class of the "
                              f"matched k-means cluster ({res.n_components} PCs used).")
                p = F.plot_confusion(res.metrics["confusion"], list(CLASS_NAMES), figs / f"confusion_{el}.png",
                                     title=el)
                rep.figure(p, f"{el}: confusion matrix of the matched clusters.")
                if energies is not None and el in energies:
                    X_el = np.asarray(data[el][0])
                    p = F.plot_spectra(energies[el], {CLASS_NAMES[0]: X_el[y_el == 0], CLASS_NAMES[1]: X_el[y_el == 1]},
                                       figs / f"spectra_{el}.png", title=f"{el} K edge")
                    rep.figure(p, f"{el}: example spectra (thin) and class means (thick).")

    rep.heading("All elements")
    cols = ["element", "n", "n_pos", "n_components", "explained_variance", "pattern", "balanced_accuracy",
            "recall_topological", "precision_topological", "f1_topological", "recall_trivial",
            "precision_trivial", "f1_trivial"]
    rep.table(rows, columns=cols, floatfmt=".2f")
    if skipped:
        rep.paragraph("Skipped: " + ", ".join(f"{el} (n={v['n']}, topological {v['n_pos']})"
                                               for el, v in sorted(skipped.items())) + ".")
    atomic_write_json(folder / "exploration.json", summary)
    return rep.write(), summary


def _load_compound_folders(root: Path, include_holdout: bool = False):
    """(data, energies, source) from a feff10-topology-v0-style folder, via xasml.datasets.topology."""
    from xasml.datasets.topology import (
        TopologyFeaturizer,
        build_topology_frame,
        compounds_from_frame,
    )

    frame, _ = build_topology_frame(root, show_progress=sys.stderr.isatty())
    compounds = [c for c in compounds_from_frame(frame) if c.topological is not None
                 and (include_holdout or not c.holdout)]
    feat = TopologyFeaturizer().fit(compounds)
    per: dict[str, tuple[list, list]] = {}
    for c in compounds:
        for el, mu in feat.element_spectra(c).items():
            per.setdefault(el, ([], []))
            per[el][0].append(mu)
            per[el][1].append(int(c.topological))
    data = {el: (np.asarray(X), np.asarray(y)) for el, (X, y) in per.items()}
    energies = {el: feat.grids_[el].energy for el in data}
    return data, energies, f"{root} ({len(compounds)} labelled compounds)"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m xasml.report.exploration --data DIR --out DIR``."""
    ap = argparse.ArgumentParser(prog="python -m xasml.report.exploration",
                                 description="Per-element PCA + k-means exploration report of a labelled "
                                             "topology set (Andrejevic et al. 2022, Figure 1).")
    ap.add_argument("--data", default=str(shared_data_dir()
                                          / "feff10-topology-v0"),
                    help="folder with materials.csv and FEFF10/<key>/ compound folders (default: the "
                         "development copy ../shared/data/feff10-topology-v0)")
    ap.add_argument("--out", required=True, help="output folder for report.md, exploration.json, figures/")
    ap.add_argument("--variance", type=float, default=0.8, help="explained variance to keep (default 0.8)")
    ap.add_argument("--clusters", type=int, default=2, help="k-means clusters (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--min-count", type=int, default=6, help="minimum spectra per element (default 6)")
    ap.add_argument("--unbalanced", action="store_true", help="match clusters by raw counts (no imbalance "
                                                              "correction)")
    args = ap.parse_args(argv)
    from xasml.errors import XasmlError

    try:
        data, energies, source = _load_compound_folders(Path(args.data))
        path, summary = exploration_report(data, args.out, energies=energies, variance=args.variance,
                                           n_clusters=args.clusters, seed=args.seed, min_count=args.min_count,
                                           balanced=not args.unbalanced, source=source)
    except XasmlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    m = summary["mean"]
    print(f"{len(summary['rows'])} elements; mean F1 topological {m['topological']['f1']:.3f}, "
          f"trivial {m['trivial']['f1']:.3f}; report: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
