"""``xasml forward run | predict``: the XANESNET forward model (structure -> spectrum)."""

from __future__ import annotations

import argparse
import json
import sys

from xasml.errors import file_error_line


def _cmd_run(args: argparse.Namespace) -> int:
    from xasml.forward.run import run_forward

    overrides = {}
    if args.cv_repeats is not None:
        overrides["cv"] = {"repeats": args.cv_repeats}
    if args.epochs is not None:
        overrides["model"] = {"epochs": args.epochs}
    if args.no_analysis:
        overrides["analysis"] = {"enabled": False}
    if args.element or args.limit or args.data:
        overrides["data"] = {k: v for k, v in (("element", args.element), ("limit", args.limit),
                                               ("path", args.data)) if v}
    if args.show_config:
        from xasml.forward.config import resolve

        print(resolve(args.config, args.preset, seed=args.seed, **overrides).show())
        return 0
    metrics = run_forward(data=args.data, out=args.out, seed=args.seed, config=args.config, preset=args.preset,
                          show_progress=not args.quiet, overrides=overrides, overwrite=args.overwrite)
    t = metrics["test"]
    print(json.dumps({"out": metrics["out"], "n_train": metrics["n_train"], "n_test": metrics["n_test"],
                      "train_seconds": metrics["train_seconds"], "delta_mu": t["delta_mu"],
                      "peaks": t["peaks"]}, indent=1))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    """``xasml forward predict``: one result per file on stdout (one JSON object per line with
    ``--json``); a file that cannot be used gives one ``xasml: error: FILE: ...`` line on stderr,
    the other files are still predicted, and the exit status is 2."""
    from xasml.forward.predict import iter_predictions

    status = 0
    for path, r in iter_predictions(args.files, model_dir=args.model, absorbing_index=args.absorbing_index):
        if isinstance(r, Exception):
            print(file_error_line(path, r), file=sys.stderr)
            status = 2
            continue
        if args.out:
            from xasml.forward.predict import write_prediction_xdi

            r["xdi"] = str(write_prediction_xdi(r, args.out))
        if args.json:
            print(json.dumps(r))
        else:
            mu = r["mu"]
            i = max(range(len(mu)), key=mu.__getitem__)
            print(f"{r['file']}: {r['element']} {r['edge']} site {r['absorbing_index']}, {len(mu)} points "
                  f"{r['energy'][0]:.1f}-{r['energy'][-1]:.1f} eV, maximum {mu[i]:.3g} at {r['energy'][i]:.1f} eV")
        sys.stdout.flush()
    return status


def add_parser(subparsers) -> None:
    """Register ``xasml forward`` and its sub-commands."""
    p = subparsers.add_parser("forward", help="spectra from structures: XANESNET wACSF + MLP (Rankine & Penfold 2022)",
                              description="Predict K-edge XANES spectra from the local geometry of the absorbing "
                                          "site (wACSF descriptor + multilayer perceptron).")
    sub = p.add_subparsers(dest="forward_command", metavar="SUBCOMMAND")

    r = sub.add_parser("run", help="featurise, cross-validate, train, evaluate and report",
                       description="Train and evaluate a forward model; writes a run folder (config.json, "
                                   "run.json, splits.json, models/forward, metrics.json, report/).")
    r.add_argument("--data", help="XANESNET folder (xyz*/ + xanes*/), XANESNET .npz, or FEFF crystal tree "
                                  "(default: ../shared/data/xanesnet-fe/preconv)")
    r.add_argument("--out", help="run folder, new or empty (default: a fresh runs/forward-<date>-<time>)")
    r.add_argument("--overwrite", action="store_true", help="clear --out first if it is an existing run folder")
    r.add_argument("--config", help="TOML or JSON file overriding any option (see --show-config)")
    r.add_argument("--preset", choices=["fast", "paper"], help="model preset (default: fast)")
    r.add_argument("--seed", type=int, help="seed (default 0)")
    r.add_argument("--element", help="absorbing element (default: from the data)")
    r.add_argument("--limit", type=int, help="read only the first N samples/materials")
    r.add_argument("--epochs", type=int, help="training epochs (overrides the preset)")
    r.add_argument("--cv-repeats", type=int, help="repeats of K-fold cross-validation (0 = skip)")
    r.add_argument("--no-analysis", action="store_true", help="skip the feature analysis")
    r.add_argument("--show-config", action="store_true", help="print every option with the value the run would use (defaults, "
                                                            "--preset, --config) and its description, and exit")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=_cmd_run)

    q = sub.add_parser("predict", help="predict spectra of structures",
                       description="Predict the spectrum of the absorbing site of each structure: .xyz with the "
                                   "absorber first (atomic numbers or symbols in column 1), or a crystal file "
                                   "(POSCAR, CIF) with --absorbing-index.")
    q.add_argument("files", nargs="+", help="structure files")
    q.add_argument("--model", help="model folder (default: the shipped model of the absorbing element)")
    q.add_argument("--absorbing-index", type=int, help="0-based absorbing site (default: 0 for .xyz; the only "
                                                       "site of the element for crystals)")
    q.add_argument("--json", action="store_true", help="one JSON object per line: file, energy (eV), mu, broadening")
    q.add_argument("--out", metavar="DIR", help="also write each predicted spectrum as XDI into DIR "
                                                "(<stem>_<El>_<site>.xdi; model and broadening in the header)")
    q.set_defaults(func=_cmd_predict)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
