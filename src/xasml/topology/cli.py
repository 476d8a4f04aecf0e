"""``xasml topology run | predict | build``."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_run(args: argparse.Namespace) -> int:
    data = args.data[0] if args.data and len(args.data) == 1 else args.data
    if args.show_config:
        from xasml.topology.config import describe_defaults

        print(describe_defaults(args.config, seed=args.seed,
                                data={"path": [str(d) for d in data] if isinstance(data, list) else str(data)}
                                if data else None))
        return 0
    from xasml.topology.run import run_topology

    # --threads is applied by xasml.cli.main (torch and BLAS pools) before this runs
    run_topology(data=data, out=args.out, seed=args.seed, config=args.config, show_progress=not args.quiet,
                 overwrite=args.overwrite)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from xasml.topology.predict import format_prediction, predict_topology

    measured = True if args.measured else (False if args.computed else None)
    res = predict_topology(args.paths, model_dir=args.model, measured=measured, compound=args.compound,
                           formula=args.formula, absorbing_element=args.element, edge=args.edge,
                           energy_col=args.energy_col, mu=args.mu, scan=args.scan, group=args.group,
                           allow_incomplete=args.allow_incomplete)
    if args.json:
        print(json.dumps(res))
    else:
        print(format_prediction(res))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from xasml.datasets.topology import build_topology_frame, write_topology_dataset

    labeler = None
    if args.labels:
        from xasml.labels.topology import TopologyLabeler

        labeler = TopologyLabeler.from_folder(args.labels, ambiguous_catalogue=args.ambiguous_catalogue)
    frame, report = build_topology_frame(args.data, labeler=labeler, omnixas=args.omnixas,
                                         show_progress=not args.quiet)
    path = write_topology_dataset(args.out, frame, report)
    print(json.dumps({"out": str(path), "site_spectra": len(frame),
                      "compounds": int(frame["material_id"].nunique()), **report}, indent=1))
    return 0


def add_parser(subparsers) -> None:
    """Register ``xasml topology`` and its sub-commands."""
    p = subparsers.add_parser("topology", help="topology indicator from K-edge XANES (Andrejevic et al. 2022)",
                              description="Machine-learning indicator of band topology from the K-edge XANES "
                                          "of every element of a compound.")
    sub = p.add_subparsers(dest="topology_command", metavar="SUBCOMMAND")

    r = sub.add_parser("run", help="build the dataset, train the network and baselines, evaluate, report",
                       description="Train and evaluate the topology network and every baseline on one split; "
                                   "writes a run folder (config.json, run.json, splits.json, models/, "
                                   "metrics.json, report/report.md).")
    r.add_argument("--data", metavar="PATH", nargs="+", help="a built .parquet dataset, or feff10-topology-v0-style "
                                                  "folders / packed FEFF datasets (xasml simulate pack), read together "
                                                  "(default: the dataset bundled with xasml)")
    r.add_argument("--out", metavar="DIR", help="run folder, new or empty (default runs/topology-<date>-<time>)")
    r.add_argument("--overwrite", action="store_true", help="clear --out first if it is an existing run folder")
    r.add_argument("--seed", type=int, help="seed (default 0, or the config's)")
    r.add_argument("--config", metavar="FILE", help="TOML/JSON config overriding defaults (see --show-config)")
    r.add_argument("--threads", type=int, default=None, help="threads for torch and BLAS (same as xasml --num-threads; default 1)")
    r.add_argument("--show-config", action="store_true", help="print every option with the value the run would use (defaults "
                                                            "and --config) and its description, and exit")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=_cmd_run)

    q = sub.add_parser("predict", help="probability that a compound is topological, from its spectra",
                       description="PATH: spectrum files of one compound (FEFF xmu.dat, XDI, Athena project, "
                                   "column file; any subset of its elements; XDI, Athena and column files are "
                                   "measured: physically checked, then preprocessed as in the paper, whose "
                                   "per-spectrum area alignment removes chemical shifts) or one compound folder "
                                   "(FEFF-XANES/<idx>_<El>/xmu.dat + material.json). Elements of the formula "
                                   "(--formula or the XDI Sample.formula) without a K-edge spectrum are reported "
                                   "as missing edges: the headline is then withheld (status 'incomplete'; "
                                   "--allow-incomplete gives it) and the atom-type-only probability shown beside "
                                   "the network's.")
    q.add_argument("paths", nargs="+", metavar="PATH")
    q.add_argument("--model", metavar="DIR", help="model folder or run folder (default: pretrained model shipped "
                                                  "with xasml)")
    q.add_argument("--json", action="store_true", help="print exactly one JSON object (the compound's result) on "
                                                       "stdout; errors go to stderr with a non-zero exit")
    q.add_argument("--compound", metavar="NAME", help="the files are spectra of one compound NAME; needed to give "
                                                     "several files of one element (averaged as its sites)")
    q.add_argument("--formula", metavar="FORMULA", help="the compound's formula, e.g. Fe2O3 (default: Sample.formula "
                                                       "of the XDI files): its elements without a K-edge spectrum "
                                                       "are reported as missing edges")
    q.add_argument("--allow-incomplete", action="store_true",
                   help="when edges of the formula are missing, give the network's probability as the answer "
                        "anyway (default: withhold it, status 'incomplete', and show the atom-type-only "
                        "probability beside it)")
    from xasml.measure.cli import add_reading_options

    add_reading_options(q)
    q.add_argument("--group", metavar="LABEL", help="the group of an Athena project to use (needed when it holds "
                                                    "several samples)")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--measured", action="store_true", help="treat every file as measured (preprocess)")
    g.add_argument("--computed", action="store_true", help="treat every file as computed (no preprocessing)")
    q.set_defaults(func=_cmd_predict)

    b = sub.add_parser("build", help="build a topology dataset (.parquet) from compound folders")
    b.add_argument("--data", required=True, metavar="DIR", help="feff10-topology-v0-style folder")
    b.add_argument("--out", required=True, metavar="FILE", help="output .parquet")
    b.add_argument("--labels", metavar="DIR", help="catalogue folder (materiae/, arsenal/) to re-label compounds")
    b.add_argument("--ambiguous-catalogue", default="conflict", choices=("conflict", "abstain"),
                   help="entries of one catalogue that disagree: drop the compound (conflict) or ignore "
                        "that catalogue (abstain)")
    b.add_argument("--omnixas", metavar="DIR", help="omnixas-cu-feff folder to join (needs --labels)")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_cmd_build)

    def _help(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=_help)
