"""Choose Materials Project structures of the OmniXAS Cu set to grow the 3d-metal local set.

Structures (``<omnixas>/FEFF/Cu/<mp-id>/POSCAR``) that hold O and at least one of the 3d metals
that ``feff10-local-v0`` has few structures of (Ti, V, Cr, Co, Ni), with at most 4 elements, at
most 40 atoms and at most 2 inequivalent sites of 3d metals other than Cu (Cu has its own FEFF
set); smallest first per metal, metals interleaved so that any prefix of the list is balanced.
Writes one POSCAR path per line, for ``xasml simulate feff $(cat FILE) --element Ti,V,...``.

    python scripts/select_local_mp.py --omnixas ../shared/data/omnixas-cu-feff --out local_mp.txt
"""

from __future__ import annotations

import argparse
import collections
import sys
import warnings
from pathlib import Path

THIN = ("Ti", "V", "Cr", "Co", "Ni")
M3D = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Zn")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--omnixas", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-atoms", type=int, default=40)
    p.add_argument("--max-elements", type=int, default=4)
    p.add_argument("--max-sites", type=int, default=2)
    p.add_argument("--metals", default=",".join(THIN),
                   help="3d metals to select for, comma-separated, interleaved in this order (default %(default)s)")
    p.add_argument("--any-anion", action="store_true", help="also structures without O (sulfides, alloys, ...)")
    p.add_argument("--exclude-packed", nargs="*", default=[],
                   help="packed sets (data/*.parquet) whose materials are skipped")
    args = p.parse_args(argv)
    metals = tuple(m.strip() for m in args.metals.split(",") if m.strip())
    import pyarrow.parquet as pq

    done: set[str] = set()
    for f in args.exclude_packed:
        done |= {str(m).split(":")[0] for m in pq.read_table(f, columns=["material_id"]).column(0).to_pylist()}
    from pymatgen.core import Structure

    from xasml.errors import DataError
    from xasml.simulate.feff import inequivalent_sites

    per = collections.defaultdict(list)
    for poscar in sorted(Path(args.omnixas).glob("FEFF/Cu/*/POSCAR")):
        lines = poscar.read_text().splitlines()
        els, n = lines[5].split(), sum(map(int, lines[6].split()))
        thin = [e for e in metals if e in els]
        if poscar.parent.name in done or ("O" not in els and not args.any_anion) or len(els) > args.max_elements \
                or n > args.max_atoms or not thin:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = Structure.from_file(poscar)
        try:
            k = len(inequivalent_sites(s, [e for e in M3D if e in els]))
        except DataError:
            continue
        if k <= args.max_sites:
            per[thin[0]].append((n, str(poscar)))
    out = []
    for i in range(max((len(v) for v in per.values()), default=0)):
        for e in metals:
            if i < len(per[e]):
                out.append(sorted(per[e])[i][1])
    Path(args.out).write_text("".join(f"{x}\n" for x in out))
    print(f"{args.out}: {len(out)} structures ({', '.join(f'{e} {len(per[e])}' for e in metals)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
