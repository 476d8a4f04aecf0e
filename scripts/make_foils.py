"""Write CIF files of the 3d-metal foils (room-temperature structures) for the FEFF energy-scale offsets.

    python scripts/make_foils.py OUT_DIR

The tabulated K-edge energies (xraydb; Bearden & Burr) are the first inflection points of these
metals' spectra, so one FEFF calculation of each metal fixes the offset between a simulation's
energy scale and the experimental one (issue 9 section 4). Lattice constants: Wyckoff,
Crystal Structures vol. 1 (1963); alpha-Mn: Bradley & Thewlis, Proc. R. Soc. A 115, 456 (1927)
as refined by Lawson et al., J. Appl. Phys. 76, 7049 (1994).
"""
import sys
from pathlib import Path

from pymatgen.core import Lattice, Structure

FOILS = {
    "Ti": ("P6_3/mmc", Lattice.hexagonal(2.9508, 4.6855), [[1 / 3, 2 / 3, 0.25]]),
    "V": ("Im-3m", Lattice.cubic(3.0240), [[0, 0, 0]]),
    "Cr": ("Im-3m", Lattice.cubic(2.8846), [[0, 0, 0]]),
    "Mn": ("I-43m", Lattice.cubic(8.9125), [[0, 0, 0], [0.31787, 0.31787, 0.31787],
                                             [0.35706, 0.35706, 0.03457], [0.08958, 0.08958, 0.28194]]),
    "Fe": ("Im-3m", Lattice.cubic(2.8665), [[0, 0, 0]]),
    "Co": ("P6_3/mmc", Lattice.hexagonal(2.5071, 4.0695), [[1 / 3, 2 / 3, 0.25]]),
    "Ni": ("Fm-3m", Lattice.cubic(3.5240), [[0, 0, 0]]),
    "Cu": ("Fm-3m", Lattice.cubic(3.6149), [[0, 0, 0]]),
    "Zn": ("P6_3/mmc", Lattice.hexagonal(2.6649, 4.9468), [[1 / 3, 2 / 3, 0.25]]),
}

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for el, (sg, lat, coords) in FOILS.items():
    s = Structure.from_spacegroup(sg, lat, [el] * len(coords), coords)
    s.to(filename=str(out / f"{el}-foil.cif"))
    print(el, sg, len(s), "atoms")
