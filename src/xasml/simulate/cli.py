"""``xasml simulate``: FEFF10 spectra from structures (``feff``) and compact datasets of them (``pack``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xasml.errors import DataError


def _csv_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _tags(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise DataError(f"--tag {item!r}: expected CARD=VALUE, e.g. --tag 'SCF=4.5 0 30 0.2 1'")
        k, v = item.split("=", 1)
        out[k.strip().upper()] = v.strip()
    return out


def _ids(text: str | None) -> list[int]:
    out = []
    for tok in _csv_list(text):
        tok = tok.removeprefix("amcsd-")
        if not tok.isdigit():
            raise DataError(f"--amcsd-ids: expected AMCSD ids such as 10022,143, got {tok!r}")
        out.append(int(tok))
    return out


def resolve_feff_config(args: argparse.Namespace):
    """The :class:`~xasml.simulate.config.SimulateFeffConfig` of ``xasml simulate feff``: defaults,
    then ``--config``, then the options given on the command line (``--tag`` cards are added to
    the file's ``tag`` table).

    Raises
    ------
    DataError
        For an unknown or invalid option (one line naming the file and the option).
    """
    from xasml.simulate.config import SimulateFeffConfig

    cfg = SimulateFeffConfig.from_file(args.config) if args.config else SimulateFeffConfig.defaults()
    over = {k: v for k, v in (
        ("inputs", args.inputs or None),
        ("element", [e for x in args.element for e in _csv_list(x)] if args.element else None),
        ("preset", args.preset), ("radius", args.radius),
        ("tag", {**cfg.tag, **_tags(args.tag)} if args.tag else None),
        ("delete", _csv_list(args.delete) if args.delete is not None else None),
        ("amcsd_elements", _csv_list(args.amcsd_elements) if args.amcsd_elements is not None else None),
        ("amcsd_ids", _ids(args.amcsd_ids) if args.amcsd_ids is not None else None),
        ("amcsd_ids_file", args.amcsd_ids_file), ("max_elements", args.max_elements),
        ("max_atoms", args.max_atoms), ("limit", args.limit), ("mp_ids", args.mp_ids),
        ("max_sites", args.max_sites), ("workers", args.workers), ("scheduler", args.scheduler),
        ("timeout", args.timeout), ("retry_failed", args.retry_failed)) if v is not None}
    return cfg.merged(over, "command line")


def _records(cfg):
    from xasml.simulate import sources

    its = []
    if cfg.inputs:
        its.append(sources.from_files(cfg.inputs))
    ids = list(cfg.amcsd_ids)
    if cfg.amcsd_ids_file:
        f = Path(cfg.amcsd_ids_file)
        if not f.exists():
            raise DataError(f"{f}: file not found (--amcsd-ids-file)")
        for lineno, line in enumerate(f.read_text().splitlines(), 1):
            tok = line.split("#")[0].strip().removeprefix("amcsd-")
            if tok:
                if not tok.isdigit():
                    raise DataError(f"{f}, line {lineno}: expected an AMCSD id such as 10022 or amcsd-10022")
                ids.append(int(tok))
    if cfg.amcsd_elements is not None or ids:
        its.append(sources.from_amcsd(contains=cfg.amcsd_elements or [], ids=ids,
                                      max_elements=cfg.max_elements, max_atoms=cfg.max_atoms, limit=cfg.limit))
    if cfg.mp_ids:
        its.append(sources.from_materials_project(cfg.mp_ids))
    if not its:
        raise DataError("nothing to simulate: give structure files or folders, --amcsd-elements/--amcsd-ids, "
                        "or --mp-ids")
    for it in its:
        yield from it


def _run_feff(args: argparse.Namespace) -> int:
    from xasml.simulate.engine import simulate
    from xasml.simulate.feff import FeffSettings

    cfg = resolve_feff_config(args)
    if args.show_config:
        print(cfg.show())
        return 0
    if not args.out:
        raise DataError("--out is required: the output folder of the simulations")
    settings = FeffSettings.from_preset(cfg.preset, radius=cfg.radius, tags=cfg.tag, delete=cfg.delete)
    if args.dry_run:
        from xasml.simulate.engine import plan

        p = plan(_records(cfg), args.out, cfg.elements, settings, cfg.timeout, cfg.retry_failed, cfg.max_sites)
        out = {"structures": p.structures, "sites_to_run": len(p.tasks), "skipped_existing": p.skipped_done,
               "skipped_failed_before": p.skipped_failed, "rejected": p.rejected,
               "by_element": {}}
        for t in p.tasks:
            out["by_element"][t["element"]] = out["by_element"].get(t["element"], 0) + 1
        print(json.dumps(out, indent=1))
        return 0
    summary = simulate(_records(cfg), args.out, cfg.elements, settings, workers=cfg.workers,
                       scheduler=cfg.scheduler, timeout=cfg.timeout, retry_failed=cfg.retry_failed,
                       max_sites=cfg.max_sites, show_progress=False if args.no_progress else None)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        r, t = summary["this_run"], summary["total"]
        print(f"{args.out}: {r['done']} sites done, {r['failed']} failed, {r['skipped_existing']} already there, "
              f"{len(r['rejected'])} structures rejected; {r['core_seconds']:.0f} core-s in {r['wall_seconds']:.0f} s. "
              f"Folder: {t['structures']} structures, {t['sites_done']} site spectra, {t['sites_failed']} failures "
              f"(failures.csv), summary.json")
    return 0 if summary.get("finished") else 1


def _run_pack(args: argparse.Namespace) -> int:
    from xasml.simulate.pack import pack_feff_folder

    extra = {}
    summ = Path(args.folder) / "summary.json"
    if summ.exists():
        extra["simulation"] = json.loads(summ.read_text())
    info = pack_feff_folder(args.folder, args.to, attribution=args.attribution, extra_metadata=extra,
                            topology_labels=args.topology_labels, site_labels=args.site_labels, n_jobs=args.jobs,
                            complete_only=not args.include_incomplete)
    print(json.dumps(info, indent=1) if args.json else
          f"{args.to}: {info['n_sites']} site spectra of {info['n_structures']} structures "
          f"({', '.join(f'{k} {v}' for k, v in info['by_element'].items())})")
    return 0


def add_parser(subparsers) -> None:
    """Register ``xasml simulate feff`` and ``xasml simulate pack``."""
    p = subparsers.add_parser("simulate", help="FEFF10 spectra from structures (Dask, resumable)",
                              description="Simulate K-edge XANES from structures with FEFF10 on Dask.")
    sub = p.add_subparsers(dest="simulate_command", metavar="ACTION")
    f = sub.add_parser("feff", help="FEFF10 XANES of every inequivalent absorbing site",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="FEFF10 (feff10-rs) K-edge XANES of every symmetry-inequivalent site of the "
                                   "absorbing element(s), inputs by pymatgen's MPXANESSet, one Dask task per site.\n"
                                   "Rerun the same command to resume: sites whose xmu.dat exists are skipped.",
                       epilog="examples:\n"
                              "  xasml simulate feff POSCAR structures/ --element Fe --out sims\n"
                              "  xasml simulate feff --amcsd-elements Mn,O --max-elements 4 --element Mn --out sims\n"
                              "  xasml simulate feff --amcsd-ids 10022,143 --element all --out sims --workers 2\n"
                              "  xasml simulate feff --mp-ids mp-1692 --element Cu --preset mp --out sims\n"
                              "  xasml simulate feff cifs/ --scheduler tcp://login1:8786 --out sims")
    f.add_argument("inputs", nargs="*", help="structure files (CIF, POSCAR, ...) or folders of them")
    f.add_argument("--out", help="output folder (FEFF10/<key>/..., summary.json, failures.csv); required")
    f.add_argument("--config", metavar="FILE",
                   help="TOML/JSON file of options (names as in --show-config, e.g. element, preset, tag, max_sites); "
                        "options given on the command line override it")
    f.add_argument("--show-config", action="store_true",
                   help="print every option with the value the run would use (defaults, --config, options) and "
                        "its description, and exit")
    f.add_argument("--element", action="append", metavar="EL",
                   help="absorbing element(s), repeatable or comma-separated; 'all' (default) = every element but H")
    f.add_argument("--preset", choices=("v0", "mp"),
                   help="v0: settings of the shared feff10-*-v0 sets (SCF 3.0, FMS 5.0, 6 Å, no LDOS); "
                        "mp: pymatgen's MPXANESSet defaults (default v0)")
    f.add_argument("--radius", type=float, help="cluster radius, Å (overrides the preset)")
    f.add_argument("--tag", action="append", metavar="CARD=VALUE", help="set a FEFF card, e.g. 'FMS=6.0 0'")
    f.add_argument("--delete", metavar="CARDS", help="remove FEFF cards, comma-separated")
    f.add_argument("--amcsd-elements", metavar="EL,EL", help="query the AMCSD (larixite): structures containing "
                                                           "all these elements (ordered only)")
    f.add_argument("--amcsd-ids", metavar="ID,ID", help="AMCSD ids")
    f.add_argument("--amcsd-ids-file", metavar="FILE", help="file with one AMCSD id per line")
    f.add_argument("--max-elements", type=int, help="AMCSD: at most this many elements")
    f.add_argument("--max-atoms", type=int, help="AMCSD: at most this many atoms in the primitive cell")
    f.add_argument("--limit", type=int, help="AMCSD: at most this many structures")
    f.add_argument("--mp-ids", nargs="+", metavar="MP_ID", help="Materials Project ids (needs mp-api, MP_API_KEY)")
    f.add_argument("--max-sites", type=int, help="skip structures with more inequivalent absorbing sites")
    f.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    f.add_argument("--scheduler", metavar="ADDRESS", help="submit to a running Dask scheduler instead")
    f.add_argument("--timeout", type=float, help="time limit per FEFF stage of a site, s (default 3600)")
    f.add_argument("--retry-failed", action="store_true", default=None, help="rerun sites listed in failures.csv")
    f.add_argument("--dry-run", action="store_true", help="write the structure folders, list the sites, run nothing")
    f.add_argument("--json", action="store_true", help="print summary.json")
    f.add_argument("--no-progress", action="store_true",
                   help="no progress on stderr (default: a bar of sites done / failed / core-seconds, and one line "
                        "per site when stderr is not a terminal)")
    f.set_defaults(func=_run_feff)

    k = sub.add_parser("pack", help="a compact Parquet dataset (spectra, structures, settings) of a simulation folder")
    k.add_argument("folder", help="folder written by 'xasml simulate feff' (or any FEFF10/<key>/ layout)")
    k.add_argument("--to", required=True, help="output .parquet file")
    k.add_argument("--attribution", default="", help="origin and licence of the structures")
    k.add_argument("--topology-labels", metavar="DIR", help="catalogue folder (materiae/, arsenal/): add each "
                                                            "compound's topology label")
    k.add_argument("--site-labels", action="store_true", help="add ChemEnv environment, coordination number and "
                                                              "bond-valence oxidation state of every site")
    k.add_argument("--jobs", type=int, default=1, help="processes for --site-labels")
    k.add_argument("--include-incomplete", action="store_true",
                   help="also structures with sites failed or not run (each site stands alone in a local-structure "
                        "set; a topology set needs every site of a compound)")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=_run_pack)

    def _help(args):
        p.print_help()
        return 2

    p.set_defaults(func=_help)
