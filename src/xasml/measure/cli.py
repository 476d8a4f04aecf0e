"""``xasml measure``: measured spectra from beamline files.

``xasml measure read [--json] FILE...`` prints one record per spectrum (an Athena project gives
one per group): file, label, ``status`` ("ok"), absorbing element, edge, ``element_source``, number
of points, e0 (eV), edge step, the calibration and the warnings. Errors are one line on stderr
naming the file (and line/field); the other files are still processed. An Athena project group
that cannot be read or measured gives a record with ``status`` "error" and ``error`` (text output:
a ``NOT READ`` line and a warning line) while its other groups are reported as usual.
Exit status: 0 every spectrum read; 3 partial (some project groups not read, the rest reported);
2 a file refused (nothing of it read) or a wrong option; 1 an unexpected failure.

``xasml measure map --model DIR --n-motifs N FILE... --out DIR`` maps measured spectra onto the
simulated domain of a local-structure model by cBSS spectral domain mapping
(:mod:`xasml.measure.sdm`, paper 002 §II.D) and predicts with and without it. Any bad file or
option stops it with one line ``xasml: error: ...`` naming the file or field (exit status 2)
before ``--out`` is touched.
"""

from __future__ import annotations

import json
import sys

from xasml.errors import XasmlError


def add_reading_options(parser, calibration: bool = False) -> None:
    """Add the options of every command that reads measured files: ``--element``, ``--edge``,
    ``--energy-col``, ``--mu``, ``--scan`` (and with ``calibration`` ``--reference``, ``--calibrate``)."""
    parser.add_argument("--element", help="absorbing element, for files that do not say (and to check those that do)")
    parser.add_argument("--edge", help="absorption edge (K, L3, ...), for files that do not say")
    parser.add_argument("--energy-col", help="energy column of a column file: name or 1-based index")
    parser.add_argument("--mu", help="mu of a column file: column name, 1-based index or expression such as "
                                     "'ln(i0/it)', 'if/i0', 'mu_ref'")
    parser.add_argument("--scan", help="SPEC and HDF5/NeXus files with several scans: the scan to read (SPEC '#S' "
                                       "number, NeXus entry name; default the last)")
    if calibration:
        parser.add_argument("--reference", metavar="FILE", help="separate reference-foil scan for the energy calibration")
        parser.add_argument("--calibrate", choices=("auto", "reference", "none"), default="auto",
                            help="auto: --reference, else the file's reference channel, else no shift; reference: "
                                 "error without one; none: no shift (default auto)")


def add_parser(subparsers) -> None:
    """Register ``measure`` and its sub-commands on an argparse sub-parsers object."""
    p = subparsers.add_parser("measure", help="read, check, calibrate and normalise measured spectra "
                                              "(XDI, Athena projects, column files)")
    sub = p.add_subparsers(dest="measure_command", metavar="SUBCOMMAND")
    r = sub.add_parser("read", help="one record per spectrum: element, edge, e0, edge step, calibration, warnings")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--json", action="store_true", help="one JSON object per line")
    add_reading_options(r, calibration=True)
    r.add_argument("--no-references", action="store_true", help="Athena projects: skip the 'Ref' groups")
    r.add_argument("--ignore-stored", action="store_true",
                   help="Athena projects: normalise with larch's defaults instead of the stored e0 and ranges")
    r.set_defaults(func=_read)
    m = sub.add_parser("map", help="spectral domain mapping (cBSS) of measured spectra onto a model's simulated "
                                   "training domain; predictions with and without it")
    m.add_argument("files", nargs="+", metavar="FILE", help="measured spectra of the model's element and edge "
                                                            "(XDI, Athena project, columns; with --matrix: "
                                                            "spectrum-matrix files)")
    m.add_argument("--model", required=True, help="local-structure model bundle folder (bundle.json, estimator/, "
                                                  "training_spectra.npz)")
    m.add_argument("--n-motifs", type=int, required=True, help="number of spectral motifs n (paper: 4 for Ti K)")
    m.add_argument("--out", required=True, help="output folder, new or empty")
    m.add_argument("--overwrite", action="store_true", help="clear --out first if it is an earlier output folder")
    m.add_argument("--n-restarts", type=int, default=100, help="random initialisations of the weights (default 100)")
    m.add_argument("--seed", type=int, default=0, help="seeds k-means and the initial weights (default 0)")
    m.add_argument("--anchor", type=float, default=1.0,
                   help="weight of the distance to the simulated motifs against the fit (default 1)")
    m.add_argument("--n-iter", type=int, default=200, help="alternating updates per restart (default 200)")
    m.add_argument("--element", help="absorbing element, for files that do not say")
    m.add_argument("--edge", help="absorption edge, for files that do not say")
    m.add_argument("--matrix", action="store_true",
                   help="FILEs are spectrum-matrix files (row 0 energies, then one spectrum per row, first column "
                        "a label such as f_Ti; xasml.io.matrix); the block at the model's edge is used")
    m.add_argument("--label-name", default="label", help="with --matrix: name of the first column (e.g. f_Ti)")
    m.set_defaults(func=_map)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fmt(rec: dict) -> str:
    cal = rec["calibration"]
    shift = f"{cal['shift']:+.2f} eV ({cal['method']})" if cal["method"] != "none" else "none"
    return (f"{rec['file']}  [{rec['label']}]  {rec['absorbing_element']} {rec['edge']}  n={rec['n_points']}  "
            f"e0={rec['e0']:.2f} eV  step={rec['edge_step']:.4g}  calibration={shift}"
            + "".join(f"\n    warning: {w}" for w in rec["warnings"]))


#: exit status of ``measure read``: every spectrum read
EXIT_OK = 0
#: an unexpected failure (a bug: please report it)
EXIT_UNEXPECTED = 1
#: a file refused (nothing of it read), or a wrong option
EXIT_REFUSED = 2
#: partial: every file read, but some groups of an Athena project could not be read or measured
EXIT_PARTIAL = 3


def _fmt_failure(rec: dict) -> str:
    what = "SKIPPED" if rec["status"] == "skipped" else "NOT READ"
    return f"{rec['file']}  [{rec['label']}]  {what}\n    warning: {rec['error']}"


def _read(args) -> int:
    from xasml.measure.core import measure_file

    refused = unexpected = partial = False
    for f in args.files:
        try:
            recs = measure_file(f, absorbing_element=args.element, edge=args.edge, energy_col=args.energy_col,
                                mu=args.mu, calibrate=args.calibrate, reference=args.reference,
                                include_references=not args.no_references, use_stored=not args.ignore_stored, scan=args.scan)
        except XasmlError as exc:  # a user mistake or a bad file: exit status 2 (xasml convention)
            print(f"xasml: error: {exc}", file=sys.stderr)
            refused = True
            continue
        except (OSError, ValueError, TypeError) as exc:  # unexpected: still one line, exit status 1
            print(f"xasml: error: {f}: {type(exc).__name__}: {exc}", file=sys.stderr)
            unexpected = True
            continue
        for rec in recs:
            if rec.get("status") in ("error", "skipped"):
                print(json.dumps(rec) if args.json else _fmt_failure(rec), flush=True)
                print(f"xasml: warning: {rec['error']}", file=sys.stderr)
            else:
                print(json.dumps(rec) if args.json else _fmt(rec), flush=True)
        if not any(r.get("status", "ok") == "ok" for r in recs):
            refused = True
        elif any(r.get("status") == "error" for r in recs):
            partial = True
    if refused:
        return EXIT_REFUSED
    if unexpected:
        return EXIT_UNEXPECTED
    return EXIT_PARTIAL if partial else EXIT_OK


def _read_for_map(args, element: str, edge: str) -> tuple[list, list[str]]:
    """The measured spectra of ``args.files`` and a label for each (file, or file#group/row)."""
    from pathlib import Path

    from xasml.errors import SpectrumError
    from xasml.io.reader import read_spectra

    spectra, labels = [], []
    for f in args.files:
        try:
            if args.matrix:
                from xasml.io.matrix import read_spectrum_matrix

                got = read_spectrum_matrix(f, args.element or element, args.edge or edge, label_name=args.label_name)
                for s in got:
                    labels.append(f"{Path(f).name}#{s.metadata['row']} {args.label_name}={s.metadata[args.label_name]:.4g}")
            else:
                got = read_spectra(f, args.element or None, args.edge or None)
                for fail in getattr(got, "failed", []):  # an Athena group that could not be read: said, not hidden
                    print(f"xasml: warning: {fail.error}; group left out of the mapping", file=sys.stderr)
                if len(got) == 1:
                    labels.append(Path(f).name)
                else:
                    labels += [f"{Path(f).name}#{s.metadata.get('label') or i}" for i, s in enumerate(got)]
        except XasmlError:
            raise
        except (OSError, ValueError) as exc:
            raise SpectrumError(f"unreadable ({type(exc).__name__}: {exc})", source=str(f)) from None
        for s in got:
            if s.absorbing_element != element or s.edge != edge:
                raise SpectrumError(f"the model is for {element} {edge}-edge spectra, this one is "
                                    f"{s.absorbing_element} {s.edge}", source=str(f), field="absorbing_element")
        spectra += got
    return spectra, labels


def _map(args) -> int:
    from pathlib import Path

    from xasml.errors import DataError
    from xasml.models.bundle import ModelBundle
    from xasml.measure.sdm import map_with_bundle, write_outputs
    from xasml.runs import RunFolder

    if args.n_motifs < 1:
        raise DataError(f"--n-motifs is {args.n_motifs}; expected at least 1")
    if args.n_restarts < 1 or args.n_iter < 1:
        raise DataError(f"--n-restarts ({args.n_restarts}) and --n-iter ({args.n_iter}) must be at least 1")
    if not args.anchor >= 0:
        raise DataError(f"--anchor is {args.anchor}; expected a number >= 0")
    bundle = ModelBundle.load(Path(args.model))
    if bundle.training_spectra is None:
        raise DataError(f"{args.model}: the model bundle has no training_spectra.npz; spectral domain mapping needs "
                        "the model's simulated training spectra")
    spectra, labels = _read_for_map(args, bundle.element, bundle.edge)
    if len(spectra) < args.n_motifs:
        raise DataError(f"--n-motifs is {args.n_motifs} but {len(spectra)} spectra were given; expected at least as "
                        "many spectra as motifs")
    mapping = map_with_bundle(bundle, spectra, args.n_motifs, n_restarts=args.n_restarts, seed=args.seed,
                              n_iter=args.n_iter, anchor=args.anchor)
    config = {"command": "measure map", "model": str(args.model), "files": [str(f) for f in args.files],
              "n_motifs": args.n_motifs, "n_restarts": args.n_restarts, "seed": args.seed, "n_iter": args.n_iter,
              "anchor": args.anchor, "element": args.element, "edge": args.edge, "matrix": args.matrix}
    run = RunFolder(args.out, config, seed=args.seed, overwrite=args.overwrite)
    summary = write_outputs(run.path, mapping, labels, bundle)
    run.finish(n_spectra=len(spectra))
    s = summary
    print(f"{len(spectra)} spectra, {s['n_motifs']} motifs, {s['n_restarts']} restarts in {s['seconds']:.2f} s: "
          f"mean weights {s['mean_weights']}, residual RMS {s['residual_rms_mean']:.4f} (max "
          f"{s['residual_rms_max']:.4f}), weight spread across restarts {s['weights_std_mean']:.4f}")
    if "predictions" in s and not bundle.is_classifier:
        import numpy as np

        p0 = np.array([r["without_sdm"]["prediction"] for r in s["predictions"]])
        p1 = np.array([r["with_sdm"]["prediction"] for r in s["predictions"]])
        print(f"{bundle.task}: without SDM {p0.mean():.3f} ± {p0.std():.3f}, with SDM {p1.mean():.3f} ± "
              f"{p1.std():.3f} (mean ± std over spectra)")
    print(f"wrote {run.path}/ (basis.csv, weights.csv, measured.csv, mapped.csv, basis.png, predictions.csv, sdm.json)")
    return 0
