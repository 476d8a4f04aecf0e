"""The Markdown report of a topology run (figures of Andrejevic et al. 2022 on this run's data)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def _safe(fn, *args, **kwargs):
    """Draw one figure; a plotting failure becomes a warning, never a failed run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - a figure must not fail the run
        warnings.warn(f"figure {kwargs.get('path', args[2] if len(args) > 2 else '')} skipped: {exc}")
        return None


def write_report(run_path: str | Path, metrics: dict, cfg: dict, compounds: list, idx: dict, data: dict,
                 feat, fitted: dict) -> Path:
    """Write ``report/report.md`` and its PNG figures.

    Parameters
    ----------
    run_path : Path
        The run folder.
    metrics : dict
        Content of ``metrics.json``.
    cfg : dict
        Resolved configuration.
    compounds : list of TopologyCompound
    idx : dict
        Split name -> compound indices.
    data : dict
        Split name -> TopologyData.
    feat : TopologyFeaturizer
    fitted : dict
        Model name -> fitted estimator.

    Returns
    -------
    Path
        The report file.
    """
    from xasml.report.markdown import Report

    folder = Path(run_path) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    rep = Report(folder, "Topology indicator from K-edge XANES")
    info = metrics.get("splits", {})
    rep.paragraph(
        "Binary classifier of band topology (trivial vs topological) from the K-edge XANES of every "
        "element of a compound, after Andrejevic et al., *Adv. Mater.* 34, 2204113 (2022). "
        f"Compounds per split: {', '.join(f'{k} {v}' for k, v in info.items())}. Seed {cfg['seed']}. "
        "Every model is scored on the same test split; network thresholds come from the validation ROC.")
    _comparison_section(rep, folder, metrics)
    _roc_section(rep, folder, metrics)
    _confusion_section(rep, folder, metrics)
    _subclass_section(rep, metrics)
    _element_section(rep, folder, metrics)
    _pca_kmeans_section(rep, folder, metrics, fitted.get("pca_kmeans"), data.get("train"),
                        int(cfg["report"]["pca_elements"]))
    _spectra_section(rep, folder, compounds, feat, int(cfg["report"]["spectra_elements"]))
    _resolution_section(rep, folder, metrics)
    rep.heading("Data and timing")
    rep.json_block({"timing": metrics.get("timing", {}), "splits": info})
    return rep.write()


def _comparison_section(rep, folder: Path, metrics: dict) -> None:
    """Test-split table of every model and recall/precision/F1 bars per class (Figure 3b,c)."""
    from xasml.report import figures as F

    rep.heading("Test-split comparison (paper Figure 3b,c)")
    cols = ["model", "F1 topological", "F1 trivial", "AUC", "recall topo", "precision topo", "recall triv",
            "precision triv", "AUC val", "threshold", "fit s"]
    rep.table(metrics["table_test"], cols, caption="Test split; AUC val = validation AUC (model selection "
                                                   "uses validation only).")
    for cls in ("topological", "trivial"):
        short = "topo" if cls == "topological" else "triv"
        table = {r["model"]: {"recall": r[f"recall {short}"], "precision": r[f"precision {short}"],
                              "F1": r[f"F1 {cls}"]} for r in metrics["table_test"]}
        p = _safe(F.plot_metric_bars, table, ["recall", "precision", "F1"], folder / f"bars_{cls}.png",
                  title=f"{cls.capitalize()} examples (test)")
        if p:
            rep.figure(p, f"Recall, precision and F1 of {cls} compounds on the test split, per model.")


def _roc_section(rep, folder: Path, metrics: dict) -> None:
    """Test ROC of every model, and the network's ROC per split (Figure 3a)."""
    from xasml.report import figures as F

    rep.heading("ROC curves (paper Figure 3a)")
    curves = {name: {**m["splits"]["test"]["roc"], "auc": m["splits"]["test"]["auc"]}
              for name, m in metrics["models"].items() if "test" in m["splits"]}
    p = _safe(F.plot_roc, curves, folder / "roc_test.png", title="Test split")
    if p:
        rep.figure(p, "ROC curves of every model on the test split.")
    if "topology_net" in metrics["models"]:
        m = metrics["models"]["topology_net"]
        curves = {s: {**v["roc"], "auc": v["auc"]} for s, v in m["splits"].items()}
        p = _safe(F.plot_roc, curves, folder / "roc_network.png", title="Network: ROC per split")
        if p:
            rep.figure(p, f"Network ROC per split; decision threshold {m['threshold']:.3f} (validation ROC).")


def _confusion_section(rep, folder: Path, metrics: dict) -> None:
    """Test confusion matrix of every model."""
    from xasml.report import figures as F

    rep.heading("Confusion matrices (test)")
    for name, m in metrics["models"].items():
        if "test" in m["splits"]:
            p = _safe(F.plot_confusion, np.asarray(m["splits"]["test"]["confusion"]), ["trivial", "topological"],
                      folder / f"confusion_{name}.png", title=name)
            if p:
                rep.figure(p, f"{name}: rows true class, columns predicted class (test).")


def _subclass_section(rep, metrics: dict) -> None:
    """Test recall of the true class within each subclass, per model (Figure S8)."""
    rep.heading("Per-subclass recall (paper Figure S8)")
    rows = []
    for name, m in metrics["models"].items():
        row = {"model": name}
        for s, v in m.get("per_subclass", {}).items():
            row[f"{s} (n={v['n']})"] = v["recall"]
        rows.append(row)
    rep.table(rows, caption="Test-split recall of the true class within each subclass.")


def _element_section(rep, folder: Path, metrics: dict) -> None:
    """Periodic tables of per-element F1 and the per-element table of the network and the spectral
    SVM (Figure 3d,e)."""
    from xasml.report import figures as F

    rep.heading("Per-element scores (paper Figure 3d,e)")
    for name in [n for n in ("topology_net", "svm_spectra") if n in metrics["models"]]:
        pe = metrics["models"][name].get("per_element", {})
        for cls in ("topological", "trivial"):
            vals = {el: v["per_class"][cls]["f1"] for el, v in pe.items() if v["per_class"][cls]["support"] > 0}
            counts = {el: v["per_class"][cls]["support"] for el, v in pe.items()}
            p = _safe(F.plot_periodic_table, vals, folder / f"periodic_f1_{cls}_{name}.png",
                      title=f"{name}: F1 of {cls} compounds containing each element (test)", counts=counts,
                      label="F1")
            if p:
                rep.figure(p, f"{name}: per-element F1 of {cls} compounds, test split (n = compounds "
                              "of that class containing the element).")
        rows = [{"element": el, "n": v["n"], "F1 topo": v["per_class"]["topological"]["f1"],
                 "F1 triv": v["per_class"]["trivial"]["f1"], "recall topo": v["per_class"]["topological"]["recall"],
                 "precision topo": v["per_class"]["topological"]["precision"]} for el, v in pe.items()]
        rows.sort(key=lambda r: -r["n"])
        rep.table(rows[:20], caption=f"{name}: per-element scores on the test split (20 most frequent elements).")


def _pca_kmeans_section(rep, folder: Path, metrics: dict, pk, train, n_elements: int) -> None:
    """PCA + k-means of the ``n_elements`` most frequent elements' training spectra (Figure 1);
    nothing when the model was not fitted."""
    from xasml.report import figures as F

    if pk is None or not getattr(pk, "results_", None):
        return
    rep.heading("PCA + k-means per element (paper Figure 1)")
    from xasml.datasets.topology import atomic_number

    els = sorted(pk.results_, key=lambda e: -len(pk.results_[e].Z))[:n_elements]
    for el in els:
        z = atomic_number(el)
        r, _ = np.nonzero((train.Z == z) & train.mask)
        p = _safe(F.plot_pca_kmeans, pk.results_[el], train.y[r], folder / f"pca_kmeans_{el}.png",
                  title=f"{el} K edge (training compounds)")
        if p:
            rep.figure(p, f"{el}: first two principal components of the training spectra, coloured by "
                          "true class; background = class of the matched k-means cluster.")
    pe = metrics.get("pca_kmeans_element_average")
    if pe:
        rep.table([{"element": el, "n": v["n"], "F1 topo": v["per_class"]["topological"]["f1"],
                    "F1 triv": v["per_class"]["trivial"]["f1"]} for el, v in pe["per_element"].items()],
                  caption="PCA + k-means on each element's test spectra; the table row "
                          "'pca_kmeans (element average)' averages these over elements as the paper does.")


def _spectra_section(rep, folder: Path, compounds: list, feat, n_elements: int) -> None:
    """Spectra of each class on the model grid for the ``n_elements`` most frequent elements."""
    from xasml.report import figures as F

    rep.heading("Example spectra per class")
    for el in sorted(feat.counts_, key=lambda e: -feat.counts_[e])[:n_elements]:
        groups: dict[str, list] = {"trivial": [], "topological": []}
        for c in compounds:
            if el in c.sites:
                mu = feat.element_spectra(c)[el]
                groups["topological" if c.topological else "trivial"].append(mu)
        spectra = {k: np.asarray(v) for k, v in groups.items() if v}
        g = feat.grids_[el]
        p = _safe(F.plot_spectra, g.energy, spectra, folder / f"spectra_{el}.png",
                  title=f"{el} K edge: element-averaged FEFF10 spectra", ylabel="μ(E) (FEFF, normalised)")
        if p:
            rep.figure(p, f"{el} K-edge spectra on the model grid ({g.start:.1f}-{g.stop:.1f} eV), thin: "
                          "examples, thick: class mean.")


def _resolution_section(rep, folder: Path, metrics: dict) -> None:
    """Test F1 against the energy-averaging interval ΔE (Figure S7); nothing without the study."""
    from xasml.report import figures as F

    res = metrics.get("resolution")
    if not (res and res["models"]):
        return
    rep.heading("Energy resolution (paper Figure S7)")
    x = np.asarray(res["delta_e"], dtype=float)
    ref = {}
    for base in ("nn_type", "svm_type"):
        if base in metrics["models"] and "test" in metrics["models"][base]["splits"]:
            ref[f"{base} F1 topo"] = metrics["models"][base]["splits"]["test"]["per_class"]["topological"]["f1"]
    curves = {}
    for name, r in res["models"].items():
        curves[f"{name} F1 topo"] = (np.asarray(r["f1_topological"], float), None)
        curves[f"{name} F1 triv"] = (np.asarray(r["f1_trivial"], float), None)
    p = _safe(F.plot_curves, x, curves, folder / "resolution.png", xlabel="ΔE (eV)", ylabel="F1 (test)",
              title="Spectra averaged over ΔE intervals", ylim=(0, 1.05), reference=ref)
    if p:
        rep.figure(p, "Test F1 against the averaging interval ΔE (dotted: atom-type-only models).")
    rows = []
    for name, r in res["models"].items():
        for i, de in enumerate(res["delta_e"]):
            rows.append({"model": name, "ΔE (eV)": de, "points/interval": r["points_per_interval"][i],
                         "F1 topo": r["f1_topological"][i], "F1 triv": r["f1_trivial"][i], "AUC": r["auc"][i]})
    rep.table(rows)
