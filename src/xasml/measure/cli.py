"""``xasml measure``: measured spectra from beamline files.

``xasml measure read [--json] FILE...`` prints one record per spectrum (an Athena project gives
one per group): file, label, absorbing element, edge, number of points, e0 (eV), edge step, the
calibration and the warnings. Errors are one line on stderr naming the file (and line/field);
the other files are still processed; the exit status is 2 when any file was refused (1 for an
unexpected failure).
"""

from __future__ import annotations

import json
import sys

from xasml.errors import XasmlError


def add_parser(subparsers) -> None:
    """Register ``measure`` and its sub-commands on an argparse sub-parsers object."""
    p = subparsers.add_parser("measure", help="read, check, calibrate and normalise measured spectra "
                                              "(XDI, Athena projects, column files)")
    sub = p.add_subparsers(dest="measure_command", metavar="SUBCOMMAND")
    r = sub.add_parser("read", help="one record per spectrum: element, edge, e0, edge step, calibration, warnings")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--json", action="store_true", help="one JSON object per line")
    r.add_argument("--element", help="absorbing element, for files that do not say")
    r.add_argument("--edge", help="absorption edge (K, L3, ...), for files that do not say")
    r.add_argument("--energy-col", help="energy column of a column file: name or 1-based index")
    r.add_argument("--mu", help="mu of a column file: column name, 1-based index or expression such as "
                                "'ln(i0/it)', 'if/i0', 'mu_ref'")
    r.add_argument("--reference", metavar="FILE", help="separate reference-foil scan for the energy calibration")
    r.add_argument("--calibrate", choices=("auto", "reference", "none"), default="auto",
                   help="auto: --reference, else the file's reference channel, else no shift; reference: "
                        "error without one; none: no shift (default auto)")
    r.add_argument("--no-references", action="store_true", help="Athena projects: skip the 'Ref' groups")
    r.add_argument("--ignore-stored", action="store_true",
                   help="Athena projects: normalise with larch's defaults instead of the stored e0 and ranges")
    r.set_defaults(func=_read)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fmt(rec: dict) -> str:
    cal = rec["calibration"]
    shift = f"{cal['shift']:+.2f} eV ({cal['method']})" if cal["method"] != "none" else "none"
    return (f"{rec['file']}  [{rec['label']}]  {rec['absorbing_element']} {rec['edge']}  n={rec['n_points']}  "
            f"e0={rec['e0']:.2f} eV  step={rec['edge_step']:.4g}  calibration={shift}"
            + "".join(f"\n    warning: {w}" for w in rec["warnings"]))


def _read(args) -> int:
    from xasml.measure.core import measure_file

    status = 0
    for f in args.files:
        try:
            recs = measure_file(f, absorbing_element=args.element, edge=args.edge, energy_col=args.energy_col,
                                mu=args.mu, calibrate=args.calibrate, reference=args.reference,
                                include_references=not args.no_references, use_stored=not args.ignore_stored)
        except XasmlError as exc:  # a user mistake or a bad file: exit status 2 (xasml convention)
            print(f"xasml: error: {exc}", file=sys.stderr)
            status = max(status, 2)
            continue
        except (OSError, ValueError, TypeError) as exc:  # unexpected: still one line, exit status 1
            print(f"xasml: error: {f}: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = status or 1
            continue
        for rec in recs:
            print(json.dumps(rec) if args.json else _fmt(rec), flush=True)
    return status
