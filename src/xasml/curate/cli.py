"""``xasml curate``: curate a database of site spectra (paper Sec. III.B, steps 1-5)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xasml.errors import DataError


def _symbols(text: str | None) -> list[str] | None:
    if not text:
        return None
    from xasml.spectrum import normalize_element

    return [normalize_element(s, field_name="--elements") for s in text.split(",") if s.strip()]


def _starts(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out = {}
    for item in text.split(","):
        key, sep, val = item.partition("=")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            raise DataError(f"--start: expected ELEMENT=ENERGY_EV pairs such as Cu=8970.5, got {item!r}") from None
        if not sep:
            raise DataError(f"--start: expected ELEMENT=ENERGY_EV pairs such as Cu=8970.5, got {item!r}")
    return out


def resolve_curate_config(args: argparse.Namespace):
    """The :class:`~xasml.curate.core.CurateOptions` of ``xasml curate``: defaults, then
    ``--preset``, then ``--config``, then the options given on the command line.

    Raises
    ------
    DataError
        For an unknown or invalid option (one line naming the file and the option).
    """
    from xasml.config import read_config_file
    from xasml.curate.core import CurateOptions, preset_options

    preset = args.preset or "default"
    cfg = CurateOptions.defaults().merged(preset_options(preset), f"preset {preset}")
    if args.config:
        cfg = cfg.merged(read_config_file(args.config), str(args.config))
    over = {k: v for k, v in (
        ("n_points", args.n_points), ("window", args.window), ("start", _starts(args.start)),
        ("fill_below", "none" if args.strict_range else None),
        ("selection", False if args.no_selection else None),
        ("elements", _symbols(args.elements)), ("drop_elements", _symbols(args.drop_elements)),
        ("exact_duplicates", False if args.no_exact_duplicates else None),
        ("near_duplicates", False if args.no_near_duplicates else None),
        ("near_duplicate_tol", args.near_duplicate_tol),
        ("near_duplicate_elements", None if args.near_duplicate_elements in (None, "all")
         else _symbols(args.near_duplicate_elements)),
        ("outliers", False if args.no_outliers else None),
        ("sigma", args.sigma), ("batch_size", args.batch_size)) if v is not None}
    if args.near_duplicate_elements == "all":
        over["near_duplicate_elements"] = None
    return cfg.merged(over, "command line")


def _cmd_curate(args: argparse.Namespace) -> int:
    from xasml.curate.inputs import curate

    opts = resolve_curate_config(args)
    if args.show_config:
        print(opts.show())
        return 0
    if not args.inputs:
        raise DataError("no input: give at least one Parquet file, FEFF folder or MP .json file/folder")
    if not args.out:
        raise DataError("--out is required: the curated Parquet file to write")
    report_path = args.report or str(Path(args.out).with_suffix(".report.json"))
    report = curate(args.inputs, args.out, opts, report_path=report_path, show_progress=not args.quiet)
    t = report["totals"]
    print(json.dumps({"out": args.out, "report": report_path, "input": t["input"], "kept": t["kept"],
                      "removed": {k: sum(v.values()) for k, v in report["steps"].items()},
                      "seconds": report["timings_s"]["total"],
                      "spectra_per_second": round(report["spectra_per_second"] or 0)}, indent=1))
    return 0


def add_parser(subparsers) -> None:
    """Register ``xasml curate``."""
    p = subparsers.add_parser(
        "curate", help="curate site spectra: common grid, normalised only, elements, duplicates, 3σ",
        description="Curate a collection of site spectra (dataset-format Parquet, FEFF trees "
                    "<root>/.../FEFF-XANES/<index>_<El>/xmu.dat, Materials Project XAS .json documents) into "
                    "one dataset-format Parquet file on per-element uniform grids, following the paper's data "
                    "curation: grid standardisation, selection of normalised spectra, element filtering, exact "
                    "and near duplicate removal, per-element 3σ filter. Writes a JSON report (+ .md summary).")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="Parquet file, FEFF folder or MP .json file/folder")
    p.add_argument("--out", help="curated Parquet file to write (required)")
    p.add_argument("--report", help="JSON report (default: OUT with suffix .report.json; Markdown next to it)")
    p.add_argument("--preset", choices=["default", "paper"],
                   help="paper: also keep only Z < 52 without noble gases and remove near duplicates only in "
                        "Cd, Zn, Cr, S (default: every element, every step)")
    p.add_argument("--n-points", type=int, help="grid points per element (default 200)")
    p.add_argument("--window", type=float, help="grid width in eV; spacing = window / n-points (default 35)")
    p.add_argument("--start", help="explicit grid starts, e.g. Cu=8970,Fe=7100 (default: per-element minimum energy)")
    p.add_argument("--strict-range", action="store_true",
                   help="remove spectra that start above their element's grid start (default: hold the first value)")
    p.add_argument("--no-selection", action="store_true", help="keep spectra not marked as normalised")
    p.add_argument("--elements", help="keep only these absorbing elements, e.g. Fe,Cu")
    p.add_argument("--drop-elements", help="drop these absorbing elements")
    p.add_argument("--no-exact-duplicates", action="store_true", help="keep exact duplicates")
    p.add_argument("--no-near-duplicates", action="store_true", help="keep near duplicates")
    p.add_argument("--near-duplicate-tol", type=float, help="tolerance on every grid point (default 0.005)")
    p.add_argument("--near-duplicate-elements", help="elements for near-duplicate removal, or 'all' (default all; "
                                                     "paper preset: Cd,Zn,Cr,S)")
    p.add_argument("--sigma", type=float, help="outlier band in standard deviations (default 3)")
    p.add_argument("--no-outliers", action="store_true", help="skip the statistical filter")
    p.add_argument("--batch-size", type=int, help="spectra per record batch (default 8192)")
    p.add_argument("--config", metavar="FILE",
                   help="TOML/JSON file of options (names as in --show-config, e.g. n_points, sigma, elements); "
                        "applied after --preset, options given on the command line override it")
    p.add_argument("--show-config", action="store_true",
                   help="print every option with the value the run would use (defaults, --preset, --config, "
                        "options) and its description, and exit")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_curate)
