"""Choose AMCSD structures to grow the shared FEFF10 sets with ``xasml simulate feff``.

Writes a file of AMCSD ids (one per line, with a comment) for ``--amcsd-ids-file``.

* ``topology``: ordered mineral structures whose reduced formula and space group match a topology
  catalogue entry (Materiae and/or the Arsenal, compounds labelled differently dropped), that are
  not in ``feff10-topology-v0``, whose absorbers are neither noble gases nor f-block elements
  other than La, with ``--min-cost``..``--max-cost`` inequivalent absorbing sites (H excluded);
  cheapest first, topological and trivial interleaved 1:1. v0 took every compound with at most
  2 sites, and its held-back 15 % are among those, so a growth with ``--min-cost 3`` never
  simulates a held-back compound.
* ``local``: ordered, O-bearing structures of one 3d metal that fall *outside* the
  ``feff10-local-v0`` selection (more than ``--v0-max-atoms`` atoms, more than
  ``--v0-max-sites`` inequivalent absorbing sites, or more than 4 elements), one per mineral,
  minerals of the v0 set excluded - again so that no held-back v0 material is simulated.

Usage::

    python scripts/select_amcsd.py topology --labels ../shared/data/topology-labels \
        --exclude ../shared/data/feff10-topology-v0/materials.csv --out topo_ids.txt
    python scripts/select_amcsd.py local --element Ti --exclude ../shared/data/feff10-local-v0/materials.csv \
        --out ti_ids.txt
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

NOBLE = {"He", "Ne", "Ar", "Kr", "Xe", "Rn"}


def _fblock_not_la(el) -> bool:
    return (el.is_lanthanoid and el.symbol != "La") or el.is_actinoid


def _candidates(db, contains=()):

    cifs = db.find_cifs(contains_elements=list(contains) or None, full_occupancy=True, max_matches=10**6)
    for cif in sorted(cifs, key=lambda c: int(c.ams_id)):
        yield cif


def topology(args) -> list[tuple[int, str]]:
    from pymatgen.core import Composition

    from xasml.errors import DataError
    from xasml.labels.topology import TopologyLabeler, formula_key
    from xasml.simulate.feff import inequivalent_sites
    from xasml.simulate.sources import _amcsd_db, amcsd_structure, describe

    lab = TopologyLabeler.from_folder(args.labels)
    formulas = set()
    for cat in lab.catalogues:
        formulas |= {formula_key(f) for f in cat.to_frame()["formula"].dropna()}
    done = {r["amcsd_id"] for r in csv.DictReader(open(args.exclude))} if args.exclude else set()
    db = _amcsd_db()
    rows = []
    for cif in _candidates(db):
        if str(cif.ams_id) in done:
            continue
        try:
            comp = Composition(str(cif.formula))
            if formula_key(comp.reduced_formula) not in formulas:
                continue
            if any(e.symbol in NOBLE or _fblock_not_la(e) for e in comp.elements):
                continue
            s = amcsd_structure(cif.ciftext, int(cif.ams_id))
            meta = describe(s)
            lbl = lab.label(formula=meta["reduced_formula"], sg=meta["sg"])
            if lbl.status != "labelled":
                continue
            cost = len(inequivalent_sites(s, "all"))
        except (DataError, ValueError, KeyError):
            continue
        if args.min_cost <= cost <= args.max_cost:
            rows.append((cost, int(lbl.topological), int(cif.ams_id), f"{meta['reduced_formula']} sg {meta['sg']} "
                                                                      f"{lbl.subclass} cost {cost}"))
    # one entry per (formula, sg): the lowest id
    seen, uniq = set(), []
    for r in sorted(rows, key=lambda r: (r[0], r[2])):
        k = r[3].split(" cost")[0]
        if k not in seen:
            seen.add(k)
            uniq.append(r)
    topo = [r for r in uniq if r[1]]
    triv = [r for r in uniq if not r[1]]
    out = []
    for i in range(max(len(topo), len(triv))):
        for part in (topo, triv):
            if i < len(part):
                out.append((part[i][2], part[i][3]))
    return out


def local(args) -> list[tuple[int, str]]:
    from xasml.errors import DataError
    from xasml.simulate.feff import inequivalent_sites
    from xasml.simulate.sources import _amcsd_db, amcsd_structure, mineral_name

    ex = list(csv.DictReader(open(args.exclude))) if args.exclude else []
    v0_ids = {r["amcsd_id"] for r in ex}
    v0_formulas = {(r["reduced_formula"], r["sg"]) for r in ex}
    db = _amcsd_db()
    out, minerals = [], set()
    for cif in _candidates(db, (args.element, "O")):
        if str(cif.ams_id) in v0_ids:
            continue
        try:
            s = amcsd_structure(cif.ciftext, int(cif.ams_id))
            n_el = len(s.composition.elements)
            if n_el > args.max_elements or len(s) > args.max_atoms:
                continue
            sites = inequivalent_sites(s, [args.element])
        except (DataError, ValueError, KeyError):
            continue
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sg = str(SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number())
        rf = s.composition.reduced_formula
        mineral = mineral_name(cif) or rf
        if (rf, sg) in v0_formulas or mineral in minerals or (rf, sg) in minerals:
            continue
        inside_v0 = n_el <= 4 and len(s) <= args.v0_max_atoms and len(sites) <= args.v0_max_sites
        if inside_v0 or len(sites) > args.max_sites:
            continue
        minerals |= {mineral, (rf, sg)}
        out.append((int(cif.ams_id), f"{mineral} {rf} sg {sg} atoms {len(s)} sites {len(sites)}"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="which", required=True)
    t = sub.add_parser("topology")
    t.add_argument("--labels", required=True)
    t.add_argument("--exclude", help="materials.csv of the existing set")
    t.add_argument("--min-cost", type=int, default=3)
    t.add_argument("--max-cost", type=int, default=4)
    t.add_argument("--out", required=True)
    loc = sub.add_parser("local")
    loc.add_argument("--element", required=True)
    loc.add_argument("--exclude", help="materials.csv of the existing set")
    loc.add_argument("--max-elements", type=int, default=5)
    loc.add_argument("--max-atoms", type=int, default=160)
    loc.add_argument("--max-sites", type=int, default=6)
    loc.add_argument("--v0-max-atoms", type=int, default=80)
    loc.add_argument("--v0-max-sites", type=int, default=3)
    loc.add_argument("--out", required=True)
    args = p.parse_args(argv)
    rows = topology(args) if args.which == "topology" else local(args)
    Path(args.out).write_text("".join(f"{i}  # {c}\n" for i, c in rows))
    print(f"{args.out}: {len(rows)} AMCSD ids", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
