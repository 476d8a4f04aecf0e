"""``xasml forward run``: featurise, cross-validate, train, evaluate and report one forward model.

Steps (each recorded in the run folder, see :mod:`xasml.runs`):

1. read structures and spectra (:func:`xasml.forward.data.load_forward_data`), compute the wACSF
   descriptors and broaden the targets (Lorentzian for FDMNES spectra by default);
2. hold out ``split.test_fraction`` of the groups (materials / molecules) for the final report;
3. repeated K-fold cross-validation on the rest (model selection happens here, never on the
   held-out part);
4. train on the whole non-held-out part, evaluate on the held-out part (paper Tables I and II);
5. optionally, the feature analysis of §III.C on the held-out part;
6. write ``models/forward`` (a :class:`~xasml.forward.predict.ForwardModel`), ``metrics.json``
   and ``report/report.md`` with parity plots of peak positions, the Δμ histogram (Fig. 11) and
   example spectra at the 25th/50th/75th percentiles of Δμ.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from xasml.descriptors.wacsf import WACSF
from xasml.errors import DataError
from xasml.evaluation.spectra_metrics import error_summary, peak_metrics, percentage_error
from xasml.forward.config import load_config, model_params
from xasml.forward.data import ForwardDataset, load_forward_data
from xasml.edges import edge_energy
from xasml.preprocess.broaden import Broadening
from xasml.runs import RunFolder
from xasml.utils import seed_everything

__all__ = ["run_forward", "default_data_path", "group_holdout", "repeated_group_kfold", "cross_validate",
           "evaluate", "dataset_from_config"]


def default_data_path() -> Path:
    """Development default: ``$XASML_SHARED_DATA/xanesnet-fe/preconv`` or ``../shared/data/...`` next to the repo."""
    from xasml.utils import shared_data_dir

    return shared_data_dir() / "xanesnet-fe" / "preconv"


def group_holdout(groups: list, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into (train, test) so that no group is in both.

    Parameters
    ----------
    groups : list, length n
        Group (material) of every sample.
    fraction : float
        Fraction of groups held out.
    seed : int

    Returns
    -------
    train_idx, test_idx : ndarray of int
    """
    from sklearn.model_selection import GroupShuffleSplit

    gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    tr, te = next(gss.split(np.zeros(len(groups)), groups=groups))
    return np.sort(tr), np.sort(te)


def repeated_group_kfold(groups: list, folds: int, repeats: int, seed: int):
    """Yield (repeat, fold, train_idx, val_idx): K-fold over groups, reshuffled per repeat.

    With one sample per group this is scikit-learn's ``RepeatedKFold``; with materials holding
    several sites, a material never appears in both parts.
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    uniq = np.unique(groups)
    for r in range(repeats):
        rng = np.random.default_rng(seed + 1000 * (r + 1))
        relabel = dict(zip(uniq, rng.permutation(len(uniq))))
        g = np.array([relabel[x] for x in groups])
        # GroupKFold balances fold sizes deterministically; the random relabelling shuffles it
        for f, (tr, va) in enumerate(GroupKFold(n_splits=folds).split(np.zeros(len(g)), groups=g)):
            yield r, f, tr, va


def evaluate(energy: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, prominence: float = 0.05,
             max_shift: float = 5.0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Table I/II metrics of predictions; returns (metrics, per-spectrum Δμ, peak pairs)."""
    delta = percentage_error(y_true, y_pred)
    peaks = peak_metrics(energy, y_true, y_pred, prominence, max_shift)
    pairs = peaks.pop("pairs")
    return {"delta_mu": error_summary(delta), "peaks": peaks,
            "mse": float(np.mean((y_true - y_pred) ** 2))}, delta, pairs


def cross_validate(ds: ForwardDataset, params: dict, folds: int, repeats: int, seed: int,
                   metrics_cfg: dict | None = None, log=print) -> dict:
    """Repeated group K-fold cross-validation of :class:`XanesnetMLP` with ``params``.

    Returns
    -------
    dict
        ``folds`` (per-fold median Δμ, MSE, peak ΔE mean, hit rate, seconds) and ``summary``
        (mean and standard deviation over folds).
    """
    from xasml.models.xanesnet import XanesnetMLP

    mc = metrics_cfg or {}
    rows = []
    for r, f, tr, va in repeated_group_kfold(ds.groups, folds, repeats, seed):
        m = XanesnetMLP(**params).fit(ds.X[tr], ds.y[tr])
        met, _, _ = evaluate(ds.energy, ds.y[va], m.predict(ds.X[va]), mc.get("peak_prominence", 0.05),
                             mc.get("peak_max_shift", 5.0))
        row = {"repeat": r, "fold": f, "n_train": int(len(tr)), "n_val": int(len(va)),
               "median_delta_mu": met["delta_mu"]["median"], "mse": met["mse"],
               "peak_mean_abs_dE": met["peaks"].get("mean_abs_dE"), "peak_hit_rate": met["peaks"]["hit_rate"],
               "seconds": round(m.fit_seconds_, 2)}
        rows.append(row)
        log(f"cv repeat {r} fold {f}: median Δμ {row['median_delta_mu']:.2f} %, {row['seconds']:.0f} s")
    summary = {}
    for k in ("median_delta_mu", "mse", "peak_mean_abs_dE", "peak_hit_rate", "seconds"):
        v = np.array([row[k] for row in rows if row[k] is not None], dtype=float)
        if v.size:
            summary[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    return {"folds": rows, "summary": summary}


def dataset_from_config(cfg: dict, show_progress: bool = True) -> ForwardDataset:
    """Load the dataset named by ``cfg["data"]`` with the configured descriptor and broadening."""
    path = Path(cfg["data"]["path"]) if cfg["data"]["path"] else default_data_path()
    if not path.exists():
        raise DataError(f"{path}: data not found; pass --data (an XANESNET folder, .npz or FEFF crystal tree)")
    desc = WACSF.from_dict(dict(cfg["descriptor"]))
    b = dict(cfg["broadening"])
    kind = b.pop("kind")
    kwargs: dict[str, Any] = {}
    if path.suffix != ".npz":
        kwargs["descriptor"] = desc
        if cfg["data"]["limit"]:
            kwargs["limit"] = int(cfg["data"]["limit"])
        if kind != "auto":
            kwargs["broadening"] = Broadening("none")      # applied below, once the element is known
    elif kind not in ("auto", "none"):
        raise DataError("config: broadening of precomputed .npz spectra is not supported (they are already convolved)")
    ds = load_forward_data(path, element=cfg["data"]["element"], edge=cfg["data"]["edge"], **kwargs)
    if kind not in ("auto", "none"):
        br = Broadening(kind=kind, element=ds.element, edge=ds.edge, **b).resolved()
        ds.y = br.apply(ds.energy, ds.y)
        ds.broadening = br
    return ds


def _percentile_examples(delta: np.ndarray, qs=(25, 50, 75)) -> dict[int, int]:
    out = {}
    for q in qs:
        target = np.percentile(delta, q)
        out[q] = int(np.argmin(np.abs(delta - target)))
    return out


def _write_report(run: RunFolder, cfg: dict, ds: ForwardDataset, test: ForwardDataset, pred: np.ndarray,
                  metrics: dict, delta: np.ndarray, pairs: np.ndarray, analysis: dict | None) -> Path:
    from xasml.report.figures import plot_curves, plot_histogram, plot_parity, plot_spectra
    from xasml.report.markdown import Report

    rd = run.report_dir
    rep = Report(rd, f"Forward model: {ds.element} {ds.edge}-edge XANES from wACSF (XANESNET)")
    rep.paragraph(f"Data: `{ds.source}` ({len(ds)} samples, {len(set(ds.groups))} groups); "
                  f"targets: {ds.info.get('target', '')}; broadening applied here: "
                  f"`{ds.broadening.to_dict()}`. Preset `{cfg['preset']}`. Held-out: {len(test)} samples "
                  f"({cfg['split']['test_fraction']:.0%} of the groups), never used for selection.")
    dm, pk = metrics["test"]["delta_mu"], metrics["test"]["peaks"]
    rep.heading("Held-out accuracy (paper Tables I and II)")
    rep.table([{"median Δμ (%)": dm["median"], "lower quartile": dm["lower_quartile"],
                "upper quartile": dm["upper_quartile"], "skewness": dm["skewness"],
                "ΔE mean (eV)": pk.get("mean_abs_dE"), "ΔE max (eV)": pk.get("max_abs_dE"),
                "σ (eV)": pk.get("sigma_dE"), "R²": pk.get("r2"), "hit rate": pk["hit_rate"]}])
    rep.paragraph(f"Peaks: scipy.signal.find_peaks with prominence ≥ {pk['prominence']} × the spectrum's "
                  f"range, parabolic refinement; one-to-one matching by minimum |ΔE| within "
                  f"{pk['max_shift_eV']} eV; hit rate = matched target peaks / target peaks.")
    if metrics.get("cv"):
        rep.heading("Cross-validation")
        rep.table([{"metric": k, **v} for k, v in metrics["cv"]["summary"].items()])
    rep.paragraph(f"Final training: {metrics['train_seconds']:.1f} s on {cfg['model']['n_threads']} thread(s).")
    rep.figure(plot_histogram(delta, rd / "delta_mu_hist.png", "Δμ (%)", "Per-spectrum error, held-out (Fig. 11)"),
               "Distribution of the per-spectrum percentage error on the held-out set.")
    if len(pairs):
        rep.figure(plot_parity(pairs[:, 1], pairs[:, 2], rd / "peak_parity.png", "E target (eV)",
                               "E predicted (eV)", "Peak positions (Fig. 12)"),
                   "Matched peak positions, held-out set.")
    for q, i in _percentile_examples(delta).items():
        rep.figure(plot_spectra(ds.energy, {"target": test.y[i][None], "predicted": pred[i][None]},
                                rd / f"example_p{q}.png", f"{test.ids[i]}: Δμ = {delta[i]:.2f} % ({q}th percentile)",
                                ylabel="μ (arb. units)"),
                   f"Example at the {q}th percentile of Δμ.")
    if analysis:
        rep.heading("Feature analysis (paper §III.C)")
        names = analysis["feature_names"]
        imp = analysis["importance"]
        feats = imp["features"]
        for grp in ("G2", "G4"):
            sel = [a for a, j in enumerate(feats) if names[j].startswith(grp)]
            if sel:
                curves = {"whole spectrum": np.asarray(imp["overall"])[sel]}
                for w in imp["windows"]:
                    curves[f"{w['window'][0]:+g}…{w['window'][1]:+g} eV"] = np.asarray(w["importance"])[sel]
                if grp == "G2" and all("mu=" in names[feats[a]] for a in sel):
                    x = np.array([float(names[feats[a]].split("mu=")[1].split(",")[0]) for a in sel])
                    xlabel = "G2 centre μ (Å)"
                else:
                    x, xlabel = np.array([feats[a] for a in sel]), "feature index"
                rep.figure(plot_curves(x, curves, rd / f"importance_{grp}.png", xlabel, "MSE increase (%)",
                                       f"Permutation importance, {grp}"),
                           f"Permutation importance of the {grp} features (Figs. 8 and 9); windows relative to "
                           f"the tabulated edge energy {analysis['edge_energy']:.1f} eV.")
        sfm = analysis.get("select_from_model") or []
        if sfm:
            rep.figure(plot_curves(np.array([r["fraction"] * 100 for r in sfm]),
                                   {"validation": np.array([r["median_delta_mu"] for r in sfm])},
                                   rd / "select_from_model.png", "features kept (%)", "median Δμ (%)",
                                   "Select-from-model (Fig. 10)"),
                       "Validation error against the fraction of most important features kept.")
        if analysis.get("sfs"):
            s = analysis["sfs"]
            rep.paragraph("Forward sequential selection picked: " + ", ".join(names[j] for j in s["selected"])
                          + f" (median Δμ {s['median_delta_mu']:.2f} % with the fast model).")
    return rep.write()


def run_forward(data: str | Path | None = None, out: str | Path | None = None, seed: int | None = None,
                config: str | Path | None = None, preset: str | None = None, show_progress: bool = True,
                overrides: dict[str, Any] | None = None, overwrite: bool = False) -> dict:
    """Run the whole forward-model pipeline and write a run folder.

    Parameters
    ----------
    data : str or Path, optional
        Data path (see :func:`xasml.forward.data.load_forward_data`); default
        :func:`default_data_path`.
    out : str or Path
        Run folder.
    seed : int, optional
        Overrides the config's seed.
    config : str or Path, optional
        TOML/JSON config file.
    preset : {"fast", "paper"}, optional
        Model preset.
    show_progress : bool
        Print progress lines.
    overrides : dict, optional
        Config sections as nested dicts (e.g. ``{"cv": {"repeats": 0}}``), applied last.
    overwrite : bool
        Clear ``out`` first when it is an existing run folder; without it a non-empty ``out``
        is refused (:func:`xasml.runs.claim_run_dir`).

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (``"out"``: the run folder).

    Raises
    ------
    DataError
        On invalid data or configuration, or a non-empty ``out`` without ``overwrite``.
    """
    import torch

    from xasml.models.xanesnet import XanesnetMLP

    log = print if show_progress else (lambda *a, **k: None)
    ov = dict(overrides or {})
    if data is not None:
        ov["data"] = {**ov.get("data", {}), "path": str(data)}
    if seed is not None:
        ov["seed"] = seed
    cfg = load_config(config, preset=preset, **ov)
    seed = int(cfg["seed"])
    seed_everything(seed)
    torch.set_num_threads(int(cfg["model"]["n_threads"] or 1))
    if out is None:
        from xasml.runs import default_run_dir

        out = default_run_dir("forward")
    run = RunFolder(out, cfg, seed=seed, overwrite=overwrite)
    t0 = time.perf_counter()
    ds = dataset_from_config(cfg, show_progress)
    t_feat = time.perf_counter() - t0
    log(f"data: {len(ds)} samples, X {ds.X.shape}, y {ds.y.shape} ({t_feat:.1f} s)")
    run.set_data(ds.fingerprint(), ds.describe())
    tr, te = group_holdout(ds.groups, float(cfg["split"]["test_fraction"]), seed)
    run.write_splits({"train": [ds.ids[i] for i in tr], "test": [ds.ids[i] for i in te]})
    train, test = ds.subset(tr), ds.subset(te)
    params = model_params(cfg)
    metrics: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "featurise_seconds": round(t_feat, 2)}
    if int(cfg["cv"]["repeats"]) > 0:
        metrics["cv"] = cross_validate(train, params, int(cfg["cv"]["folds"]), int(cfg["cv"]["repeats"]), seed,
                                       cfg["metrics"], log)
    model = XanesnetMLP(**params).fit(train.X, train.y)
    metrics["train_seconds"] = round(model.fit_seconds_, 2)
    log(f"trained on {len(train)} samples in {model.fit_seconds_:.1f} s")
    pred = model.predict(test.X)
    test_metrics, delta, pairs = evaluate(ds.energy, test.y, pred, cfg["metrics"]["peak_prominence"],
                                          cfg["metrics"]["peak_max_shift"])
    metrics["test"] = test_metrics
    log(f"held-out: median Δμ {test_metrics['delta_mu']['median']:.2f} % "
        f"(quartiles {test_metrics['delta_mu']['lower_quartile']:.2f}-{test_metrics['delta_mu']['upper_quartile']:.2f}), "
        f"peak ΔE mean {test_metrics['peaks'].get('mean_abs_dE', float('nan')):.2f} eV, "
        f"hit rate {test_metrics['peaks']['hit_rate']:.3f}")
    from xasml.forward.predict import ForwardModel

    fm = ForwardModel(model, ds.descriptor, ds.energy, ds.element, ds.edge, ds.broadening,
                      {"data": ds.describe(), "preset": cfg["preset"], "test": test_metrics,
                       "train_seconds": metrics["train_seconds"]})
    fm.save(run.model_dir("forward"))
    analysis = None
    if cfg["analysis"]["enabled"]:
        analysis = run_analysis(model, train, test, ds, cfg, log)
        metrics["analysis"] = {k: v for k, v in analysis.items() if k != "feature_names"}
    run.write_metrics(metrics)
    if cfg["report"]["enabled"]:
        _write_report(run, cfg, ds, test, pred, metrics, delta, pairs, analysis)
    run.finish(train_seconds=metrics["train_seconds"])
    return {**metrics, "out": str(run.path)}


def run_analysis(model, train: ForwardDataset, test: ForwardDataset, ds: ForwardDataset, cfg: dict, log=print) -> dict:
    """Permutation importance (overall and windowed) on the held-out set, select-from-model and forward SFS
    on (a subsample of) the training set, all bounded by ``cfg["analysis"]``."""
    from xasml.forward.analysis import forward_selection, permutation_importance, select_from_model_curve

    a = cfg["analysis"]
    seed = int(cfg["seed"])
    t0 = time.perf_counter()
    try:
        e0 = edge_energy(ds.element, ds.edge)
    except DataError:
        e0 = float(ds.energy[0])
    names = ds.descriptor.feature_names if ds.descriptor else [f"f{j}" for j in range(ds.X.shape[1])]
    imp = permutation_importance(model, test.X, test.y, ds.energy, [tuple(w) for w in a["windows"]], e0,
                                 int(a["importance_repeats"]), seed)
    feats = np.asarray(imp["features"])
    ranking = feats[np.argsort(-np.asarray(imp["overall"]))].tolist()
    rng = np.random.default_rng(seed)
    n = min(len(train), int(a["max_samples"]))
    sub = np.sort(rng.choice(len(train), n, replace=False))
    Xs, ys = train.X[sub], train.y[sub]
    sfm = select_from_model_curve(Xs, ys, ranking, a["select_fractions"], int(a["fast_epochs"]), seed)
    log("select-from-model: " + ", ".join(f"{r['n_features']}: {r['median_delta_mu']:.2f}%" for r in sfm))
    sfs = None
    if int(a["sfs_features"]) > 0:
        pool = ranking[:int(a["sfs_pool"])]
        sfs = forward_selection(Xs, ys, pool, int(a["sfs_features"]), max(5, int(a["fast_epochs"]) // 2), seed)
        log(f"forward SFS ({sfs['seconds']:.0f} s): {sfs['selected']}, median Δμ {sfs['median_delta_mu']:.2f} %")
    return {"feature_names": names, "edge_energy": e0,
            "importance": {"features": imp["features"], "overall": np.asarray(imp["overall"]).tolist(),
                           "overall_std": np.asarray(imp["overall_std"]).tolist(), "baseline_mse": imp["baseline_mse"],
                           "windows": [{"window": w["window"], "importance": np.asarray(w["importance"]).tolist()}
                                       for w in imp["windows"]]},
            "select_from_model": sfm, "sfs": sfs, "seconds": round(time.perf_counter() - t0, 2)}
