"""Fit the energy offset of each (element, simulation) against the calibrated experimental scale.

    python benchmarks/energy_scales.py [--shared ../shared/data] [--write]

For FEFF10 with the v0 settings: the simulated metal foils (``data/feff10-foils.parquet``, made by
``scripts/make_foils.py`` + ``xasml simulate feff --preset v0``): their e0 put on the tabulated
edge; the figure foils.png compares them with the measured foils of the XAS Data Library (Co, Cu,
Fe, Ni, V, Zn) and the whole-derivative match is recorded as a diagnostic. For OmniXAS's FEFF 9.9.1 Cu set (no foil): chained through the
structure computed by both codes (CuBi2O4: AMCSD 12142 in feff10-topology-grown, mp-505042 in
OmniXAS; pymatgen StructureMatcher), whose site-averaged spectra are matched the same way.

Writes benchmarks/results/energy_scales/results.json, and with --write the shipped table
src/xasml/data/local/energy_scales.json (see xasml.preprocess.energy_scale).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xasml.io.feff import read_feff_xmu as read_xmu  # noqa: E402
from xasml.io.xdi import read_xdi  # noqa: E402
from xasml.preprocess.energy_scale import SCALES_PATH, foil_offset, match_offset  # noqa: E402
from xasml.simulate.pack import feff_root  # noqa: E402
from xasml.spectrum import element_average  # noqa: E402
from xasml.utils import atomic_write_json  # noqa: E402

MEASURED_FOILS = {"Co": "Co/co_metal_rt.xdi", "Cu": "Cu/Cu_Foil_rt_2016Foils.xdi", "Fe": "Fe/Fe_Foil_rt_2016Foils.xdi",
                  "Ni": "Ni/Ni_metal_rt_01.xdi", "V": "V/V_foil.xdi", "Zn": "Zn/Zn_foil.xdi"}
#: structures computed by both codes: (FEFF10 v0 folder key, OmniXAS material id)
CU_PAIRS = [("amcsd-12142", "mp-505042")]


def site_average(folder: Path, element: str):
    """Multiplicity-weighted mean spectrum of the ``element`` sites of one FEFF structure folder."""
    meta_p = folder / "material.json"
    mult = {}
    if meta_p.exists():
        mult = {int(s["absorbing_index"]): int(s.get("multiplicity", 1)) for s in json.loads(meta_p.read_text())["sites"]}
    spectra = []
    for x in sorted(folder.glob(f"FEFF-XANES/*_{element}/xmu.dat")):
        s = read_xmu(x, absorbing_element=element)
        idx = int(x.parent.name.split("_")[0])
        spectra.append(s.replace(multiplicity=mult.get(idx, 1)))
    if not spectra:
        raise SystemExit(f"{folder}: no {element} site")
    avg = element_average(spectra)
    return avg


def plot_foils(foils: Path, lib: Path, v0: dict, path: Path) -> None:
    """Simulated foils on the experimental scale (offset applied) over the measured foils, normalised."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xasml.preprocess.align import edge_energy
    from xasml.preprocess.calibrate import calibrate
    from xasml.preprocess.normalize import pre_edge

    els = sorted(MEASURED_FOILS)
    fig, axs = plt.subplots(2, 3, figsize=(12, 6.5), sharex=True)
    for ax, el in zip(axs.flat, els):
        sim = site_average(foils / "FEFF10" / f"{el}-foil", el)
        raw = read_xdi(lib / MEASURED_FOILS[el])
        meas, _ = calibrate(raw, reference=raw)
        et = edge_energy(el, "K")
        ax.plot(meas.energy - et, pre_edge(meas.energy, meas.mu).norm, "k", label="measured foil (calibrated)")
        ax.plot(sim.energy + v0[el]["offset_eV"] - et, pre_edge(sim.energy, sim.mu).norm, "r",
                label=f"FEFF10 v0 + {v0[el]['offset_eV']:+.2f} eV")
        ax.set_xlim(-15, 50)
        ax.set_title(f"{el} K edge ({et:.0f} eV)")
        ax.legend(fontsize=7, loc="lower right")
    for ax in axs[-1]:
        ax.set_xlabel("E - tabulated edge (eV)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--foils", default=str(ROOT / "data" / "feff10-foils.parquet"))
    ap.add_argument("--write", action="store_true", help="write the shipped energy_scales.json")
    args = ap.parse_args()
    t0 = time.time()
    shared = Path(args.shared)
    foils = feff_root(args.foils)
    lib = shared / "experimental" / "xas-data-library" / "data"
    v0 = {}
    for folder in sorted((foils / "FEFF10").iterdir()):
        el = folder.name.split("-")[0]
        sim = site_average(folder, el)
        meas = read_xdi(lib / MEASURED_FOILS[el]) if el in MEASURED_FOILS else None
        v0[el] = foil_offset(sim, el, "K", meas)
        print(f"FEFF10 v0 {el:2s}: offset {v0[el]['offset_eV']:+6.2f} eV  (e0 rule {v0[el]['offset_e0_eV']:+6.2f}"
              + (f", measured-foil match r = {v0[el]['match_correlation']:.3f}" if meas is not None else "") + ")")
    f9 = {}
    topo = [shared / "feff10-topology-v0", feff_root(ROOT / "data" / "feff10-topology-grown.parquet")]
    for k10, mp in CU_PAIRS:
        folder10 = next(r / "FEFF10" / k10 for r in topo if (r / "FEFF10" / k10).exists())
        s10 = site_average(folder10, "Cu")
        s9 = site_average(shared / "omnixas-cu-feff" / "FEFF" / "Cu" / mp, "Cu")
        # put FEFF10 on the experimental scale first, then match FEFF 9.9.1 to it
        s10x = s10.replace(energy=s10.energy + v0["Cu"]["offset_eV"])
        from xasml.preprocess.align import edge_energy

        off, r = match_offset(s9, s10x, edge_energy("Cu", "K"), window=(-5.0, 30.0))
        f9["Cu"] = {"offset_eV": round(off, 2), "method": f"chained to FEFF10 v0 Cu through {k10} = {mp} (CuBi2O4), "
                    "site-averaged spectra matched (derivative correlation)", "match_correlation": round(r, 4),
                    "pairs": [list(p) for p in CU_PAIRS]}
        print(f"FEFF 9.9.1 Cu: offset {off:+6.2f} eV (r = {r:.3f}, via {k10} / {mp})")
    table = {"format": "xasml.energy_scales/1",
             "description": "eV to add to simulated energies to put them on the calibrated experimental scale "
                            "(metal foil e0 on the tabulated xraydb edge)",
             "offsets": {"FEFF10 v0": v0, "FEFF 9.9.1": f9}}
    out = ROOT / "benchmarks" / "results" / "energy_scales" / "results.json"
    atomic_write_json(out, {**table, "seconds": round(time.time() - t0, 1)})
    if args.write:
        atomic_write_json(SCALES_PATH, table)
        print(f"wrote {SCALES_PATH}")
    plot_foils(foils, lib, v0, out.parent / "foils.png")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
