"""``xasml local run``: label, build, train, evaluate and report local-structure models.

Reproduces the protocol of Carbone et al., Phys. Rev. Materials 3, 033604 (2019) for any
absorbing element - class-wise and macro F1 of MLP and CNN classifiers with the standard
deviation over independently trained models, each scored on its own bootstrap resample of the
test split (§II.C, Table II, Figure 3); the pre-edge-only ablation (§III.D, Tables II/III);
F1 against energy shift and noise with and without augmentation (§III.E, Figures 5/6); PCA of
the spectra coloured by class (§III.B, Figure 2) - and adds ensemble regressors of oxidation
state and coordination number (mean = prediction, standard deviation = uncertainty), and the
shipped models applied to measured spectra.

The test split is used only for the final numbers; nothing is selected on it (there is no
model selection: the architecture and training are fixed by the paper).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from xasml.datasets.local import (LocalDataset, build_local_dataset, check_group_split, discover_sites,
                                  select_protocol)
from xasml.local.config import LocalConfig
from xasml.models.bundle import SHIPPED_DIR, ModelBundle
from xasml.models.local_nets import SpectrumClassifier, SpectrumEnsembleRegressor
from xasml.errors import DataError
from xasml.runs import RunFolder
from xasml.utils import seed_everything

log = logging.getLogger(__name__)

#: Carbone et al. 2019, Table II, Cu row: macro F1 (std in the last digit)
PAPER_CU = {"MLP": 0.86, "CNN": 0.86, "pre-MLP": 0.50, "pre-CNN": 0.64,
            "std": {"MLP": 0.02, "CNN": 0.02, "pre-MLP": 0.04, "pre-CNN": 0.07}}

TASK_OF_TARGET = {"oxidation_state": "oxidation", "coordination_number": "cn"}


def _say(msg: str) -> None:
    print(f"[xasml local] {time.strftime('%H:%M:%S')} {msg}", flush=True)


def _classifier(cfg: LocalConfig, arch: str, n_members: int, seed: int) -> SpectrumClassifier:
    return SpectrumClassifier(arch=arch, epochs=cfg.epochs, batch_size=cfg.batch_size,
                              learning_rate=cfg.learning_rate, n_members=n_members, seed=seed,
                              n_threads=cfg.n_threads, class_weight=cfg.class_weight, lr_schedule=cfg.lr_schedule)


def member_scores(clf: SpectrumClassifier, X: np.ndarray, y: np.ndarray, classes: list[str], n_boot: int,
                  seed: int) -> dict[str, Any]:
    """Class-wise and macro F1 of each trained member on its own stratified bootstrap resample of the test set.

    Member m is scored on resample m (m modulo ``n_boot``), so the spread combines model and
    test-sample variability, as in Carbone et al. (2019), §II.C.

    Returns
    -------
    dict
        ``macro_f1`` {mean, std, values}, ``per_class`` {class: {mean, std}}, ``accuracy``
        {mean, std}, and ``ensemble`` (metrics of the member-averaged prediction on the whole
        test set, with confusion matrix).
    """
    from xasml.evaluation.metrics import multiclass_metrics

    rng = np.random.default_rng(seed)
    P = clf.predict_proba_members(X)
    y = np.asarray(y).astype(str)
    boots = []
    for _ in range(max(n_boot, 1)):  # stratified: resample within each class
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), size=(y == c).sum(), replace=True)
                              for c in classes if (y == c).any()])
        boots.append(idx)
    macro, acc, per = [], [], defaultdict(list)
    for m in range(P.shape[0]):
        idx = boots[m % len(boots)]
        pred = clf.classes_[np.argmax(P[m][idx], axis=1)]
        res = multiclass_metrics(y[idx], pred, classes)
        macro.append(res["macro_f1"])
        acc.append(res["accuracy"])
        for c in classes:
            f1 = res["per_class"][c]["f1"]
            per[c].append(np.nan if f1 is None else f1)
    ens = multiclass_metrics(y, clf.predict(X), classes, y_proba=clf.predict_proba(X))

    def ms(v):
        v = np.asarray(v, float)
        return {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0}

    return {"macro_f1": {**ms(macro), "values": [float(v) for v in macro]}, "accuracy": ms(acc),
            "per_class": {c: ms(per[c]) for c in classes}, "ensemble": ens, "n_test": int(len(y))}


def pre_edge_slice(ds: LocalDataset) -> tuple[int, int]:
    """Grid points below the median edge energy: the pre-edge region of the ablation (§III.D)."""
    n = int(np.searchsorted(ds.grid.energy, ds.e0))
    return 0, max(n, 12)


def _bundle(task: str, est, ds: LocalDataset, feature_slice, info: dict, cfg: LocalConfig,
            run: RunFolder | None = None) -> ModelBundle:
    ref = ds.X[ds.split_mask("train")].mean(axis=0)
    if run is not None:  # provenance: which code and which data made this model
        info = {**info, **{k: run.info.get(k) for k in ("xasml_version", "git_revision", "data_fingerprint", "seed")},
                "data": str(cfg.data), "n_train_sites": int(ds.split_mask("train").sum())}
    return ModelBundle(task=task, estimator=est, element=ds.element, edge=cfg.edge, grid=ds.grid,
                       feature_slice=tuple(int(v) for v in feature_slice), reference_mu=ref, info=info)


def run_classification(cfg: LocalConfig, ds: LocalDataset, run: RunFolder, report_rows: dict,
                       fitted: dict | None = None) -> dict:
    """Protocols x architectures (+ pre-edge ablation): train, score, save. Returns metrics.

    ``fitted``, when given, receives the full-spectrum classifiers by (protocol, arch).
    """
    from xasml.report.figures import plot_confusion

    fitted = {} if fitted is None else fitted

    out: dict[str, Any] = {}
    for proto in cfg.protocols:
        sub, classes = select_protocol(ds, proto.classes, proto.min_count, proto.ligands)
        train_classes = set(sub.table.loc[sub.split_mask("train"), "environment"])
        if len(train_classes) < 2 or not sub.split_mask("test").any():
            _say(f"protocol {proto.name}: skipped, needs >= 2 classes in training and a test split "
                 f"(classes {sorted(train_classes)}, {len(sub)} sites)")
            out[proto.name] = {"description": proto.description, "classes": classes, "skipped": True,
                               "models": {}, "counts": {}}
            continue
        counts = {s: {c: int(((sub.table["split"] == s) & (sub.table["environment"] == c)).sum()) for c in classes}
                  for s in ("train", "val", "test")}
        _say(f"protocol {proto.name}: {len(sub)} sites, classes {classes}, train/val/test "
             f"{[sum(counts[s].values()) for s in ('train', 'val', 'test')]}")
        pm: dict[str, Any] = {"description": proto.description, "classes": classes, "counts": counts,
                              "n_materials": int(sub.table["material_id"].nunique()), "models": {}}
        y_test = sub.table.loc[sub.split_mask("test"), "environment"].to_numpy()
        y_val = sub.table.loc[sub.split_mask("val"), "environment"].to_numpy()
        X_test, X_val = sub.features("test"), sub.features("val")
        Xtr, ytr = sub.training_arrays("environment", shifts=cfg.shifts, noise_sigma=cfg.noise_sigma, seed=cfg.seed)
        variants = [("full", (0, cfg.n_points))]
        if cfg.pre_edge_ablation and proto.name in cfg.pre_edge_protocols:
            variants.append(("pre-edge", pre_edge_slice(sub)))
        for region, (a, b) in variants:
            for arch in cfg.archs:
                name = f"{proto.name}_{arch}" + ("_pre" if region == "pre-edge" else "")
                t0 = time.time()
                clf = _classifier(cfg, arch, cfg.n_models, cfg.seed).fit(Xtr[:, a:b], ytr)
                dt = time.time() - t0
                sc = member_scores(clf, X_test[:, a:b], y_test, classes, cfg.n_boot, cfg.seed + 1)
                from xasml.evaluation.metrics import multiclass_metrics

                sc["val_ensemble_macro_f1"] = multiclass_metrics(y_val, clf.predict(X_val[:, a:b]), classes)["macro_f1"] \
                    if len(y_val) else None
                sc["train_seconds"] = round(dt, 1)
                sc["region"] = region
                sc["grid_points"] = [int(a), int(b)]
                pm["models"][name] = sc
                _say(f"  {name}: macro F1 {sc['macro_f1']['mean']:.3f} +- {sc['macro_f1']['std']:.3f} "
                     f"({cfg.n_models} models, {dt:.0f} s)")
                bundle = _bundle("coordination", clf, sub, (a, b), {
                    "protocol": proto.name, "classes": classes, "arch": arch, "region": region,
                    "test_macro_f1": sc["macro_f1"], "paper": "Carbone et al., Phys. Rev. Materials 3, 033604 (2019)"},
                    cfg, run)
                bundle.save(run.path / "models" / "experiments" / name)
                if region == "full" and proto.name == cfg.ship_protocol and arch == cfg.ship_arch:
                    bundle.save(run.path / "models" / "coordination")
                if region == "full":
                    fitted[(proto.name, arch)] = clf
                    plot_confusion(np.asarray(sc["ensemble"]["confusion"]), classes,
                                   run.report_dir / f"confusion_{name}.png",
                                   title=f"protocol {proto.name}, {arch.upper()} ensemble, test split")
                report_rows[name] = sc
        out[proto.name] = pm
    return out


def run_robustness(cfg: LocalConfig, ds: LocalDataset, run: RunFolder, fitted: dict | None = None) -> dict:
    """Macro F1 against test-set energy shift and noise, with and without augmentation (§III.E).

    The "shift + noise" variant is the protocol's main model when ``fitted`` holds it (same
    training), else it is trained here like the other variants.
    """
    from xasml.evaluation.metrics import multiclass_metrics
    from xasml.report.figures import plot_curves

    proto = next(p for p in cfg.protocols if p.name == cfg.robustness_protocol)
    sub, classes = select_protocol(ds, proto.classes, proto.min_count, proto.ligands)
    if len(set(sub.table.loc[sub.split_mask("train"), "environment"])) < 2 or not sub.split_mask("test").any():
        _say(f"robustness study skipped: protocol {proto.name} has too few classes or no test sites")
        return {"protocol": proto.name, "skipped": True, "shift": {}, "noise": {}}
    y_test = sub.table.loc[sub.split_mask("test"), "environment"].to_numpy()
    variants = {  # name: (shifts, noise_sigma on shifted copies, unshifted noisy copies)
        "no augmentation": ([], 0.0, 0),
        "shift +-1,2 eV": (cfg.shifts, 0.0, 0),
        f"noise sigma={cfg.noise_sigma:g}": ([], cfg.noise_sigma, len(cfg.shifts)),
        "shift + noise (default)": (cfg.shifts, cfg.noise_sigma, 0),
    }
    shift_tests = {dE: sub.features("test", shift=dE) for dE in cfg.eval_shifts}
    base_test = sub.features("test")
    out: dict[str, Any] = {"protocol": proto.name, "shift": {}, "noise": {}}
    for arch in cfg.archs:
        curves_shift, curves_noise = {}, {}
        for vname, (shifts, sigma, copies) in variants.items():
            if vname.endswith("(default)") and fitted and (proto.name, arch) in fitted:
                clf = fitted[(proto.name, arch)]
            else:
                Xtr, ytr = sub.training_arrays("environment", shifts=shifts, noise_sigma=sigma, noise_copies=copies,
                                               seed=cfg.seed)
                clf = _classifier(cfg, arch, cfg.robustness_models, cfg.seed + 7).fit(Xtr, ytr)

            def macro(X):
                P = clf.predict_proba_members(X)
                v = [multiclass_metrics(y_test, clf.classes_[np.argmax(p, 1)], classes)["macro_f1"] for p in P]
                return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

            s_curve = [macro(shift_tests[dE]) for dE in cfg.eval_shifts]
            rng = np.random.default_rng(cfg.seed + 11)
            n_curve = [macro(base_test + rng.normal(0, sg, base_test.shape) if sg > 0 else base_test)
                       for sg in cfg.eval_sigmas]
            out["shift"][f"{arch}/{vname}"] = {"x": cfg.eval_shifts, "mean": [c[0] for c in s_curve],
                                               "std": [c[1] for c in s_curve]}
            out["noise"][f"{arch}/{vname}"] = {"x": cfg.eval_sigmas, "mean": [c[0] for c in n_curve],
                                               "std": [c[1] for c in n_curve]}
            curves_shift[vname] = (np.array([c[0] for c in s_curve]), np.array([c[1] for c in s_curve]))
            curves_noise[vname] = (np.array([c[0] for c in n_curve]), np.array([c[1] for c in n_curve]))
            _say(f"  robustness {arch} / {vname}: F1 at shift {cfg.eval_shifts[0]:+g} eV "
                 f"{s_curve[0][0]:.3f}, at 0 {s_curve[cfg.eval_shifts.index(0.0)][0] if 0.0 in cfg.eval_shifts else float('nan'):.3f}; "
                 f"at sigma {cfg.eval_sigmas[-1]:g} {n_curve[-1][0]:.3f}")
        plot_curves(np.asarray(cfg.eval_shifts), curves_shift, run.report_dir / f"f1_vs_shift_{arch}.png",
                    xlabel="energy shift of the test spectra (eV)", ylabel="macro F1",
                    title=f"{arch.upper()}, protocol {proto.name}", ylim=(0, 1))
        plot_curves(np.asarray(cfg.eval_sigmas), curves_noise, run.report_dir / f"f1_vs_noise_{arch}.png",
                    xlabel="Gaussian noise sigma (units of the spectrum maximum)", ylabel="macro F1",
                    title=f"{arch.upper()}, protocol {proto.name}", ylim=(0, 1))
    return out


def run_regression(cfg: LocalConfig, ds: LocalDataset, run: RunFolder) -> dict:
    """Ensemble regressors of oxidation state and coordination number on every labelled site."""
    from xasml.evaluation.metrics import regression_metrics
    from xasml.report.figures import plot_parity

    out = {}
    for target in cfg.regression_targets:
        mask = ds.table[target].notna().to_numpy()
        sub = ds.subset(mask)
        sub.table[target] = sub.table[target].astype(float)
        # No energy-shift augmentation here: the edge position carries the oxidation state
        # (chemical shift of a few eV per unit), so shifted copies would teach the wrong answer.
        Xtr, ytr = sub.training_arrays(target, shifts=[], noise_sigma=cfg.noise_sigma,
                                       noise_copies=cfg.regression_noise_copies, seed=cfg.seed)
        t0 = time.time()
        reg = SpectrumEnsembleRegressor(arch=cfg.regression_arch, epochs=cfg.regression_epochs, batch_size=cfg.batch_size,
                                        learning_rate=cfg.learning_rate, n_members=cfg.n_ensemble, seed=cfg.seed,
                                        n_threads=cfg.n_threads).fit(Xtr, ytr.astype(float))
        dt = time.time() - t0
        res = {}
        y_val = sub.table.loc[sub.split_mask("val"), target].to_numpy(float)
        raw = {}
        for split in ("val", "test"):
            y = sub.table.loc[sub.split_mask(split), target].to_numpy(float)
            if len(y):
                raw[split] = regression_metrics(y, *reg.predict(sub.features(split), return_std=True))
        if cfg.calibrate_std and len(y_val) >= 5:
            reg.calibrate(sub.features("val"), y_val)  # validation split only; the test split stays untouched
        for split in ("val", "test"):
            y = sub.table.loc[sub.split_mask(split), target].to_numpy(float)
            if not len(y):
                continue
            mean, std = reg.predict(sub.features(split), return_std=True)
            m = regression_metrics(y, mean, std)
            m["coverage_2sigma_uncalibrated"] = raw[split]["coverage_2sigma"]
            m["std_scale"] = float(getattr(reg, "std_scale_", 1.0))
            m["accuracy_rounded"] = float(np.mean(np.round(mean) == y))
            m["mean_std"] = float(np.mean(std))
            m["baseline_mae_train_mean"] = float(np.mean(np.abs(y - ytr.astype(float).mean())))
            res[split] = m
            if split == "test":
                plot_parity(y, mean, run.report_dir / f"parity_{target}.png", xlabel=f"{target} (label)",
                            ylabel=f"{target} (ensemble mean)", title=f"{ds.element}: {target}, test split")
        res["train_seconds"] = round(dt, 1)
        res["n_sites"] = {s: int(sub.split_mask(s).sum()) for s in ("train", "val", "test")}
        res["n_unknown_labels"] = int((~mask).sum())
        out[target] = res
        t = res["test"]
        _say(f"  {target}: test MAE {t['mae']:.3f}, coverage(+-2 sigma) {t['coverage_2sigma']:.3f} "
             f"(uncalibrated {t['coverage_2sigma_uncalibrated']:.3f}, std x {t['std_scale']:.2f}), "
             f"{cfg.n_ensemble} members, {dt:.0f} s")
        task = TASK_OF_TARGET[target]
        _bundle(task, reg, sub, (0, cfg.n_points), {
            "target": target, "test": {k: t[k] for k in ("mae", "rmse", "coverage_2sigma",
                                                          "coverage_2sigma_uncalibrated", "std_scale")},
            "method": "ensemble mean and standard deviation (Lu-group pipeline)"}, cfg, run).save(run.path / "models" / task)
    return out


def run_measured(cfg: LocalConfig, run: RunFolder) -> dict:
    """Apply this run's models to measured spectra with known answers (simulation-to-experiment gap).

    Uses ``<experimental>/xas-data-library/data/<El>/*.xdi`` and the ``<El>`` rows of
    ``<experimental>/rfxas/experiment.csv``. Nothing is tuned on them.
    """
    from xasml.io.xdi import read_xdi

    exp = Path(cfg.experimental)
    bundles = {t: ModelBundle.load(run.path / "models" / t) for t in ("coordination", "cn", "oxidation")
               if (run.path / "models" / t / "bundle.json").exists()}
    rows = []
    items = []
    known_path = SHIPPED_DIR / "measured_references.json"
    known_all = json.loads(known_path.read_text()).get(cfg.element, {}) if known_path.exists() else {}
    for f in sorted((exp / "xas-data-library" / "data" / cfg.element).glob("*.xd*")):
        try:
            k = known_all.get(f.stem, {})
            items.append((f.name, read_xdi(f), {"known_os": k.get("oxidation_state"),
                                                 "known_cn": k.get("coordination_number"),
                                                 "known_env": k.get("environment")}))
        except Exception as exc:
            rows.append({"file": f.name, "error": str(exc)[:200]})
    csv = exp / "rfxas" / "experiment.csv"
    if csv.exists():
        from xasml.io.rfxas import read_rfxas_csv

        for s, lab in read_rfxas_csv(csv):
            if s.absorbing_element == cfg.element:
                items.append((f"rfxas:{lab.get('xas_id')} {lab.get('formula')} ({s.metadata.get('technique')})", s,
                              {"known_cn": lab.get("coordination_number"), "known_env": lab.get("top_environment")}))
    for name, s, known in items:
        row = {"file": name, **known}
        for task, b in bundles.items():
            try:
                p = b.predict([s], measured=[True])[0]
                row[task] = p["prediction"]
                if "std" in p:
                    row[f"{task}_std"] = p["std"]
                else:
                    row[f"{task}_p"] = max(p["probabilities"].values())
                row["shift_eV"] = p.get("alignment_shift_eV")
            except Exception as exc:
                row[f"{task}_error"] = str(exc)[:160]
        rows.append(row)
    return {"n": len(rows), "rows": rows}


def run_local(cfg: LocalConfig, out: str | Path, overwrite: bool = False) -> dict:
    """Run the whole local-structure pipeline into run folder ``out``.

    Parameters
    ----------
    cfg : LocalConfig
        The resolved configuration.
    out : str or Path
        Run folder; must be new or empty unless ``overwrite``.
    overwrite : bool
        Clear ``out`` first when it is an existing run folder.

    Raises
    ------
    DataError
        On invalid data, too few sites for the cross-validation, or a non-empty ``out``
        without ``overwrite``.

    Returns
    -------
    dict
        The metrics written to ``<out>/metrics.json``.
    """
    import torch

    from xasml.labels.site import LabelOptions, label_sites, summarize_labels
    from xasml.utils import fingerprint_files

    t_start = time.time()
    seed_everything(cfg.seed)
    torch.set_num_threads(int(cfg.n_threads))
    t0 = time.time()
    sites = discover_sites(cfg.data, cfg.element)
    from xasml.datasets.local import min_materials

    n_mat, need = int(sites["material_id"].nunique()), min_materials(cfg.split_fractions)
    if n_mat < need:
        raise DataError(f"{cfg.data}: {len(sites)} {cfg.element} site(s) from {n_mat} material(s) are too few; the "
                        f"split by material {'/'.join(f'{f:g}' for f in cfg.split_fractions)} needs sites from at "
                        f"least {need} materials (many more for a useful model)")
    run = RunFolder(out, cfg.to_dict(), seed=cfg.seed, overwrite=overwrite)
    timings: dict[str, float] = {}
    structs = sites.groupby("material_id", sort=True).agg(structure_path=("structure_path", "first"),
                                                         indices=("absorbing_index", list)).reset_index()
    missing = structs[structs["structure_path"] == ""]
    tasks = [(r.material_id, r.structure_path, r.indices) for r in structs.itertuples() if r.structure_path]
    shipped = SHIPPED_DIR / f"labels_{cfg.element}.parquet"
    labels = label_sites(tasks, cache=run.path / "labels.parquet", n_jobs=cfg.n_jobs,
                         options=LabelOptions(distance_cutoff=cfg.distance_cutoff, angle_cutoff=cfg.angle_cutoff),
                         seed_cache=shipped if (cfg.use_shipped_labels and shipped.exists()) else None)
    lab_summary = summarize_labels(labels)
    lab_summary["n_structures_without_file"] = int(len(missing))
    timings["labels"] = round(time.time() - t0, 1)
    _say(f"labels: {lab_summary['n_sites']} sites, {lab_summary['n_environment_failed']} failed, "
         f"{lab_summary['n_oxidation_unknown']} unknown oxidation state ({timings['labels']:.0f} s)")

    t0 = time.time()
    fp = fingerprint_files(list(sites["xmu_path"]) + [p for p in structs["structure_path"] if p], root=cfg.data)
    ds = build_local_dataset(cfg.data, cfg.element, labels, n_points=cfg.n_points, step=cfg.step,
                             dedup_threshold=cfg.dedup_threshold, split_fractions=cfg.split_fractions,
                             seed=cfg.seed, sites=sites)
    check_group_split(ds.table["split"], ds.table["material_id"])
    run.set_data(fp, {"path": str(cfg.data), "element": cfg.element, **{k: v for k, v in ds.info.items()}})
    from xasml.datasets.format import write_dataset

    write_dataset(run.path / "dataset.parquet", ds.to_frame(), kind="local",
                  metadata={"grid": ds.grid.to_dict(), "e0_median": ds.e0, "element": cfg.element},
                  attribution="OmniXAS (BSD-3-Clause); structures from the Materials Project (CC-BY 4.0)")
    run.write_splits({s: sorted({f"{m}_{i:03d}" for m, i, sp in zip(ds.table["material_id"], ds.table["absorbing_index"],
                                                                   ds.table["split"]) if sp == s})
                      for s in ("train", "val", "test")})
    timings["dataset"] = round(time.time() - t0, 1)
    _say(f"dataset: {ds.info['n_sites']} sites after removing {ds.info['n_duplicates_removed']} near-duplicates, "
         f"grid {ds.grid.start:.2f}-{ds.grid.stop:.2f} eV, splits {ds.info['split_sizes']} ({timings['dataset']:.0f} s)")

    metrics: dict[str, Any] = {"labels": lab_summary, "dataset": ds.info, "paper_cu": PAPER_CU}
    report_rows: dict[str, Any] = {}
    t0 = time.time()
    fitted: dict = {}
    metrics["classification"] = run_classification(cfg, ds, run, report_rows, fitted)
    timings["classification"] = round(time.time() - t0, 1)
    run.write_metrics(metrics)
    if cfg.robustness:
        t0 = time.time()
        metrics["robustness"] = run_robustness(cfg, ds, run, fitted)
        timings["robustness"] = round(time.time() - t0, 1)
        run.write_metrics(metrics)
    t0 = time.time()
    metrics["regression"] = run_regression(cfg, ds, run)
    timings["regression"] = round(time.time() - t0, 1)
    t0 = time.time()
    metrics["exploration"] = _pca_figures(cfg, ds, run)
    if cfg.experimental and Path(cfg.experimental).exists():
        try:
            metrics["measured"] = run_measured(cfg, run)
        except Exception as exc:  # measured data are a bonus; never lose the run over them
            metrics["measured"] = {"error": f"{type(exc).__name__}: {exc}"}
    timings["report"] = round(time.time() - t0, 1)
    timings["total"] = round(time.time() - t_start, 1)
    metrics["timings_s"] = timings
    run.write_metrics(metrics)
    from xasml.local.report import write_report

    write_report(run, cfg, metrics)
    run.finish(timings=timings)
    _say(f"done in {timings['total']:.0f} s: {run.path}")
    return metrics


def _pca_figures(cfg: LocalConfig, ds: LocalDataset, run: RunFolder) -> dict:
    """PCA of the standardised spectra coloured by class, full grid and pre-edge only (§III.B, Eqs. 1-2)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from xasml.report.figures import plot_embedding

    out = {}
    for proto in cfg.protocols:
        sub, classes = select_protocol(ds, proto.classes, proto.min_count, proto.ligands)
        if len(sub) < 3:
            continue
        X = StandardScaler().fit_transform(sub.X)
        y = sub.table["environment"].to_numpy()
        for region, (a, b) in (("full", (0, cfg.n_points)), ("pre-edge", pre_edge_slice(sub))):
            pca = PCA(n_components=2, random_state=cfg.seed).fit(X[:, a:b])
            Z = pca.transform(X[:, a:b])
            Z = Z / np.abs(Z).max(axis=0)  # Eq. 1: each axis scaled into [-1, 1]
            name = f"pca_{proto.name}_{'full' if region == 'full' else 'pre'}.png"
            plot_embedding(Z, y, run.report_dir / name, title=f"protocol {proto.name}: PCA, {region} spectrum",
                           xlabel="PC 1 (scaled)", ylabel="PC 2 (scaled)")
            out[f"{proto.name}/{region}"] = {"explained_variance_ratio": pca.explained_variance_ratio_.tolist()}
    return out
