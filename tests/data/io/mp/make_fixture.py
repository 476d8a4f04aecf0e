"""Build the MP-schema XAS document fixtures from real OmniXAS FEFF spectra.

Run from the repository root with the shared data present:

    python tests/data/io/mp/make_fixture.py ../shared/data/omnixas-cu-feff/FEFF/Cu

It writes ``mp-1022728_xas_Cu_K.json`` (one document: CuO, two inequivalent Cu sites, averaged
the way the Materials Project does it, with pymatgen ``site_weighted_spectrum`` on 200 points)
and ``xas_docs.json`` (a list: that document and the single-site document of mp-1005792).
"""

from __future__ import annotations

import sys
from pathlib import Path

from monty.json import jsanitize
from pymatgen.analysis.xas.spectrum import XAS, site_weighted_spectrum
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from xasml.io.feff import read_feff_xmu
from xasml.utils import atomic_write_json

HERE = Path(__file__).resolve().parent


def make_doc(folder: Path) -> dict:
    structure = Structure.from_file(folder / "POSCAR")
    spectra = []
    for xmu in sorted((folder / "FEFF-XANES").glob("*_Cu/xmu.dat")):
        s = read_feff_xmu(xmu)
        spectra.append(XAS(s.energy, s.mu, structure, "Cu", "K", "XANES", absorbing_index=s.absorbing_index))
    xas = site_weighted_spectrum(spectra, num_samples=200) if len(spectra) > 1 else spectra[0]
    mpid = folder.name
    spectrum_id = f"{mpid}-XANES-Cu-K" + (f"-{xas.absorbing_index}" if xas.absorbing_index is not None else "")
    sga = SpacegroupAnalyzer(structure)
    comp = structure.composition
    doc = {
        "nsites": len(structure),
        "elements": sorted({el.symbol for el in comp.elements}),
        "nelements": len(comp.elements),
        "composition": comp.as_dict(),
        "composition_reduced": comp.reduced_composition.as_dict(),
        "formula_pretty": comp.reduced_formula,
        "formula_anonymous": comp.anonymized_formula,
        "chemsys": comp.chemical_system,
        "volume": structure.volume,
        "density": structure.density,
        "density_atomic": structure.volume / len(structure),
        "symmetry": {"crystal_system": sga.get_crystal_system().capitalize(), "symbol": sga.get_space_group_symbol(),
                     "number": sga.get_space_group_number(), "point_group": sga.get_point_group_symbol(),
                     "symprec": 0.1},
        "material_id": mpid,
        "deprecated": False,
        "deprecation_reasons": None,
        "last_updated": "2024-01-01T00:00:00",
        "origins": [],
        "warnings": [],
        "structure": structure.as_dict(),
        "spectrum": xas.as_dict(),
        "task_ids": [],
        "absorbing_element": "Cu",
        "spectrum_type": "XANES",
        "edge": "K",
        "spectrum_id": spectrum_id,
    }
    return jsanitize(doc, strict=True, enum_values=True)


def main(root: str) -> None:
    root = Path(root)
    one = make_doc(root / "mp-1022728")
    atomic_write_json(HERE / "mp-1022728_xas_Cu_K.json", one)
    atomic_write_json(HERE / "xas_docs.json", [one, make_doc(root / "mp-1005792")])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/omnixas-cu-feff/FEFF/Cu")
