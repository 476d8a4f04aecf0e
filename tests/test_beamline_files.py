"""Beamline column files as xraylarch reads them: channel names from each header convention, the μ
chosen from the channel vocabulary, e0 against larch ``pre_edge`` on the same μ, element and edge.

The files are the development set in the shared data (``experimental/beamline-files``, xraylarch
examples, MIT); larch's answers were recorded once by ``scripts/larch/larch_reference.py beamline``
into ``tests/data/measure/larch_beamline.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

from xasml.errors import SpectrumError
from xasml.io import detect_format, read_spectrum
from xasml.io.headers import larch_name

LARCH = json.loads((__import__("pathlib").Path(__file__).parent / "data" / "measure" /
                    "larch_beamline.json").read_text())["files"]

#: file -> (header convention, mu, element, edge, element_source)
READ = {
    "APS12BM_2019.dat": ("aps-12bm", "mu01", "Mn", "K", "header (edge energy 6539.0 eV)"),
    "APS13ID_2019.dat": ("epics-stepscan", "(mn_ka_mca1+mn_ka_mca2+mn_ka_mca3+mn_ka_mca4)/i0", "Mn", "K", "header"),
    "APS20ID_2018.dat": ("aps-xsd", "xmap4_aska_sum/prekb_i0", "As", "K", "header (edge energy 11867.0 eV)"),
    "APS9BM_2006.dat": ("spec", "(mca1+mca2+mca3+mca4+mca5+mca6+mca7+mca8)/i0", "S", "K", "data"),
    "CLSHXMA.dat": ("cls", "ln(detector1/detector2)", "As", "K", "data"),
    "ESRF_SNBL_2013.dat": ("spec", "ln(mon/ion1)", "Ge", "K", "data"),
    "FDMNES_2022_Mo2C_out.dat": ("fdmnes", "xanes", "Mo", "K", "header (edge energy 20000.0 eV)"),
    "FDMNES_2022_Mo2C_out_conv.dat": ("fdmnes", "xanes", "Mo", "K", "header (edge energy 20000.0 eV)"),
    "PF9A_2022.dat": ("kek-pf", "col5/col4", "Fe", "K", "data"),
    "PFBL12C_2005.dat": ("kek-pf", "ln(col4/col5)", "Hg", "L3", "data"),
    "SLS_PHOENIX_2023.dat": ("last-line", "alka_sum_cps_c3/i0_keithley1_c4", "Al", "K", "data"),
    "SSRLmicro_2008.dat": ("ssrl", "(" + "+".join(f"sca1_{i}" for i in range(1, 33)) + ")/i0", "Ge", "K", "data"),
    "fe.060": ("nsls-xdac", "ln(i0/it)", "Fe", "K", "header (edge energy 7112.0 eV)"),
    "sno2_l3.dat": ("last-line", "mu", "Sn", "L3", "file name"),
}
#: file -> the one-line refusal
REFUSED = {
    "cu.chi": r"cu\.chi, field 'mu': a chi\(k\) file \(columns k, chi\): EXAFS chi\(k\), not mu\(E\)",
    "generic_columns_no_header.dat": r"field 'mu': which column is mu\? no channel name says.*columns are col1, col2",
}
#: where larch's read_ascii names are wrong, and what we give instead (1-based column: ours)
LARCH_DEVIATIONS = {
    # the two-column "N) name" legend: larch's parser skips '11) XMAP4:TiKa_Sum' and shifts the rest
    "APS20ID_2018.dat": {11: "xmap4_tika_sum", 12: "xmap4_mnka_sum", 13: "xmap4_cuka_sum", 14: "xmap4_znka_sum",
                         15: "xmap4_crka_sum", 16: "xmap4_nika_sum", 17: "xmap4_total_sum"},
    # SPEC '#L' separates labels by two spaces: 'Counter 27' is one label, larch splits it in two
    "APS9BM_2006.dat": {32: "counter_27", 33: "counter_28", 34: "counter_29", 35: "seconds", 36: "seconds_col36"},
}


def _read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_spectrum(path, **kw)


@pytest.fixture(scope="module")
def beamline(shared_data):
    return shared_data / "experimental" / "beamline-files"


def test_every_development_file_is_covered(beamline):
    files = {p.name for p in beamline.iterdir() if not p.name.startswith(("README", "LICENSE"))}
    assert files == set(READ) | set(REFUSED) == set(LARCH)


@pytest.mark.parametrize("name", sorted(READ))
def test_file_reads_with_larch_names_mu_element_and_e0(beamline, name):
    from xasml.preprocess.normalize import pre_edge

    path = beamline / name
    assert detect_format(path) == ("xdi" if name == "APS13ID_2019.dat" else "columns")
    s = _read(path)
    conv, mu, el, ed, el_src = READ[name]
    m = s.metadata
    larch = LARCH[name]
    expected = list(larch["array_labels"])
    for col, ours in LARCH_DEVIATIONS.get(name, {}).items():
        expected[col - 1] = ours
    assert m["columns"] == expected
    assert (m["convention"], m["mu_source"], s.absorbing_element, s.edge, m["element_source"]) == (conv, mu, el, ed,
                                                                                                     el_src)
    assert m["mu_reason"]
    assert larch["mu_source"] == mu
    e0 = pre_edge(s.energy, s.mu, source=str(path)).e0
    assert e0 == pytest.approx(larch["e0"], abs=1.0)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_file_is_refused_with_one_line(beamline, name):
    with pytest.raises(SpectrumError, match=REFUSED[name]) as exc:
        _read(beamline / name)
    assert "\n" not in str(exc.value)
    assert LARCH[name]["array_labels"] == _columns(beamline / name)


def _columns(path):
    from xasml.io.columns import read_column_table

    return read_column_table(path).columns


def test_names_are_normalised_as_larch_does():
    assert [larch_name(w) for w in ("XMAP4:DT Corr I0", "SCA1.1", "<xanes>", "Mono Energy (alt)", "27", "i0(1)",
                                    "BL1606-ID1:mcs03:fbk")] == \
        ["xmap4_dt_corr_i0", "sca1_1", "_xanes", "mono_energy_alt", "_27", "i0_1", "bl1606_id1_mcs03_fbk"]


def test_misidentified_cases_now_right(beamline, test_data):
    sno2 = _read(beamline / "sno2_l3.dat")  # was "In L2" from the data alone
    assert (sno2.absorbing_element, sno2.edge, sno2.metadata["element_source"]) == ("Sn", "L3", "file name")
    fd = _read(beamline / "FDMNES_2022_Mo2C_out_conv.dat")  # was "Ar K": relative eV taken as keV
    assert fd.energy[0] == pytest.approx(20000.0 - 40.0)
    assert any("relative to the edge" in w for w in fd.metadata["warnings"])
    iss = _read(test_data / "measure" / "iss_calibration_cu.dat")  # the sample channels are flat
    assert iss.metadata["mu_source"] == "ln(it/ir)" and iss.metadata["mu_mode"] == "reference"
    assert "ln(i0/it) is flat" in iss.metadata["mu_reason"] and "iff/i0 is flat" in iss.metadata["mu_reason"]


def test_relative_energies_without_edge_energy_are_refused(beamline, tmp_path):
    text = (beamline / "FDMNES_2022_Mo2C_out_conv.dat").read_text().splitlines()
    f = tmp_path / "fdmnes_no_edge.txt"
    f.write_text("\n".join(ln for ln in text if "E_edge" not in ln) + "\n")
    with pytest.raises(SpectrumError, match="FDMNES output from -40.0 to .* relative to the edge.*give --element"):
        _read(f)
    s = _read(f, absorbing_element="Mo", edge="K")  # placed at the tabulated edge
    assert s.energy[0] == pytest.approx(19999.5 - 40.0, abs=1.0)


def test_angles_need_a_d_spacing(beamline, tmp_path):
    text = (beamline / "PF9A_2022.dat").read_text()
    f = tmp_path / "pf_no_d.dat"
    f.write_text(re.sub(r"D=\s*3\.13551 A", "", text))
    with pytest.raises(SpectrumError, match="monochromator angles .* no d-spacing"):
        _read(f)
    s = _read(beamline / "PF9A_2022.dat")
    assert "d = 3.13551 A" in s.metadata["energy_source"]
    assert s.energy[0] == pytest.approx(12398.4198 / (2 * 3.13551 * np.sin(np.radians(8.21))), rel=0.05) or \
        s.energy[0] > 6000


def test_spec_scans_and_cli_json(beamline):
    path = beamline / "ESRF_SNBL_2013.dat"
    s1 = _read(path, scan="1")
    assert s1.metadata["scan"] == "1" and s1.metadata["columns"][0] == "mon"
    with pytest.raises(SpectrumError, match="no scan #S 7 in the file: its scans are 1, 2"):
        _read(path, scan=7)
    out = subprocess.run([sys.executable, "-m", "xasml.cli", "measure", "read", "--json", "--calibrate", "none",
                          str(beamline / "sno2_l3.dat"), str(beamline / "cu.chi")], capture_output=True, text=True)
    assert out.returncode == 2
    rec = json.loads(out.stdout.splitlines()[0])
    assert rec["columns"] == ["energy", "mu"] and rec["mu_source"] == "mu" and rec["element_source"] == "file name"
    assert rec["mu_reason"] == "column 'mu' is a stored mu" and rec["convention"] == "last-line"
    assert out.stderr.count("\n") == 1 and "cu.chi" in out.stderr and "chi(k)" in out.stderr


def test_mu_expression_and_energy_column_take_the_header_names(beamline):
    s = _read(beamline / "APS13ID_2019.dat", mu="ln(i0/i1)", energy_col="energy")
    assert s.metadata["mu_source"] == "ln(i0/i1)" and s.metadata["mu_mode"] == "option"


def _h5_from(beamline, path, layout):
    """A small HDF5 scan file built from the real X-DAC Fe foil scan fe.060 (energy, i0, it)."""
    h5py = pytest.importorskip("h5py")
    from xasml.io.columns import read_column_table

    t = read_column_table(beamline / "fe.060")
    e, i0, it = t.data["energy"], t.data["i0"], t.data["it"]
    with h5py.File(path, "w") as f:
        if layout == "bliss":
            f.attrs["creator"] = "Bliss"
        for k, scale in (("1.1", 0.5), ("2.1", 1.0)):
            entry = f.create_group(k)
            entry.attrs["NX_class"] = "NXentry"
            entry["title"] = f"contscan.motor energy 6.91 7.9 {e.size}"
            inst = entry.create_group("instrument")
            inst.attrs["NX_class"] = "NXinstrument"
            if layout == "soleil":
                src = inst.create_group("source")
                src.attrs["NX_class"] = "NXsource"
                src["name"] = b"SOLEIL"
            if layout == "nexus":
                for name, arr, cls, key in (("energy", e, "NXpositioner", "value"), ("i0", i0, "NXdetector", "data"),
                                            ("it", it * scale, "NXdetector", "data")):
                    g = inst.create_group(name)
                    g.attrs["NX_class"] = cls
                    g[key] = arr
            else:
                meas = entry.create_group("measurement" if layout == "bliss" else "scan_data")
                meas["energy_enc"] = e / 1000.0  # keV, as BLISS encoders write it
                meas["I0"] = i0
                meas["It"] = it * scale
                meas["image"] = np.zeros((e.size, 2, 2))  # 2-D data is skipped
    return path


@pytest.mark.parametrize("layout", ["bliss", "soleil", "nexus"])
def test_hdf5_nexus_scans_read_like_columns(beamline, tmp_path, layout):
    path = _h5_from(beamline, tmp_path / f"scan_{layout}.h5", layout)
    assert detect_format(path) == "hdf5"
    s = _read(path)
    m = s.metadata
    assert m["convention"] == {"bliss": "nexus-bliss", "soleil": "nexus-soleil", "nexus": "nexus"}[layout]
    assert m["scan"] == "2.1" and any("choose another with --scan" in w for w in m["warnings"])
    assert m["mu_source"] == "ln(i0/it)" and (s.absorbing_element, s.edge) == ("Fe", "K")
    ref = _read(beamline / "fe.060")
    np.testing.assert_allclose(s.energy, ref.energy, rtol=1e-9)
    np.testing.assert_allclose(s.mu, ref.mu, rtol=1e-9)
    first = _read(path, scan="1.1")
    assert first.metadata["scan"] == "1.1"
    with pytest.raises(SpectrumError, match="no scan '9.1' in the file: its scans are 1.1, 2.1"):
        _read(path, scan="9.1")


def test_hdf5_damage_is_one_clean_line(beamline, tmp_path):
    path = _h5_from(beamline, tmp_path / "scan.h5", "bliss")
    raw = bytearray(path.read_bytes())
    bad = tmp_path / "cut.h5"
    bad.write_bytes(bytes(raw[: len(raw) // 3]))
    with pytest.raises(SpectrumError, match=r"cut\.h5: (not a readable HDF5 file|corrupt or unreadable)"):
        _read(bad)


def test_extension_does_not_matter(beamline, tmp_path):
    """Demeter's standards (``.stan``) and numbered scans (``.001``) are beamline column files."""
    for ext in (".stan", ".001"):
        f = tmp_path / f"fe{ext}"
        f.write_bytes((beamline / "fe.060").read_bytes())
        s = _read(f)
        assert (s.metadata["convention"], s.absorbing_element, s.metadata["mu_source"]) == ("nsls-xdac", "Fe",
                                                                                            "ln(i0/it)")


def test_old_epics_scan_layout(test_data):
    s = _read(test_data / "io" / "beamline" / "epics_scan_fe.001")
    assert (s.metadata["convention"], s.metadata["columns"], s.metadata["mu_source"]) == \
        ("epics-scan", ["mono_energy", "i0", "it"], "ln(i0/it)")
    assert (s.absorbing_element, s.edge) == ("Fe", "K")


def test_derivative_and_normalised_exports(beamline, tmp_path):
    """What is not mu(E) is said: a derivative export is refused, a normalised one read as kind 'norm'."""
    t = _read(beamline / "sno2_l3.dat")
    d = tmp_path / "sno2_l3_deriv.dat"
    d.write_text("# energy dmude\n" + "".join(f"{e:.4f} {g:.6g}\n" for e, g in zip(t.energy, np.gradient(t.mu, t.energy))))
    with pytest.raises(SpectrumError, match=r"a derivative export \(columns energy, dmude\): d mu/dE, not mu\(E\)"):
        _read(d)
    n = tmp_path / "sno2_l3.nor"
    step = t.mu[-20:].mean() - t.mu[:10].mean()
    n.write_text("# energy norm\n" + "".join(f"{e:.4f} {(m - t.mu[:10].mean()) / step:.6g}\n"
                                              for e, m in zip(t.energy, t.mu)))
    s = _read(n)
    assert (s.kind, s.metadata["mu_mode"], s.absorbing_element, s.edge) == ("norm", "normalized", "Sn", "L3")


def test_dilute_sample_takes_the_clearly_better_fluorescence(test_data, tmp_path):
    """A dilute sample: a weak edge in transmission and a clear one in fluorescence (counts drawn from
    the real Cu foil of the ISS-style file: the transmission absorbs 0.08 of the foil's mu, the
    fluorescence counts follow it)."""
    from xasml.io.columns import read_column_table

    t = read_column_table(test_data / "measure" / "iss_calibration_cu.dat")
    e, i0, it, ir = (t.data[k] for k in ("energy", "i0", "it", "ir"))
    mu = np.log(it / ir) - np.log(it / ir).min()
    rng = np.random.default_rng(1)
    it2 = rng.poisson(it * np.exp(-0.08 * mu)).astype(float)
    iff = rng.poisson(2.0 * i0 * (mu + 0.05)).astype(float)
    f = tmp_path / "dilute_cu.dat"
    f.write_text("# Element.symbol: Cu\n# Element.edge: K\n# energy i0 it iff\n"
                 + "".join(f"{a:.4f} {b:.1f} {c:.1f} {d:.1f}\n" for a, b, c, d in zip(e, i0, it2, iff)))
    s = _read(f)
    assert s.metadata["mu_source"] == "iff/i0" and s.metadata["mu_mode"] == "fluorescence"
    assert "clearer than the transmission ln(i0/it)" in s.metadata["mu_reason"]
    assert _read(f, mu="ln(i0/it)").metadata["mu_source"] == "ln(i0/it)"  # the user's choice stands
