"""Oxidation states of measured standards from models trained on simulation only (issue 9).

    python benchmarks/measured_standards.py [--model DIR] [--shared ../shared/data] [--n-motifs 3]

For each element, one spectrum per reference compound of the XAS Data Library (public domain;
formal oxidation states from the compounds' formulas) goes through the same path as
``xasml local predict --task oxidation --element El --edge K --json FILE`` (xasml.local.predict.
predict_files), three ways:

* ``calibrated``: the shipped per-element model; measured spectra calibrated with their reference
  channel when they have one, flattened, on the experimental energy scale (the simulations put on
  it by one offset per element and code: xasml.preprocess.energy_scale);
* ``uncalibrated``: the same with ``--calibrate none`` (the monochromator's energies as written);
* ``calibrated + SDM``: spectral domain mapping (xasml.measure.sdm, seed 002 §II.D) of the
  element's standards together, then the model.

Score: the fraction of same-element pairs with different true oxidation states that come out in
the right order. These standards are for development (nothing is trained on them; the energy
offsets and the choice between the alignments of the geometry tasks use them). Environment and
coordination number are scored on the GEOMETRY standards (one kind of absorbing site each) with
the shipped bundles and with each alignment for measured spectra: ``calibrated`` (the calibrated
energy scale, as for the oxidation state) or ``measured-area`` (area-matched to the model's mean
training spectrum).
Writes benchmarks/results/measured_standards/{results.json, table.md}.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xasml.utils import atomic_write_json, atomic_write_text  # noqa: E402

#: file stem -> formal oxidation state (one spectrum per compound)
STANDARDS = {
    "V": {"V_foil": 0, "VO": 2, "V2O3": 3, "VO2": 4, "V2O5": 5},
    "Cr": {"cr2o3_rt_001": 3, "cro2_rt_001": 4, "k2cro4_rt_001": 6, "k2cr2o7_rt_001": 6},
    "Mn": {"MnO_rt_01": 2, "Mn3O4_rt_01": 8 / 3, "Mn2O3_rt_01": 3, "MnO2_rt_01": 4},
    "Fe": {"FeO_rt_01": 2, "Fe3O4_rt_01": 8 / 3, "Fe2O3_rt_01": 3, "Hansel2001_goethite_xanes_003": 3,
           "Hansel2001_siderite_xanes_001": 2},
    "Cu": {"Cu_Foil_rt_2016Foils": 0, "Cu2S_13K_01": 1, "CuO_tenorite_13K_01": 2, "Cu_azurite_13K_01": 2},
    "Ni": {"Ni_metal_rt_01": 0, "NiOH2_rt_01": 2, "Ni2O3_rt_01": 3},
}

#: (element, file stem) -> (ChemEnv environment, coordination number) of compounds with one kind of
#: absorbing site, from their crystal structures (mixed-site Mn3O4/Fe3O4/hopeite, NiS of unknown polymorph,
#: Cu2S and metals left out)
GEOMETRY = {
    ("V", "VO"): ("O:6", 6), ("V", "V2O3"): ("O:6", 6), ("V", "VO2"): ("O:6", 6), ("V", "V2O5"): ("S:5", 5),
    ("Cr", "cr2o3_rt_001"): ("O:6", 6), ("Cr", "cro2_rt_001"): ("O:6", 6), ("Cr", "k2cro4_rt_001"): ("T:4", 4),
    ("Cr", "k2cr2o7_rt_001"): ("T:4", 4), ("Cr", "na2cro4_rt_001"): ("T:4", 4),
    ("Mn", "MnO_rt_01"): ("O:6", 6), ("Mn", "Mn2O3_rt_01"): ("O:6", 6), ("Mn", "MnO2_rt_01"): ("O:6", 6),
    ("Fe", "FeO_rt_01"): ("O:6", 6), ("Fe", "Fe2O3_rt_01"): ("O:6", 6), ("Fe", "Hansel2001_goethite_xanes_003"): ("O:6", 6),
    ("Fe", "Hansel2001_siderite_xanes_001"): ("O:6", 6), ("Fe", "FeS2_rt_01"): ("O:6", 6),
    ("Ni", "NiOH2_rt_01"): ("O:6", 6),
    ("Cu", "CuO_tenorite_13K_01"): ("S:4", 4), ("Cu", "Cu_azurite_13K_01"): ("S:4", 4),
    ("Zn", "ZnO"): ("T:4", 4), ("Zn", "Chorover13BM_Zn_sphalerite_rt_01"): ("T:4", 4), ("Zn", "zn_znse_rt"): ("T:4", 4),
    ("Zn", "Chorover13BM_Zn_smithsonite_rt_01"): ("O:6", 6), ("Zn", "Chorover13BM_ZnC2O4_rt_01"): ("O:6", 6),
}


def geometry_scores(lib: Path, model: str | None, alignment: str | None = None) -> dict:
    """Environment and CN of the GEOMETRY standards through ``xasml local predict``'s path.

    ``alignment`` overrides the bundles' own (``"calibrated"`` or ``"measured-area"``), to compare the two.
    """
    from xasml.io.reader import read_spectrum
    from xasml.models.bundle import ModelBundle, find_bundle

    rows = []
    bundles = {}
    for (el, stem), (env, cn) in GEOMETRY.items():
        s = read_spectrum(lib / el / f"{stem}.xdi", absorbing_element=el, edge="K")
        row = {"element": el, "file": stem, "environment": env, "cn": cn}
        for task in ("coordination", "cn"):
            if (el, task) not in bundles:
                b = ModelBundle.load(find_bundle(task, model, el))
                b.alignment = alignment or b.alignment
                bundles[el, task] = b
            key = "predicted_environment" if task == "coordination" else "predicted_cn"
            try:
                r = bundles[el, task].predict([s])[0]
                row[key] = r["prediction"] if task == "coordination" else [r["prediction"], r["std"]]
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
                row[key] = None
                row[f"{task}_error"] = str(exc)[:200]
        rows.append(row)
    ok = [r for r in rows if r["predicted_environment"] is not None]
    cns = [r for r in rows if r["predicted_cn"] is not None]
    return {"alignment": alignment or "shipped", "rows": rows,
            "environment_accuracy": round(sum(r["predicted_environment"] == r["environment"] for r in ok) / max(len(ok), 1), 3),
            "cn_mae": round(float(np.mean([abs(r["predicted_cn"][0] - r["cn"]) for r in cns])) if cns else float("nan"), 3),
            "n": len(rows)}


def pair_order(true: list[float], pred: list[float]) -> tuple[int, int]:
    """(right, total) over pairs with different true values."""
    right = total = 0
    for (t1, p1), (t2, p2) in itertools.combinations(zip(true, pred), 2):
        if t1 == t2 or p1 is None or p2 is None:
            continue
        total += 1
        right += (p1 - p2) * (t1 - t2) > 0
    return right, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="folder of per-element bundles <El>/oxidation (default: the shipped models)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--n-motifs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "measured_standards"))
    args = ap.parse_args()
    from xasml.io.reader import read_spectrum
    from xasml.models.bundle import ModelBundle, find_bundle
    from xasml.local.predict import predict_files
    from xasml.measure.sdm import map_with_bundle

    t0 = time.time()
    lib = Path(args.shared) / "experimental" / "xas-data-library" / "data"
    rows, summary = [], {}
    for el, stds in STANDARDS.items():
        files = [lib / el / f"{stem}.xdi" for stem in stds]
        res = {}
        for how, cal in (("calibrated", "auto"), ("uncalibrated", "none")):
            res[how] = predict_files(files, "oxidation", args.model, element=el, edge="K", calibrate=cal)
        bundle = ModelBundle.load(find_bundle("oxidation", args.model, el))
        spectra = [read_spectrum(f, absorbing_element=el, edge="K") for f in files]
        n_mot = min(args.n_motifs, len(spectra))
        try:
            sdm = map_with_bundle(bundle, spectra, n_mot, n_restarts=100, seed=0)["predictions_sdm"]
        except Exception as exc:  # report, do not lose the other columns
            sdm = [{"error": str(exc)}] * len(files)
        res["calibrated + SDM"] = sdm
        el_sum = {}
        for how, preds in res.items():
            p = [r.get("prediction") for r in preds]
            right, total = pair_order(list(stds.values()), p)
            el_sum[how] = {"right": right, "pairs": total}
        summary[el] = el_sum
        for i, (stem, true) in enumerate(stds.items()):
            row = {"element": el, "file": stem, "true": round(true, 2)}
            for how, preds in res.items():
                r = preds[i]
                row[how] = None if "prediction" not in r else [r["prediction"], r["std"]]
                if how == "calibrated":
                    row["calibration"] = (r.get("calibration") or {}).get("method")
                    row["calibration_shift_eV"] = (r.get("calibration") or {}).get("shift")
                if "error" in r:
                    row[f"{how}_error"] = r["error"][:200]
            rows.append(row)
        print(el, {h: f"{v['right']}/{v['pairs']}" for h, v in el_sum.items()})
    tot = {h: [sum(s[h]["right"] for s in summary.values()), sum(s[h]["pairs"] for s in summary.values())]
           for h in ("calibrated", "uncalibrated", "calibrated + SDM")}
    lines = ["| element | file | true OS | calibrated (σ) | calibration | uncalibrated | calibrated + SDM |",
             "|---|---|---|---|---|---|---|"]
    def fmt(v) -> str:
        """'value ± σ'; an answer of the metal rule has no σ ('0.00 (metal)')."""
        if v is None:
            return "-"
        return f"{v[0]:.2f} (metal)" if v[1] is None else f"{v[0]:.2f} ± {v[1]:.2f}"

    for r in rows:
        cal = r["calibration"] or "-"
        if r.get("calibration_shift_eV"):
            cal += f" ({r['calibration_shift_eV']:+.2f} eV)"
        lines.append(f"| {r['element']} | {r['file']} | {r['true']:g} | {fmt(r['calibrated'])} | {cal} | "
                     f"{fmt(r['uncalibrated'])} | {fmt(r['calibrated + SDM'])} |")
    geometry = {how: geometry_scores(lib, args.model, None if how == "shipped" else how)
                for how in ("shipped", "calibrated", "measured-area")}
    lines += ["", "Environment and CN of standards with one kind of site (true from their structures):", "",
              "| element | file | true env / CN | " + " | ".join(f"{h}: env, CN" for h in geometry) + " |",
              "|---|---|---|" + "---|" * len(geometry)]
    for i, r in enumerate(geometry["shipped"]["rows"]):
        cells = []
        for g in geometry.values():
            x = g["rows"][i]
            pc = x["predicted_cn"]
            cells.append(f"{x['predicted_environment'] or '-'}, " + ("-" if pc is None else f"{pc[0]:.1f} ± {pc[1]:.1f}"))
        lines.append(f"| {r['element']} | {r['file']} | {r['environment']} / {r['cn']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Environment accuracy / CN MAE: " + "; ".join(f"{h} {g['environment_accuracy']:.2f} / {g['cn_mae']:.2f}"
                                                          for h, g in geometry.items()))
    lines.append("")
    lines.append("Pairs in the right order: " + "; ".join(f"{h} {a}/{b} ({a / b:.0%})" for h, (a, b) in tot.items() if b))
    atomic_write_text(Path(args.out) / "table.md", "\n".join(lines) + "\n")
    atomic_write_json(Path(args.out) / "results.json", {"model": args.model or "shipped", "rows": rows,
                                                        "pairs": summary, "total": tot, "n_motifs": args.n_motifs,
                                                        "geometry": geometry,
                                                        "seconds": round(time.time() - t0, 1)})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
