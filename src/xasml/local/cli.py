"""``xasml local run|predict|label|sites``: the local-structure capability on the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from xasml.errors import file_error_line
from xasml.local.config import HELP, LocalConfig


def add_parser(subparsers) -> None:
    """Register ``xasml local`` and its sub-commands on an argparse ``subparsers`` object."""
    p = subparsers.add_parser("local", help="coordination environment, coordination number and oxidation state "
                                            "from spectra (Carbone et al. 2019)",
                              description="Local structure from XANES: labels, training, evaluation, prediction.")
    sub = p.add_subparsers(dest="local_command", metavar="SUBCOMMAND")

    defaults = LocalConfig().to_dict()
    r = sub.add_parser("run", help="label, build, train, evaluate and report into a run folder",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Options of a --config file (JSON or TOML), with defaults:\n" + "\n".join(
                           f"  {k} = {json.dumps(defaults[k])}\n      {HELP.get(k, '')}" for k in defaults))
    r.add_argument("--data", nargs="+", metavar="PATH",
                   help=HELP["data"] + "; with --elements: site tables (xasml local sites), FEFF folders or packed "
                                       "datasets, several allowed")
    r.add_argument("--elements", help="multi-element run: per-element, universal and fine-tuned models of these "
                                      "absorbers (comma-separated, or 'all' = Ti,V,Cr,Mn,Fe,Co,Ni,Cu,Zn), "
                                      "cross-validated by structure, and shipped-ready models per element; "
                                      "without it, the single-element protocol of Carbone et al. 2019")
    r.add_argument("--out", help="run folder, new or empty (default runs/local-<element>-<date>-<time>)")
    r.add_argument("--overwrite", action="store_true", help="clear --out first if it is an existing run folder")
    r.add_argument("--config", help="JSON or TOML file with options (see below)")
    r.add_argument("--element", help=HELP["element"])
    r.add_argument("--seed", type=int, help=HELP["seed"])
    r.add_argument("--n-jobs", type=int, help=HELP["n_jobs"] + "; with --elements: worker processes for the "
                                                                "cross-validation folds and the final models")
    r.add_argument("--paper", action="store_true",
                   help="classifier training exactly as Carbone et al. 2019 (plain cross-entropy, constant lr, 50 epochs)")
    r.add_argument("--quick", action="store_true", help="tiny smoke run: 3 epochs, 2 models, no robustness study")
    r.add_argument("--show-config", action="store_true", help="print every option with the value the run would use "
                                                              "(defaults, then --config and the options above) and "
                                                              "its description, and exit")
    r.set_defaults(func=_run)

    q = sub.add_parser("predict", help="predict for spectrum files (FEFF xmu.dat, XDI)",
                       description="Predict the coordination environment (ChemEnv symbol and name, class "
                                   "probabilities), the coordination number or the oxidation state of the "
                                   "absorbing site, with the model shipped for the spectrum's element (Ti-Zn). "
                                   "For the two regressions 'std' combines the model's cross-validated RMSE with "
                                   "the spread of its ensemble members (std^2 = RMSE^2 + spread^2): in-domain it "
                                   "covers about 95 % of sites within 2 std; the spread grows for spectra unlike "
                                   "the training data, and measured spectra get an 'out_of_domain' score (warned "
                                   "above 5). Measured spectra are calibrated with their reference foil; see "
                                   "docs/local.md for how each task uses the energy scale. A measured spectrum with "
                                   "the metal evidence (edge at the foil energy, no white line) gets 'metal' "
                                   "(lattice of the element's stable phase), oxidation state 0, and a coordination "
                                   "number only where the model agrees with the lattice ('status' says which). "
                                   "Warnings are printed under each result.")
    q.add_argument("files", nargs="+", metavar="FILE", help="spectrum files, or folders (every xmu.dat and .xdi in them)")
    q.add_argument("--task", required=True, choices=["coordination", "cn", "oxidation", "all"],
                   help="coordination environment (classes), coordination number, oxidation state, or all three "
                        "in one result per spectrum")
    q.add_argument("--model", help="model bundle, or a run folder (default: the model shipped with xasml for the "
                                   "spectrum's absorbing element)")
    from xasml.measure.cli import add_reading_options

    add_reading_options(q, calibration=True)
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    from xasml.references.cli import add_references_option

    add_references_option(q)
    q.add_argument("--no-evidence", action="store_true",
                   help="oxidation state of measured spectra: the model alone, without the evidence of the measured "
                        "reference standards (nearest standards, linear-combination fit, edge position) and their "
                        "combined answer")
    q.set_defaults(func=_predict)

    lab = sub.add_parser("label", help="label the absorbing sites of a data folder (ChemEnv, bond valence)")
    lab.add_argument("--data", help=HELP["data"])
    lab.add_argument("--element", default="Cu", help=HELP["element"])
    lab.add_argument("--cache", required=True, help="label table to write / resume (.parquet or .csv)")
    lab.add_argument("--n-jobs", type=int, default=2, help=HELP["n_jobs"])
    lab.set_defaults(func=_label)

    st = sub.add_parser("sites", help="one labelled table of the site spectra of several elements and data sets",
                        description="Site spectra of the 3d metals (or --elements) from FEFF folders and packed "
                                    "datasets, labelled (ChemEnv, coordination number, bond-valence oxidation "
                                    "state), on their native absolute energy grids, with the simulation that made "
                                    "each; written as one Parquet dataset (kind 'sites').")
    st.add_argument("--data", nargs="+", required=True, metavar="PATH",
                    help="FEFF folders and/or packed datasets (xasml simulate pack)")
    st.add_argument("--elements", default="Ti,V,Cr,Mn,Fe,Co,Ni,Cu,Zn", help="absorbing elements, comma-separated")
    st.add_argument("--out", required=True, help="output .parquet")
    st.add_argument("--cache", help="label cache to write / resume (.parquet)")
    st.add_argument("--seed-cache", help="read-only labels to reuse (e.g. xasml/data/local/cu_labels.parquet)")
    st.add_argument("--n-jobs", type=int, default=1, help=HELP["n_jobs"])
    st.set_defaults(func=_sites)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def resolve_run_config(args) -> LocalConfig:
    """The configuration of ``xasml local run``: defaults, then the presets (``--paper``,
    ``--quick``), then the values set in the ``--config`` file, then the other command-line
    options; a later layer wins, so ``--quick`` never overrides a value the config file sets.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``local run`` arguments.

    Returns
    -------
    LocalConfig

    Raises
    ------
    DataError
        If the config file cannot be read or a value is invalid (file and option named).
    """
    from xasml.config import read_config_file
    from xasml.errors import DataError
    from xasml.local.config import QUICK

    cfg = LocalConfig.paper() if args.paper else LocalConfig()
    if args.quick:
        cfg = cfg.merged(QUICK, "--quick")
    if args.config:
        cfg = cfg.merged(read_config_file(args.config), args.config)
    data = args.data[0] if isinstance(args.data, list) and len(args.data) == 1 else args.data
    if isinstance(data, list):
        raise DataError("several --data paths need --elements (the multi-element run)")
    cli = {key: val for key, val in (("data", data), ("element", args.element), ("seed", args.seed),
                                     ("n_jobs", args.n_jobs)) if val is not None}
    return cfg.merged(cli, "command line")


def _show_config(cfg: LocalConfig) -> str:
    """Every option as ``name = value    # description``, as the other ``run`` commands print it."""
    return cfg.show()


def resolve_multi_config(args):
    """The configuration of the multi-element run: defaults, the ``--config`` file, then
    ``--data``, ``--elements``, ``--seed`` (``--quick``: 2 folds, few epochs and members).

    Raises
    ------
    DataError
        If the config file cannot be read or a value is invalid (file and option named).
    """
    from xasml.config import read_config_file
    from xasml.datasets.sites import METALS_3D
    from xasml.local.multi import MultiConfig

    d: dict = {}
    if args.quick:
        d.update(n_folds=2, epochs=3, finetune_epochs=2, n_members=2, min_class_sites=10)
    if args.config:
        d.update(read_config_file(args.config))
    els = list(METALS_3D) if args.elements.strip().lower() == "all" else \
        [e.strip() for e in args.elements.split(",") if e.strip()]
    d["elements"] = els
    if args.data:
        d["data"] = list(args.data)
    elif "data" not in d:
        from xasml.utils import shared_data_dir

        root, repo = shared_data_dir(), Path(__file__).resolve().parents[3]
        d["data"] = [str(root / "feff10-local-v0"), str(root / "omnixas-cu-feff"), str(root / "feff10-topology-v0")]
        d["data"] += [str(p) for p in (repo / "data" / "feff10-local-mp.parquet",
                                        repo / "data" / "feff10-topology-grown.parquet") if p.exists()]
    if args.seed is not None:
        d["seed"] = args.seed
    if getattr(args, "n_jobs", None) is not None:
        d["n_jobs"] = args.n_jobs
    return MultiConfig.from_dict(d, source=args.config or "command line")


def _run(args) -> int:
    from xasml.local.run import run_local

    if args.elements:
        from xasml.local.multi import run_multi

        cfg = resolve_multi_config(args)
        if args.show_config:
            print(cfg.show())
            return 0
        if args.out:
            out = args.out
        else:
            from xasml.runs import default_run_dir

            out = default_run_dir("local-multi")
        run_multi(cfg, out, overwrite=args.overwrite)
        return 0
    cfg = resolve_run_config(args)
    if args.show_config:
        print(_show_config(cfg))
        return 0
    if args.out:
        out = args.out
    else:
        from xasml.runs import default_run_dir

        out = default_run_dir(f"local-{cfg.element}")
    run_local(cfg, out, overwrite=args.overwrite)
    return 0


def _predict(args) -> int:
    """``xasml local predict``: one result per file on stdout (one JSON object per line with
    ``--json``); a file that cannot be used gives one ``xasml: error: FILE: ...`` line on stderr,
    the other files are still predicted, and the exit status is 2."""
    from xasml.local.predict import predict_files

    results = predict_files(args.files, args.task, args.model, element=args.element, edge=args.edge,
                            energy_col=args.energy_col, mu=args.mu, calibrate=args.calibrate,
                            reference=args.reference, evidence=not args.no_evidence, references=args.references,
                            scan=args.scan)
    status = 0
    for r in results:
        if "error" in r:
            status = 2
            print(file_error_line(r["file"], r["error"]), file=sys.stderr)
        elif args.json:
            print(json.dumps(r))
        else:
            print("\n".join(format_result(r, args.task)))
    return status


_TASK_NAMES = {"coordination": "environment", "cn": "coordination number", "oxidation": "oxidation state"}


def _format_answer(r: dict) -> str:
    """One task's answer as text (see :func:`format_result`)."""
    if "error" in r:
        return f"error: {r['error']}"
    if r.get("status") == "abstained":
        model = r.get("model_prediction")
        return "no answer (abstained" + (f"; the model said {model:.2f})" if isinstance(model, (int, float)) else ")")
    pred = r["prediction"]
    if isinstance(pred, str):
        if r.get("status") == "metal":
            text = str(r.get("environment_name") or pred)
            mp = r.get("model_probabilities") or {}
            if r.get("model_prediction") in mp:
                text += f"  (lattice: {r.get('lattice_source')}; the model said {r['model_prediction']} " \
                        f"{mp[r['model_prediction']]:.2f})"
            return text
        top = ", ".join(f"{c} {p:.2f}" for c, p in sorted(r.get("probabilities", {}).items(), key=lambda kv: -kv[1])[:3])
        name = f" {r['environment_name']}" if r.get("environment_name") not in (None, pred) else ""
        return f"{pred}{name}  ({top})"
    std = r.get("std")
    text = f"{pred:.2f} ± {std:.2g} (1 std)" if std is not None else f"{pred:.2f}"
    if r.get("status") == "metal" and isinstance(r.get("model_prediction"), (int, float)):
        text += f"  (metal; the model said {r['model_prediction']:.2f})"
    elif r.get("status") == "metal":
        text += f"  (metal, {r.get('lattice')} lattice CN {r.get('lattice_cn')})"
    return text


def format_result(r: dict, task: str) -> list[str]:
    """The plain-text lines of one :func:`xasml.local.predict.predict_files` result: the answer
    (one line per task for ``task="all"``), then one ``  warning: ...`` line per warning.

    Parameters
    ----------
    r : dict
        A result without ``error``.
    task : {"coordination", "cn", "oxidation", "all"}

    Returns
    -------
    list of str
    """
    if task == "all":
        lines = [f"{r['file']} ({r.get('absorbing_element')}):"]
        lines += [f"  {_TASK_NAMES[t]}: {_format_answer(r[t])}{_geometry_flag(r[t], t)}"
                  for t in ("coordination", "cn", "oxidation") if t in r]
        ox = r.get("oxidation") or {}
    else:
        lines = [f"{r['file']}: {_format_answer(r)}{_geometry_flag(r, task)}"]
        ox = r if task == "oxidation" else {}
    if ox.get("combined"):
        lines += _evidence_lines(ox)
    return lines + [f"  warning: {w}" for w in r.get("warnings", [])]


def _geometry_flag(r: dict, task: str) -> str:
    """"  FLAGGED" after an environment or CN answer that a nearly identical measured standard
    contradicts (the oxidation state's flag sits on its combined line)."""
    return "  FLAGGED" if task in ("coordination", "cn") and r.get("flagged") else ""


def _evidence_lines(r: dict) -> list[str]:
    """The measured-standard evidence of an oxidation-state result, as indented lines."""
    c, ev = r["combined"], r["evidence"]
    out = []
    if c.get("oxidation_state") is not None:
        out.append(f"  combined oxidation state: {c['oxidation_state']:.2f} ± {c['sigma']:.2f} (1 σ, calibrated on "
                   f"measured standards; from {', '.join(c['methods'])})" + ("  FLAGGED" if r.get("flagged") else ""))
    lcf = ev.get("lcf")
    if lcf and lcf.get("valence") is not None:
        best = lcf["best"]
        comps = " + ".join(f"{x['weight']:.2f} {x['compound']}" for x in best["components"])
        out.append(f"  LCF: {lcf['valence']:.2f} ± {lcf['sigma']:.2f} = {comps} (shift {best['shift']:+.1f} eV, "
                   f"R {best['r_factor']:.4f})")
    ed = ev.get("edge_position")
    if ed:
        out.append(f"  edge position: {ed['valence']:.2f} ± {ed['sigma']:.2f} ({ed['measure']} {ed['energy']:.2f} eV)")
    near = ev.get("nearest") or []
    if near:
        out.append("  nearest standards: " + "; ".join(
            f"{n['compound']} (r {n['similarity']:.3f}, {n['shift']:+.1f} eV)" for n in near[:3]))
    return out


def _label(args) -> int:
    from xasml.datasets.local import discover_sites
    from xasml.labels.site import label_sites, summarize_labels
    from xasml.datasets.sites import default_data_path

    data = args.data or default_data_path()
    sites = discover_sites(data, args.element)
    g = sites.groupby("material_id", sort=True).agg(structure_path=("structure_path", "first"),
                                                   indices=("absorbing_index", list)).reset_index()
    tasks = [(r.material_id, r.structure_path, r.indices) for r in g.itertuples() if r.structure_path]
    t0 = time.time()
    df = label_sites(tasks, cache=Path(args.cache), n_jobs=args.n_jobs)
    s = summarize_labels(df)
    s.pop("errors")
    s["wall_seconds"] = round(time.time() - t0, 1)
    print(json.dumps(s, indent=1))
    return 0


def _sites(args) -> int:
    from xasml.datasets.sites import build_site_table, write_site_table

    elements = [e.strip() for e in args.elements.split(",") if e.strip()]
    frame, report = build_site_table(args.data, elements, cache=args.cache, seed_cache=args.seed_cache,
                                     n_jobs=args.n_jobs)
    write_site_table(args.out, frame, report)
    print(json.dumps({"out": args.out, **report}, indent=1))
    return 0
