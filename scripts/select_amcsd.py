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
* ``targeted``: ordered structures (no H, at most ``--max-elements`` elements and ``--max-atoms``
  atoms, at most ``--max-sites`` inequivalent sites of the 3d metals together) of the 3d metals
  that no FEFF10 set (``--exclude`` materials.csv files and packed ``--exclude-packed`` files)
  holds as the same (reduced formula, space group), one per reduced formula; cheapest
  first, elements interleaved (the element with the fewest training sites, ``--counts``, first).
  Formulas that may be held back are never taken: TiO2, and the reduced formula of every
  structure that the selection rule of a shared set would have taken but that set does not list
  (``--v0-local``: O-bearing minerals of <= 4 elements, <= 80 atoms, <= 3 sites of the absorber,
  one per mineral: a mineral the set lacks; ``--v0-topology`` with ``--labels``: compounds of a
  catalogue formula with <= 2 inequivalent sites, per (formula, space group)), unless a set known
  to hold no held-back formula (``--not-held-back``, feff10-local-v1) has it.

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


METALS3D = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")


def _formula_sg(s) -> tuple[str, str]:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sg = str(SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number())
    return s.composition.reduced_formula, sg


def _known(args) -> tuple[set, set, set]:
    """(formula, sg) pairs of every existing set, the AMCSD ids of feff10-local-v0 and the
    (formula, sg) pairs of feff10-topology-v0."""
    from pymatgen.core import Composition

    pairs, v0_ids, topo_pairs = set(), set(), set()
    for f in args.exclude or []:
        for r in csv.DictReader(open(f)):
            rf = Composition(r.get("reduced_formula") or r["formula"]).reduced_formula
            pairs.add((rf, str(r["sg"])))
            if args.v0_local and Path(f).resolve() == Path(args.v0_local).resolve():
                v0_ids.add(int(r["amcsd_id"]))
            if args.v0_topology and Path(f).resolve() == Path(args.v0_topology).resolve():
                topo_pairs.add((rf, str(r["sg"])))
    if args.exclude_packed:
        import pandas as pd

        for f in args.exclude_packed:
            d = pd.read_parquet(f, columns=["formula", "sg"])
            pairs |= {(Composition(a).reduced_formula, str(b)) for a, b in zip(d["formula"], d["sg"])}
    return pairs, v0_ids, topo_pairs


def targeted(args) -> list[tuple[int, str]]:
    from pymatgen.core import Composition

    from xasml.errors import DataError
    from xasml.simulate.feff import inequivalent_sites
    from xasml.simulate.sources import _amcsd_db, amcsd_structure, mineral_name

    pairs, v0_ids, topo_pairs = _known(args)
    catalogue = set()
    if args.labels:
        from xasml.labels.topology import TopologyLabeler, formula_key

        for cat in TopologyLabeler.from_folder(args.labels).catalogues:
            catalogue |= {formula_key(f) for f in cat.to_frame()["formula"].dropna()}
    counts = {}
    for item in (args.counts or "").split(","):
        if "=" in item:
            k, v = item.split("=")
            counts[k.strip()] = int(v)
    elements = [e for e in args.elements.split(",") if e]
    db = _amcsd_db()
    # feff10-local-v0 took one structure per mineral: its minerals (a mineral it lacks may be held back)
    v0_minerals = {mineral_name(db.get_cif(i)) for i in v0_ids} - {""}
    suspect, per_el, seen_ids = set(), {e: [] for e in elements}, set()
    cands = {}
    for el in elements:
        for cif in _candidates(db, (el,)):
            i = int(cif.ams_id)
            if i in seen_ids:
                continue
            seen_ids.add(i)
            try:
                comp = Composition(str(cif.formula))
            except ValueError:
                continue
            syms = {e.symbol for e in comp.elements}
            if "H" in syms or len(syms) > max(args.max_elements, 4):
                continue
            try:
                s = amcsd_structure(cif.ciftext, i)
                rf, sg = _formula_sg(s)
                metal_sites = inequivalent_sites(s, [e for e in METALS3D if e in syms])
                all_sites = inequivalent_sites(s, "all")
            except (DataError, ValueError, KeyError):
                continue
            mineral = mineral_name(cif)
            # the selection rules of the shared sets: a structure they would have taken but do not list
            # may be held back, and with it its formula
            for e in {x.element for x in metal_sites}:
                n_e = sum(x.element == e for x in metal_sites)
                if (args.v0_local and mineral and "O" in syms and len(syms) <= 4 and len(s) <= 80
                        and n_e <= 3 and e != "Cu" and mineral not in v0_minerals):
                    suspect.add(rf)
            if args.labels and len(all_sites) <= 2 and (rf, sg) not in topo_pairs:
                from xasml.labels.topology import formula_key

                if formula_key(rf) in catalogue:  # any space group: the catalogues' own may differ
                    suspect.add(rf)
            if len(syms) > args.max_elements or len(s) > args.max_atoms or len(metal_sites) > args.max_sites:
                continue
            if (rf, sg) in pairs:
                continue
            cost = sum(1 for _ in metal_sites) * len(s)
            cands[i] = (cost, i, rf, sg, mineral, len(s), metal_sites)
    for f in args.not_held_back or []:  # a set whose README says no held-back formula is in it
        suspect -= {Composition(r.get("reduced_formula") or r["formula"]).reduced_formula
                    for r in csv.DictReader(open(f))}
    suspect |= {"TiO2"}
    taken = set()
    for cost, i, rf, sg, mineral, n, sites in sorted(cands.values()):
        if rf in suspect or rf in taken:  # one structure per reduced formula: the cheapest
            continue
        taken.add(rf)
        els = sorted({x.element for x in sites})
        for e in els:
            if e in per_el:
                per_el[e].append((i, f"{mineral or '-'} {rf} sg {sg} atoms {n} sites {len(sites)} "
                                     f"({','.join(x.element for x in sites)})",
                                  sum(x.element in per_el for x in sites)))  # sites simulated
                break
    print(f"held-back suspects (never taken): {' '.join(sorted(suspect))}", file=sys.stderr)
    # interleave: repeatedly take the next structure of the element with the fewest sites so far
    have = {e: counts.get(e, 0) for e in elements}
    pos = {e: 0 for e in elements}
    out = []
    while any(pos[e] < len(per_el[e]) for e in elements):
        e = min((e for e in elements if pos[e] < len(per_el[e])), key=lambda e: have[e])
        i, text, n_sites = per_el[e][pos[e]]
        pos[e] += 1
        have[e] += n_sites
        out.append((i, f"{e}: {text}"))
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
    tg = sub.add_parser("targeted")
    tg.add_argument("--elements", default="Ti,V,Cr,Mn,Fe,Co,Ni,Zn")
    tg.add_argument("--exclude", nargs="*", help="materials.csv files of the existing sets")
    tg.add_argument("--exclude-packed", nargs="*", help="packed sets (data/*.parquet)")
    tg.add_argument("--v0-local", help="materials.csv of feff10-local-v0 (also in --exclude)")
    tg.add_argument("--v0-topology", help="materials.csv of feff10-topology-v0 (also in --exclude)")
    tg.add_argument("--labels", help="topology-labels folder (for the topology-v0 rule)")
    tg.add_argument("--not-held-back", nargs="*", help="materials.csv of sets known to hold no held-back formula")
    tg.add_argument("--counts", help="training sites per element now, El=N,El=N (interleaving)")
    tg.add_argument("--max-elements", type=int, default=4)
    tg.add_argument("--max-atoms", type=int, default=40)
    tg.add_argument("--max-sites", type=int, default=3)
    tg.add_argument("--out", required=True)
    args = p.parse_args(argv)
    rows = {"topology": topology, "local": local, "targeted": targeted}[args.which](args)
    Path(args.out).write_text("".join(f"{i}  # {c}\n" for i, c in rows))
    print(f"{args.out}: {len(rows)} AMCSD ids", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
