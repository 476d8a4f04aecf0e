"""``xasml topology run``: build the dataset, split, train the network and every baseline, evaluate, report.

The evaluation follows Andrejevic et al., Adv. Mater. 34, 2204113 (2022): recall, precision
and F1 of each class (Eq. 1a-c), ROC curve and AUC per split (Figure 3a), the comparison of
models (Figure 3b,c; Figure S5a), per-element F1 / precision / recall (Figure 3d,e; S4, S6),
per-subclass recall (Figure S8), confusion matrices, PCA + k-means maps (Figure 1), and the
energy-resolution study (Figure S7). Every model is scored on the same test split; the
decision threshold of the networks is chosen on the validation split, never on the test split.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from xasml.errors import DataError

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data" / "topology"
#: the compact default dataset shipped with the package
BUNDLED_DATASET = PACKAGE_DATA / "dataset.parquet"
#: the pretrained network shipped with the package
BUNDLED_MODEL = PACKAGE_DATA / "model"
#: the atom-type-only baseline (paper: SVM-type), trained with the bundled network (seed 0, same split)
BUNDLED_ATOM_TYPE_MODEL = PACKAGE_DATA / "atom_type"
CLASS_NAMES = ("trivial", "topological")
NETWORK_MODELS = ("topology_net", "nn_type")


def frame_fingerprint(frame) -> str:
    """SHA-256 of a topology table's content (ids, energies, mu, labels), independent of its file."""
    from xasml.utils import fingerprint_arrays

    ids = np.frombuffer("\n".join(map(str, frame["material_id"])).encode(), dtype=np.uint8)
    return fingerprint_arrays(ids, np.concatenate(list(frame["energy"])), np.concatenate(list(frame["mu"])),
                              np.asarray(frame["topological"], dtype=np.int64))


def make_model(name: str, cfg: dict, seed: int, n_points: int):
    """Instantiate a model of the run from the configuration.

    Parameters
    ----------
    name : str
        A registered model name or a key of ``cfg["network_variants"]``.
    cfg : dict
        Resolved configuration.
    seed : int
    n_points : int
        Spectrum length.
    """
    from xasml.models import get_model

    net = dict(cfg["network"])
    net["hidden"] = tuple(net["hidden"])
    if name in cfg["network_variants"]:
        over = dict(cfg["network_variants"][name])
        if "hidden" in over:
            over["hidden"] = tuple(over["hidden"])
        return get_model("topology_net")(n_points=n_points, seed=seed, **{**net, **over})
    cls = get_model(name)
    if name in NETWORK_MODELS:
        return cls(n_points=n_points, seed=seed, **net)
    if name.startswith("svm"):
        return cls(seed=seed, **cfg["svm"])
    if name == "pca_kmeans":
        return cls(seed=seed, **cfg["pca_kmeans"])
    return cls()


def _evaluate(model, data: dict, compounds_elements: dict) -> dict:
    """Metrics of one fitted model on every split."""
    from xasml.evaluation.metrics import binary_metrics, grouped_binary_metrics

    out: dict[str, Any] = {"threshold": float(model.threshold_), "splits": {}}
    for split, d in data.items():
        if not len(d):
            continue
        p = model.predict_proba(d)[:, 1]
        m = binary_metrics(d.y, p, threshold=model.threshold_, class_names=CLASS_NAMES)
        m["probability"] = p.tolist()
        out["splits"][split] = m
    if "test" in data and len(data["test"]):
        d = data["test"]
        pred = (np.asarray(out["splits"]["test"]["probability"]) >= model.threshold_).astype(int)
        out["per_element"] = grouped_binary_metrics(d.y, pred, compounds_elements["test"], class_names=CLASS_NAMES)
        sub = grouped_binary_metrics(d.y, pred, list(d.subclass), class_names=CLASS_NAMES)
        out["per_subclass"] = {s: {"n": v["n"], "recall": v["per_class"]["trivial" if s == "trivial" else
                                                                      "topological"]["recall"]}
                               for s, v in sub.items()}
    return out


def _pca_element_average(model, data) -> dict:
    """The paper's PCA + k-means score: metrics per element on its own spectra, averaged over elements."""
    from xasml.evaluation.metrics import binary_metrics

    S = model.element_scores(data)
    per_el, rows = {}, []
    from pymatgen.core.periodic_table import Element

    for z in sorted(model.elements_):
        r, c = np.nonzero((data.Z == z) & data.mask & ~np.isnan(S))
        if len(r) < 2:
            continue
        m = binary_metrics(data.y[r], S[r, c], threshold=0.5, class_names=CLASS_NAMES)
        per_el[Element.from_Z(z).symbol] = {"n": m["n"], "n_pos": m["n_pos"], "per_class": m["per_class"]}
        rows.append(m["per_class"])
    avg = {}
    for cls in CLASS_NAMES:
        for k in ("recall", "precision", "f1"):
            vals = [r[cls][k] for r in rows if r[cls]["support"] > 0]
            avg[f"{k}_{cls}"] = float(np.mean(vals)) if vals else None
    return {"per_element": per_el, "average": avg, "n_elements": len(per_el)}


def summary_table(metrics: dict, split: str = "test") -> list[dict]:
    """One row per model: F1 / recall / precision of both classes, AUC, threshold (``split`` scores)."""
    rows = []
    for name, m in metrics["models"].items():
        s = m["splits"].get(split)
        if not s:
            continue
        pc = s["per_class"]
        rows.append({"model": name, "F1 topological": pc["topological"]["f1"], "F1 trivial": pc["trivial"]["f1"],
                     "recall topo": pc["topological"]["recall"], "precision topo": pc["topological"]["precision"],
                     "recall triv": pc["trivial"]["recall"], "precision triv": pc["trivial"]["precision"],
                     "AUC": s["auc"], "AUC val": m["splits"].get("val", {}).get("auc"),
                     "threshold": m["threshold"], "fit s": m.get("fit_seconds")})
    pe = metrics.get("pca_kmeans_element_average")
    if pe and split == "test":
        a = pe["average"]
        rows.append({"model": "pca_kmeans (element average)", "F1 topological": a["f1_topological"],
                     "F1 trivial": a["f1_trivial"], "recall topo": a["recall_topological"],
                     "precision topo": a["precision_topological"], "recall triv": a["recall_trivial"],
                     "precision triv": a["precision_trivial"], "AUC": None})
    return rows


def load_data(data_paths: list[Path], cfg: dict, show_progress: bool = True) -> tuple[Any, dict]:
    """The site-spectrum table of a run: built from FEFF folders / packed datasets (re-labelled from
    the catalogues of ``cfg["data"]["labels"]`` when given, OmniXAS compounds joined), or read from
    one built ``.parquet`` dataset.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table and ``source``/``kind``/``build`` information.
    """
    from xasml.datasets.topology import build_topology_frame, load_topology_frame
    from xasml.simulate.pack import is_packed

    labeler = None
    if cfg["data"]["labels"]:
        from xasml.labels.topology import TopologyLabeler

        labeler = TopologyLabeler.from_folder(cfg["data"]["labels"],
                                              ambiguous_catalogue=cfg["data"]["ambiguous_catalogue"])
    data_path = data_paths[0] if len(data_paths) == 1 else data_paths
    if len(data_paths) > 1 or data_paths[0].is_dir() or is_packed(data_paths[0]):
        frame, build = build_topology_frame(data_path, labeler=labeler, omnixas=cfg["data"]["omnixas"],
                                            show_progress=show_progress)
        return frame, {"source": str(data_path), "kind": "folder", "build": build}
    return load_topology_frame(data_path, show_progress=show_progress)


def split_compounds(compounds: list, cfg: dict, seed: int) -> tuple[dict[str, list[int]], str]:
    """Train / val / test (and holdout) indices of the compounds, and how they were made.

    Compounds flagged ``holdout`` form their own split. With ``cfg["split"]["fixed"]`` the named
    val and test compounds are used and every other compound trains; otherwise
    :func:`xasml.datasets.splits.balanced_split` (element by element, rarest first, stratified by
    subclass; Andrejevic et al. 2022) with ``cfg["split"]["fractions"]``.

    Raises
    ------
    DataError
        If ``split.fixed`` names compounds that are not in the data, or the splits overlap.
    """
    from xasml.datasets.splits import balanced_split, check_disjoint

    holdout = [i for i, c in enumerate(compounds) if c.holdout]
    pool = [i for i, c in enumerate(compounds) if not c.holdout]
    fixed = cfg["split"].get("fixed") or {}
    if fixed:
        by_id = {compounds[i].material_id: i for i in pool}
        unknown = [m for k in ("val", "test") for m in fixed.get(k, []) if m not in by_id]
        if unknown:
            raise DataError(f"config: split.fixed names compounds not in the data: {', '.join(unknown[:5])}")
        idx = {k: [by_id[m] for m in fixed.get(k, [])] for k in ("val", "test")}
        taken = set(idx["val"]) | set(idx["test"])
        idx = {"train": [i for i in pool if i not in taken], **idx}
        method = "fixed val/test ids from the config, every other compound in train"
    else:
        sp = balanced_split([compounds[i].elements for i in pool], [compounds[i].subclass for i in pool],
                            fractions=tuple(cfg["split"]["fractions"]), seed=seed)
        idx = {k: [pool[j] for j in v] for k, v in sp.items()}
        method = "balanced_split (element by element, rarest first, stratified by subclass)"
    if holdout:
        idx["holdout"] = holdout
    check_disjoint({k: [compounds[i].material_id for i in v] for k, v in idx.items()}, len(compounds))
    return idx, method


def run_topology(data: str | Path | None = None, out: str | Path | None = None, seed: int | None = None,
                 config: str | Path | dict | None = None, show_progress: bool = True,
                 overwrite: bool = False) -> Path:
    """Run the whole topology-indicator experiment and write a run folder.

    Parameters
    ----------
    data : str or Path, optional
X
        ``data.path``, else the dataset bundled with the package.
    out : str or Path, optional
        Run folder (default ``runs/topology-<date>-<time>``).
    seed : int, optional
        Overrides the config's seed.
    config : str, Path or dict, optional
        Config file (TOML/JSON) or a dict of overrides (see :mod:`xasml.topology.config`).
    show_progress : bool
        Progress bars and one status line per step on stderr.
    overwrite : bool
        Clear ``out`` first when it is an existing run folder; without it a non-empty ``out``
        is refused (:func:`xasml.runs.claim_run_dir`).

    Returns
    -------
    Path
        The run folder: ``config.json``, ``run.json``, ``splits.json``, ``models/<name>/``,
        ``metrics.json``, ``report/report.md`` and PNGs.

    Raises
    ------
    DataError
        On invalid data or configuration, or a non-empty ``out`` without ``overwrite``.
    """
    import sys

    from xasml.datasets.splits import split_summary
    from xasml.datasets.topology import TopologyFeaturizer, compounds_from_frame
    from xasml.runs import RunFolder
    from xasml.topology.config import load_config
    from xasml.utils import atomic_write_json, progress, seed_everything

    if isinstance(config, dict):
        cfg = load_config(None, **config)
    else:
        cfg = load_config(config)
    if seed is not None:
        cfg["seed"] = int(seed)
    if data is not None:
        cfg["data"]["path"] = [str(d) for d in data] if isinstance(data, (list, tuple)) else str(data)
    seed = int(cfg["seed"])
    given = cfg["data"]["path"]
    data_paths = [Path(p) for p in given] if isinstance(given, (list, tuple)) else [Path(given or BUNDLED_DATASET)]
    for data_path in data_paths:
        if not data_path.exists():
            raise DataError(f"{data_path}: dataset not found (pass --data PATH: a .parquet dataset, a packed FEFF "
                            f"dataset or a feff10-topology-v0-style folder)")
    data_path = data_paths[0] if len(data_paths) == 1 else data_paths
    cfg["data"]["resolved_path"] = str(data_path) if len(data_paths) == 1 else [str(p) for p in data_paths]
    if out is None:
        from xasml.runs import default_run_dir

        out = default_run_dir("topology")

    def say(msg: str) -> None:
        if show_progress:
            print(f"[topology] {msg}", file=sys.stderr, flush=True)

    seed_everything(seed)
    run = RunFolder(out, cfg, seed=seed, overwrite=overwrite)
    timing: dict[str, float] = {}
    t0 = time.time()

    # ---- data ---------------------------------------------------------------------------------
    frame, info = load_data(data_paths, cfg, show_progress)
    compounds = compounds_from_frame(frame)
    if len(compounds) < 10:
        raise DataError(f"{data_path}: only {len(compounds)} compounds; the run needs at least 10")
    timing["data_s"] = round(time.time() - t0, 2)
    n_topo = sum(int(c.topological) for c in compounds)
    say(f"{len(compounds)} compounds ({n_topo} topological, {len(compounds) - n_topo} trivial), "
        f"{len(frame)} site spectra from {data_path}")
    run.set_data(frame_fingerprint(frame), {"path": str(data_path), "kind": info["kind"], "n_compounds": len(compounds),
                                           "n_site_spectra": len(frame), "n_topological": n_topo,
                                           "build": info.get("build", {})})

    # ---- split ----------------------------------------------------------------------------------
    idx, method = split_compounds(compounds, cfg, seed)
    ids = {k: [compounds[i].material_id for i in v] for k, v in idx.items()}
    summary = split_summary(idx, [c.elements for c in compounds], [c.subclass for c in compounds])
    run.write_splits({**ids, "summary": summary, "method": method, "seed": seed})
    say("split " + ", ".join(f"{k} {len(v)}" for k, v in idx.items()))

    # ---- features -------------------------------------------------------------------------------
    g = cfg["grid"]
    feat = TopologyFeaturizer(width=g["width"], n_points=g["n_points"], anchor=g["anchor"])
    feat.fit([compounds[i] for i in idx["train"]])
    A = max(len(c.elements) for c in compounds)
    data = {k: feat.transform([compounds[i] for i in v], max_absorbers=A) for k, v in idx.items()}
    elements = {k: data[k].elements for k in data}

    # ---- models ---------------------------------------------------------------------------------
    metrics: dict[str, Any] = {"class_names": list(CLASS_NAMES), "models": {},
                               "splits": {k: len(v) for k, v in idx.items()},
                               # the compounds behind every per-split list of probabilities
                               "compounds": {k: {"material_id": d.material_ids, "elements": elements[k],
                                                 "subclass": list(d.subclass), "y": d.y.tolist()}
                                             for k, d in data.items()}}
    fitted = {}
    for name in progress(cfg["models"], desc="models", disable=not show_progress):
        t = time.time()
        model = make_model(name, cfg, seed, feat.n_points)
        model.fit(data["train"], validation=data["val"])
        secs = round(time.time() - t, 2)
        folder = run.model_dir(name)
        model.save(folder)
        save_featurizer(folder, feat, name, extra={"seed": seed, "data_fingerprint": run.info["data_fingerprint"]})
        fitted[name] = model
        m = _evaluate(model, data, elements)
        m["fit_seconds"] = secs
        if hasattr(model, "best_epoch_"):
            m["best_epoch"] = model.best_epoch_
            m["history"] = model.history_
        metrics["models"][name] = m
        te = m["splits"].get("test", {})
        if te:
            say(f"{name:14s} test F1 topo {te['per_class']['topological']['f1']:.3f} "
                f"F1 triv {te['per_class']['trivial']['f1']:.3f} AUC {te['auc'] if te['auc'] is None else round(te['auc'], 3)} "
                f"({secs:.1f} s)")
    if "pca_kmeans" in fitted and len(data["test"]):
        metrics["pca_kmeans_element_average"] = _pca_element_average(fitted["pca_kmeans"], data["test"])
    timing["models_s"] = round(time.time() - t0 - timing["data_s"], 2)

    # ---- energy-resolution study (Figure S7) ----------------------------------------------------
    if cfg["resolution"]["enabled"] and len(data["test"]):
        metrics["resolution"] = resolution_study(data, feat, cfg, seed, fitted, show_progress)
        timing["resolution_s"] = round(time.time() - t0 - timing["data_s"] - timing["models_s"], 2)

    metrics["table_test"] = summary_table(metrics, "test")
    metrics["timing"] = timing
    run.write_metrics(metrics)
    if cfg["report"]["enabled"]:
        from xasml.topology.report import write_report

        write_report(run.path, metrics, cfg, compounds, idx, data, feat, fitted)
    timing["total_s"] = round(time.time() - t0, 2)
    atomic_write_json(run.path / "metrics.json", metrics)
    run.finish(timing=timing)
    say(f"done in {timing['total_s']:.0f} s: {run.path}")
    return run.path


def resolution_study(data: dict, feat, cfg: dict, seed: int, fitted: dict, show_progress: bool = True) -> dict:
    """Retrain spectral models on spectra averaged over ΔE intervals (Andrejevic et al. 2022, Figure S7).

    Returns
    -------
    dict
        ``delta_e`` (eV), ``step_eV`` (grid spacing), and per model the test recall / precision
        / F1 of both classes and AUC at each ΔE; atom-type-only references when trained.
    """
    from xasml.datasets.topology import average_over_intervals
    from xasml.evaluation.metrics import binary_metrics
    from xasml.utils import progress

    step = feat.width / (feat.n_points - 1)
    out: dict[str, Any] = {"delta_e": list(cfg["resolution"]["delta_e"]), "step_eV": step, "models": {}}
    models = [m for m in cfg["resolution"]["models"] if m in fitted]
    jobs = [(m, de) for m in models for de in out["delta_e"]]
    for name, de in progress(jobs, desc="resolution study", disable=not show_progress):
        k = max(1, round(de / step))
        if k == 1:
            model = fitted[name]
        else:
            tr = data["train"].with_spectra(average_over_intervals(data["train"].X, step, de))
            va = data["val"].with_spectra(average_over_intervals(data["val"].X, step, de))
            model = make_model(name, cfg, seed, feat.n_points).fit(tr, validation=va)
        te = data["test"].with_spectra(average_over_intervals(data["test"].X, step, de))
        m = binary_metrics(te.y, model.predict_proba(te)[:, 1], threshold=model.threshold_, class_names=CLASS_NAMES)
        rec = out["models"].setdefault(name, {"f1_topological": [], "f1_trivial": [], "recall_topological": [],
                                              "precision_topological": [], "recall_trivial": [],
                                              "precision_trivial": [], "auc": [], "points_per_interval": []})
        for cls in CLASS_NAMES:
            for key in ("f1", "recall", "precision"):
                rec[f"{key}_{cls}"].append(m["per_class"][cls][key])
        rec["auc"].append(m["auc"])
        rec["points_per_interval"].append(k)
    return out


def save_featurizer(folder: str | Path, feat, model_name: str, extra: dict | None = None) -> Path:
    """Write ``topology.json`` next to a saved model: grids, standardiser, reference spectra, class names."""
    from xasml import __version__
    from xasml.utils import atomic_write_json

    return atomic_write_json(Path(folder) / "topology.json", {
        "task": "topology", "model": model_name, "xasml_version": __version__,
        "class_names": list(CLASS_NAMES), "featurizer": feat.to_dict(), **(extra or {})})
