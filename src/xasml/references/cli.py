"""``xasml references``: the measured reference library and the evidence it gives.

``xasml references list [--references DIR] [--element El] [--json]`` lists the standards (one
line per compound: element, edge, compound, formula, valence, entries, where from).
``xasml references add --references DIR --compound NAME --valence V FILE...`` measures the files
(checks, calibration, normalisation) and appends them to the user's library folder atomically.
``xasml references build DATA_DIR [--athena DIR] [--out FILE]`` rebuilds a library from the XAS
Data Library's ``data/<El>/*.xdi`` folders and the compound table, and the standards of the
xraylarch example Athena projects (how the shipped library is made).
``xasml references evidence FILE...`` prints the nearest standards, the best linear-combination
fits, the edge-position valence and their combination for measured spectra.
Bad input is one line ``xasml: error: ...`` naming the file or option (exit status 2).
"""

from __future__ import annotations

import json
import sys

from xasml.errors import DataError, SpectrumError, file_error_line, file_message


def add_references_option(parser) -> None:
    """Add ``--references DIR`` (repeatable): user reference libraries read with the shipped one.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub-)command's parser; ``args.references`` becomes a list of folders or None.
    """
    parser.add_argument("--references", action="append", metavar="DIR",
                        help="a folder of your own measured standards (references.parquet, made with 'xasml "
                             "references add'); used with the shipped library; repeatable")


def add_parser(subparsers) -> None:
    """Register ``references`` and its sub-commands on an argparse sub-parsers object."""
    from xasml.measure.cli import add_reading_options

    p = subparsers.add_parser("references", help="measured reference standards: list, add, build; evidence "
                                                 "(nearest standards, linear-combination fit, edge position)")
    sub = p.add_subparsers(dest="references_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="the standards of the shipped library and yours, one line per compound")
    add_references_option(ls)
    ls.add_argument("--element", help="only this absorbing element")
    ls.add_argument("--no-shipped", action="store_true", help="only the libraries given with --references")
    ls.add_argument("--json", action="store_true", help="one JSON object per compound and line")
    ls.set_defaults(func=_list)
    a = sub.add_parser("add", help="measure standards and append them to your library folder (atomic)")
    a.add_argument("files", nargs="+", metavar="FILE", help="measured spectra of the standard")
    a.add_argument("--references", required=True, metavar="DIR", help="your library folder (created if new)")
    a.add_argument("--compound", required=True, help="compound name (entries of one compound are left out "
                                                     "together when scoring)")
    a.add_argument("--valence", help="formal oxidation state of the absorber (a number; 'unknown' or omitted: "
                                     "nearest-standard evidence only)")
    a.add_argument("--formula", help="chemical formula")
    a.add_argument("--environment", help="coordination environment (ChemEnv symbol, e.g. O:6)")
    a.add_argument("--cn", type=float, help="coordination number of the absorber")
    a.add_argument("--note", help="free text (sample, beamline, calibration)")
    a.add_argument("--source", help="where the data come from (default 'user')")
    a.add_argument("--licence", help="licence of the data")
    add_reading_options(a, calibration=True)
    a.set_defaults(func=_add)
    b = sub.add_parser("build", help="build a library from the XAS Data Library's data/<El>/*.xdi files")
    b.add_argument("folder", metavar="DATA_DIR", help="the XAS Data Library's data folder")
    b.add_argument("--out", help="Parquet file or folder to write (default: the shipped library's path)")
    b.add_argument("--table", help="compound table JSON (default: the shipped xas_data_library.json)")
    b.add_argument("--athena", metavar="DIR", help="also the standards of the xraylarch example Athena projects in "
                                                   "DIR named by the shipped athena_projects.json")
    b.add_argument("--quiet", action="store_true", help="no line per file")
    b.set_defaults(func=_build)
    e = sub.add_parser("evidence", help="nearest standards, linear-combination fits, edge-position valence and "
                                        "their combination for measured spectra (no model)")
    e.add_argument("files", nargs="+", metavar="FILE")
    add_references_option(e)
    add_reading_options(e, calibration=True)
    e.add_argument("--json", action="store_true", help="one JSON object per spectrum and line")
    e.set_defaults(func=_evidence)
    pc = sub.add_parser("pca", help="PCA of a series of measured spectra (component count by Malinowski's IND) and "
                                    "target transformation of the library's standards")
    pc.add_argument("files", nargs="+", metavar="FILE", help="measured spectra of one element and edge (3 or more)")
    add_references_option(pc)
    add_reading_options(pc, calibration=True)
    pc.add_argument("--json", action="store_true", help="one JSON object")
    pc.set_defaults(func=_pca)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _list(args) -> int:
    from xasml.references.library import library_summary, load_library

    df = load_library(args.references, shipped=not args.no_shipped)
    if args.element:
        df = df[df["element"].str.lower() == args.element.lower()]
    recs = library_summary(df)
    for r in recs:
        if args.json:
            print(json.dumps(r))
        else:
            v = "?" if r["valence"] is None else f"{r['valence']:g}"
            print(f"{r['element']:<3} {r['edge']:<3} {r['compound']:<32} {str(r['formula'] or '-'):<18} "
                  f"valence {v:<6} entries {r['entries']:<3} calibrated {r['calibrated']:<3} {r['library']}")
    if not args.json:
        print(f"{len(recs)} compounds, {len(df)} spectra")
    return 0


def _valence(text):
    if text is None or str(text).strip().lower() in ("", "unknown", "none", "null", "?"):
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(f"--valence: expected a number (the absorber's formal oxidation state) or 'unknown', "
                        f"got {text!r}") from None


def _add(args) -> int:
    from xasml.references.library import add_standards

    rows = add_standards(args.references, args.files, args.compound, _valence(args.valence), formula=args.formula,
                         element=args.element, edge=args.edge, environment=args.environment, cn=args.cn,
                         note=args.note, source=args.source, licence=args.licence, calibrate=args.calibrate,
                         reference=args.reference, energy_col=args.energy_col, mu=args.mu, scan=args.scan)
    for r in rows:
        print(f"added {r['id']}  {r['element']} {r['edge']}  e0 {r['e0']:.2f} eV  calibration {r['calibration']}")
    return 0


def _build(args) -> int:
    from xasml.references.library import build_library, shipped_library_path

    out = args.out or shipped_library_path()
    df, skipped = build_library(args.folder, out=out, table=args.table, progress=not args.quiet, athena=args.athena)
    for s in skipped:
        print(f"skipped: {s}", file=sys.stderr)
    print(f"{len(df)} spectra of {df['compound'].nunique()} compounds written to {out}")
    return 0


def _unknowns(path, args):
    """Yield the spectra of file ``path`` (its reference groups left out) one by one as calibrated, normalised
    unknowns, read with the reading options of ``args`` (``add_reading_options(..., calibration=True)``)."""
    from xasml.io.reader import read_spectra
    from xasml.references.evidence import unknown_from_spectrum

    spectra = read_spectra(path, args.element, args.edge, args.energy_col, args.mu, include_references=False,
                           scan=args.scan)
    for s in spectra:
        yield unknown_from_spectrum(s, calibrate=args.calibrate, reference=args.reference)


def _evidence(args) -> int:
    from xasml.references.combine import collect_evidence
    from xasml.references.library import load_library

    lib = load_library(args.references)
    status = 0
    for f in args.files:
        try:
            for u in _unknowns(f, args):
                ev = collect_evidence(u, lib)
                rec = {"file": str(f), "absorbing_element": u.element, "edge": u.edge, "e0": round(u.e0, 2), **ev}
                print(json.dumps(rec, default=float) if args.json else format_evidence(rec))
        except (SpectrumError, DataError, OSError) as exc:
            print(file_error_line(f, exc), file=sys.stderr)
            status = 2
    return status


def _pca(args) -> int:
    from xasml.references.library import load_library
    from xasml.references.pca import pca_of_unknowns

    unknowns = []
    for f in args.files:
        try:
            unknowns.extend(_unknowns(f, args))
        except (SpectrumError, DataError, OSError) as exc:
            raise DataError(file_message(f, exc)) from None
    res = pca_of_unknowns(unknowns, load_library(args.references))
    if args.json:
        print(json.dumps(res))
        return 0
    p = res["pca"]
    print(f"{len(unknowns)} {res['element']} {res['edge']} spectra, {res['energy_range'][0]:.1f}-"
          f"{res['energy_range'][1]:.1f} eV: {p['n_components']} component{'s' * (p['n_components'] != 1)} by IND")
    for i, (lam, ind) in enumerate(zip(p["eigenvalues"], p["ind"] + [None]), 1):
        print(f"  component {i}: eigenvalue {lam:.4g}  cumulative {p['variance_fraction'][i - 1]:.5f}"
              + ("" if ind is None else f"  IND {ind:.3g}"))
    for t in res["targets"][:8]:
        v = "?" if t["valence"] is None else f"{t['valence']:g}"
        print(f"  target {t['compound']} (valence {v}): R {t['r_factor']:.4f}  SPOIL {t['spoil']}")
    return 0


def format_evidence(rec: dict) -> str:
    """Plain-text lines for one spectrum's evidence (what ``xasml references evidence`` prints).

    Parameters
    ----------
    rec : dict
        ``file``, ``absorbing_element``, ``edge``, ``e0`` (eV) and what
        :func:`~xasml.references.combine.collect_evidence` returns (``evidence``, ``combined``,
        ``warnings``).

    Returns
    -------
    str
        The header line, the combined oxidation state, the model, LCF, edge-position and three
        nearest-standard lines where present, then one line per warning.
    """
    ev, c = rec["evidence"], rec["combined"]
    lines = [f"{rec['file']}  {rec['absorbing_element']} {rec['edge']}  e0 {rec['e0']:.2f} eV"]
    if c["oxidation_state"] is not None:
        lines.append(f"  oxidation state {c['oxidation_state']:.2f} ± {c['sigma']:.2f} (from {', '.join(c['methods'])})")
    m = ev.get("model")
    if m:
        lines.append(f"  model: {m['value']:.2f} ± {m['sigma']:.2f}")
    lc = ev.get("lcf")
    if lc:
        best = lc["best"]
        comps = " + ".join(f"{x['weight']:.2f} {x['compound']}" for x in best["components"])
        val = "" if lc.get("valence") is None else f"valence {lc['valence']:.2f} ± {lc.get('sigma', 0):.2f}; "
        lines.append(f"  LCF: {val}{comps} (shift {best['shift']:+.1f} eV, R {best['r_factor']:.4f}, "
                     f"reduced chi2 {best['reduced_chi2']:.3g})")
    ed = ev.get("edge_position")
    if ed:
        lines.append(f"  edge position: {ed['valence']:.2f} ± {ed['sigma']:.2f} ({ed['measure']} {ed['energy']:.2f} eV, "
                     f"{ed['slope']:.3f} per eV over {ed['n_standards']} standards)")
    for n in ev.get("nearest", [])[:3]:
        v = "?" if n["valence"] is None else f"{n['valence']:g}"
        lines.append(f"  nearest: {n['compound']} (valence {v}) r {n['similarity']:.4f} shift {n['shift']:+.1f} eV")
    for w in rec.get("warnings", []):
        lines.append(f"  warning: {w}")
    return "\n".join(lines)
