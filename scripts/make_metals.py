"""Write CIF files of metallic phases of the 3d metals (polymorphs and ordered alloys) for training data.

    python scripts/make_metals.py OUT_DIR

The local-structure models learn from compounds; a measured metal foil, the most common reference
at a beamline, needs metallic sites in the training data too (oxidation state 0). Beside the foils
of ``scripts/make_foils.py`` these are the other metallic phases of Ti-Zn with small cells:
high-temperature or metastable polymorphs (fcc Fe and Co, bcc Ti and Mn, fcc Mn) and ordered
intermetallics (B2, L1_2, L1_0 prototypes), plus B2 models of the bcc V-Cr, V-Fe and Cr-Fe solid
solutions. Every site of such a structure is labelled oxidation state 0
(:func:`xasml.labels.site.oxidation_states`) and put on its element's metal energy scale
(:func:`xasml.preprocess.energy_scale.scale_key`).

Lattice constants (room temperature unless noted), from Pearson's Handbook of Crystallographic
Data for Intermetallic Phases (Villars & Calvert, 1991) and Wyckoff, Crystal Structures vol. 1
(1963); about 1 % accuracy is enough for XANES (the edge shape follows the first shells).
"""
import math
import sys
from pathlib import Path

from pymatgen.core import Lattice, Structure

B2 = [[0, 0, 0], [0.5, 0.5, 0.5]]
L12 = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]   # A at 1a, B at 3c (AB3)
L10 = [[0, 0, 0], [0.5, 0.5, 0.5]]                               # primitive tetragonal cell

#: key -> (space group, lattice, species, fractional coordinates)
PHASES = {
    "Fe-fcc": ("Fm-3m", Lattice.cubic(3.591), ["Fe"], [[0, 0, 0]]),         # austenite, quenched
    "Co-fcc": ("Fm-3m", Lattice.cubic(3.5447), ["Co"], [[0, 0, 0]]),        # beta-Co
    "Ti-bcc": ("Im-3m", Lattice.cubic(3.3065), ["Ti"], [[0, 0, 0]]),        # beta-Ti (900 C)
    "Mn-bcc": ("Im-3m", Lattice.cubic(3.0806), ["Mn"], [[0, 0, 0]]),        # delta-Mn
    "Mn-fcc": ("Fm-3m", Lattice.cubic(3.8624), ["Mn"], [[0, 0, 0]]),        # gamma-Mn, quenched
    "CuZn-B2": ("Pm-3m", Lattice.cubic(2.9539), ["Cu", "Zn"], B2),          # beta-brass
    "NiAl-B2": ("Pm-3m", Lattice.cubic(2.8870), ["Ni", "Al"], B2),
    "FeAl-B2": ("Pm-3m", Lattice.cubic(2.9080), ["Fe", "Al"], B2),
    "CoAl-B2": ("Pm-3m", Lattice.cubic(2.8620), ["Co", "Al"], B2),
    "FeCo-B2": ("Pm-3m", Lattice.cubic(2.8570), ["Fe", "Co"], B2),
    "NiTi-B2": ("Pm-3m", Lattice.cubic(3.0150), ["Ni", "Ti"], B2),          # nitinol austenite
    "FeTi-B2": ("Pm-3m", Lattice.cubic(2.9759), ["Fe", "Ti"], B2),
    "CoTi-B2": ("Pm-3m", Lattice.cubic(2.9880), ["Co", "Ti"], B2),
    "VCr-B2": ("Pm-3m", Lattice.cubic(2.9500), ["V", "Cr"], B2),            # bcc solid solution model
    "VFe-B2": ("Pm-3m", Lattice.cubic(2.9100), ["V", "Fe"], B2),            # bcc solid solution model
    "CrFe-B2": ("Pm-3m", Lattice.cubic(2.8750), ["Cr", "Fe"], B2),          # bcc solid solution model
    "Ni3Al-L12": ("Pm-3m", Lattice.cubic(3.5720), ["Al", "Ni", "Ni", "Ni"], L12),
    "Ni3Fe-L12": ("Pm-3m", Lattice.cubic(3.5523), ["Fe", "Ni", "Ni", "Ni"], L12),
    "Ni3Mn-L12": ("Pm-3m", Lattice.cubic(3.5890), ["Mn", "Ni", "Ni", "Ni"], L12),
    "Cu3Au-L12": ("Pm-3m", Lattice.cubic(3.7478), ["Au", "Cu", "Cu", "Cu"], L12),
    "Co3Ti-L12": ("Pm-3m", Lattice.cubic(3.6100), ["Ti", "Co", "Co", "Co"], L12),
    "MnAl-L10": ("P4/mmm", Lattice.tetragonal(2.770, 3.570), ["Mn", "Al"], L10),          # tau-MnAl
    "TiAl-L10": ("P4/mmm", Lattice.tetragonal(4.005 / math.sqrt(2), 4.070), ["Ti", "Al"], L10),
    "CuAu-L10": ("P4/mmm", Lattice.tetragonal(3.960 / math.sqrt(2), 3.670), ["Cu", "Au"], L10),
    "FePt-L10": ("P4/mmm", Lattice.tetragonal(3.860 / math.sqrt(2), 3.710), ["Fe", "Pt"], L10),
    "CoPt-L10": ("P4/mmm", Lattice.tetragonal(3.800 / math.sqrt(2), 3.700), ["Co", "Pt"], L10),
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for key, (sg, lat, species, coords) in PHASES.items():
        # the prototype cells of the alloys are written out in full; the elemental phases are
        # expanded from their space group (a one-atom cubic cell would be simple cubic)
        s = Structure.from_spacegroup(sg, lat, species, coords) if len(species) == 1 else Structure(lat, species, coords)
        s.to(filename=str(out / f"{key}.cif"))
        print(key, s.composition.reduced_formula, len(s), "atoms")
