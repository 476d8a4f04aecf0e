"""XDI reader: the XDI project's own malformed-file suite, its examples, and the XAS Data Library."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from xasml.errors import SpectrumError
from xasml.io.xdi import XDIWarning, bragg_energy, mono_d_spacing, read_xdi, read_xdi_table

XDI_EXAMPLES = Path("experimental/xdi-examples")
LIBRARY = Path("experimental/xas-data-library/data")
N_BAD = 36


def _bad_expectations(folder: Path) -> dict[str, str]:
    """file -> 'error' or 'read' or 'warn', parsed from BadFiles.txt."""
    out = {}
    for line in (folder / "BadFiles.txt").read_text().splitlines():
        m = re.match(r"^(bad_\d+\.xdi)\s+(error msg|file read)(\((\d)\))?", line)
        if m:
            if m.group(2) == "error msg":
                out[m.group(1)] = "error"
            else:
                # note 1: read with a warning; 2/3: labels fixed or lines ignored (we warn too)
                out[m.group(1)] = "warn" if m.group(4) in ("1", "2", "3") else "read"
    return out


def test_bundled_bad_files_are_the_xdi_suite(shared_data, test_data):
    """tests/data/io/xdi/baddata is an unmodified copy of the XDI project's suite."""
    ours = test_data / "io" / "xdi" / "baddata"
    theirs = shared_data / XDI_EXAMPLES / "baddata"
    names = sorted(p.name for p in theirs.iterdir())
    assert names == sorted(p.name for p in ours.iterdir() if p.name != "LICENSE")
    assert all((ours / n).read_bytes() == (theirs / n).read_bytes() for n in names)


@pytest.mark.parametrize("i", range(N_BAD))
@pytest.mark.parametrize("reader", [read_xdi_table, read_xdi])
def test_bad_files_behave_as_badfiles_txt_says(test_data, i, reader):
    folder = test_data / "io" / "xdi" / "baddata"
    expect = _bad_expectations(folder)
    assert len(expect) == N_BAD
    name = f"bad_{i:02d}.xdi"
    path = folder / name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if expect[name] == "error":
            with pytest.raises(SpectrumError) as err:
                reader(path)
            assert name in str(err.value) and err.value.source == str(path)
            assert err.value.line is not None  # every structural error names the line
            return
        result = reader(path)  # no other exception may escape
    xdi_warnings = [w for w in caught if issubclass(w.category, XDIWarning)]
    recorded = result.warnings if reader is read_xdi_table else result.metadata["warnings"]
    if expect[name] == "warn":
        assert xdi_warnings, f"{name} should read with an XDIWarning"
        assert all(name in str(w.message) for w in xdi_warnings)
    assert len(recorded) == len(xdi_warnings)
    if reader is read_xdi:
        assert result.absorbing_element == "Cu" and result.edge == "K"  # all are a Cu foil scan
        assert 8700 < result.energy[0] < result.energy[-1] < 10000


def test_bad_file_details(test_data):
    base = test_data / "io" / "xdi" / "baddata"
    with pytest.warns(XDIWarning):
        t = read_xdi_table(base / "bad_08.xdi")  # Column.4 missing -> from the label line
    assert t.columns == ["energy", "i0", "itrans", "mutrans"]
    with pytest.warns(XDIWarning, match="comment token"):
        t = read_xdi_table(base / "bad_11.xdi")
    assert t.get("Beamline.collimation") is None and t.get("beamline.NAME") == "13ID"
    t = read_xdi_table(base / "bad_25.xdi")  # no application on the version line
    assert t.applications == [] and t.get("GSE.EXTRA3") == "config 3"
    t = read_xdi_table(base / "bad_26.xdi")  # no user comments
    assert t.comments == []
    with pytest.warns(XDIWarning, match="not a defined abscissa"):
        t = read_xdi_table(base / "bad_32.xdi")
    assert set(t.missing_recommended()) == {"Beamline.name", "Facility.name"}
    with pytest.raises(SpectrumError, match=r"bad_19\.xdi, line 8: malformed header field"):
        read_xdi_table(base / "bad_19.xdi")


def test_angle_abscissa_converted_with_bragg(test_data):
    # bad_12: angle in degrees, Mono.d_spacing renamed; Mono.name 'Si 111' gives d = 3.1356 Å
    with pytest.warns(XDIWarning, match="Si 111"), pytest.warns(XDIWarning, match="d_spacing: missing"):
        s = read_xdi(test_data / "io" / "xdi" / "baddata" / "bad_12.xdi")
    assert np.all(np.diff(s.energy) > 0)  # decreasing angles -> increasing energies
    assert s.energy[0] == pytest.approx(12398.419843 / (2 * mono_d_spacing("Si 111") * np.sin(np.radians(12.3))))
    assert mono_d_spacing("Si(311)") == pytest.approx(5.431020511 / np.sqrt(11))
    assert bragg_energy(np.array([np.pi / 6]), 1.0, "rad")[0] == pytest.approx(12398.419843)


def test_nan_in_data_is_an_error_naming_the_line(test_data):
    with pytest.raises(SpectrumError, match=r"bad_15\.xdi, line 29: value 'nan'"):
        read_xdi(test_data / "io" / "xdi" / "baddata" / "bad_15.xdi")


def test_example_files_all_read(shared_data):
    files = sorted((shared_data / XDI_EXAMPLES / "data").glob("*.xdi"))
    assert len(files) == 16
    for f in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XDIWarning)
            t = read_xdi_table(f)
        assert t.n_points > 2 and len(t.columns) == len(t.data)
        if f.name.startswith("nonxafs"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error", XDIWarning)  # the valid XAS examples read cleanly
            s = read_xdi(f)
        assert s.absorbing_element == t.get("Element.symbol").capitalize()
    # 2-D scan: '#' lines inside the data are kept, not errors
    with pytest.warns(XDIWarning):
        t = read_xdi_table(shared_data / XDI_EXAMPLES / "data" / "nonxafs_2d.xdi")
    assert any("Element.symbol: missing" in w for w in t.warnings)
    assert any("Outer.value" in text for _, text in t.inner_headers)
    with pytest.raises(SpectrumError, match="nonxafs_1d.xdi.*unsupported abscissa units 'mm'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XDIWarning)
            read_xdi(shared_data / XDI_EXAMPLES / "data" / "nonxafs_1d.xdi")


def test_whole_xas_data_library_reads(shared_data):
    root = shared_data / "experimental" / "xas-data-library" / "data"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) == 275  # includes .xd, .xxdi and uploadtest.xdi
    assert {p.suffix for p in files} == {".xdi", ".xd", ".xxdi"}
    sources = set()
    for f in files:
        s = read_xdi(f)
        assert len(s) > 50 and s.kind == "mu"
        if f.parent != root:
            assert s.absorbing_element == f.parent.name, f
        sources.add(s.metadata["mu_source"])
    assert sources == {"ln(i0/itrans)", "mutrans", "ifluor/i0"}


def test_cu_foil_fields(test_data):
    s = read_xdi(test_data / "io" / "xdi" / "cu_metal_rt.xdi")
    t = read_xdi_table(test_data / "io" / "xdi" / "cu_metal_rt.xdi")
    assert (s.absorbing_element, s.edge, s.kind) == ("Cu", "K", "mu")
    assert s.metadata["mu_source"] == "mutrans"
    np.testing.assert_allclose(s.mu, t.data["mutrans"])
    assert t.units["energy"] == "eV" and t.version == "1.0" and t.applications == ["GSE/1.0"]
    assert t.header["Element"]["symbol"] == "Cu" and t.get("mono.D_SPACING") == "3.13553"
    assert s.metadata["header"]["Mono.d_spacing"] == "3.13553"
    # modes: transmission from intensities, and the reference channel is not the sample
    assert read_xdi(test_data / "io" / "xdi" / "CuO_tenorite_13K_01.xdi").metadata["mu_source"] == "ln(i0/itrans)"
    ref = read_xdi(test_data / "io" / "xdi" / "CuO_tenorite_13K_01.xdi", mode="reference")
    assert ref.metadata["mu_source"] == "ln(itrans/irefer)"
    fl = read_xdi(test_data / "io" / "xdi" / "CaSO4_rt_01.xdi")
    assert (fl.absorbing_element, fl.metadata["mu_source"]) == ("S", "ifluor/i0")
    with pytest.raises(SpectrumError, match="no absorption column for mode 'fluorescence'"):
        read_xdi(test_data / "io" / "xdi" / "cu_metal_rt.xdi", mode="fluorescence")


def test_unsorted_energies_warn_or_raise(tmp_path, test_data):
    lines = (test_data / "io" / "xdi" / "cu_metal_rt.xdi").read_text().splitlines()
    first = next(i for i, l in enumerate(lines) if l.strip() and not l.startswith("#"))
    lines[first + 3], lines[first + 4] = lines[first + 4], lines[first + 3]
    lines.insert(first + 10, lines[first + 10])  # a repeated point
    bad = tmp_path / "swapped.xdi"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpectrumError, match=rf"swapped\.xdi, line {first + 5}.*decreases"):
        read_xdi(bad, strict=True)
    with pytest.warns(XDIWarning, match="sorted by energy and 1 repeated energies averaged"):
        s = read_xdi(bad)
    assert np.all(np.diff(s.energy) > 0)
    assert len(s) == len(read_xdi(test_data / "io" / "xdi" / "cu_metal_rt.xdi"))


def test_missing_file_and_not_xdi(tmp_path):
    with pytest.raises(SpectrumError, match="nope.xdi: file not found"):
        read_xdi(tmp_path / "nope.xdi")
    p = tmp_path / "x.xdi"
    p.write_text("8979 1 2\n")
    with pytest.raises(SpectrumError, match="line 1: first line must be the XDI version line"):
        read_xdi(p)


# --------------------------------------------------------------------------------------------
# generic reader: format by content
# --------------------------------------------------------------------------------------------

def test_read_spectrum_dispatches_by_content(tmp_path, test_data):
    from xasml.io import detect_format, read_spectrum

    xdi = test_data / "io" / "xdi" / "cu_metal_rt.xdi"
    feff = test_data / "feff" / "omnixas" / "mp-1005792" / "FEFF-XANES" / "008_Cu" / "xmu.dat"
    mp = test_data / "io" / "mp" / "mp-1022728_xas_Cu_K.json"
    assert [detect_format(p) for p in (xdi, feff, mp)] == ["xdi", "feff", "mp"]
    assert read_spectrum(xdi).metadata["format"] == "xdi"
    assert read_spectrum(feff, material_id="mp-1005792").absorbing_index == 8
    assert read_spectrum(mp).material_id == "mp-1022728"
    assert len(read_spectrum(test_data / "io" / "mp" / "xas_docs.json")) == 2
    # the extension does not matter
    odd = tmp_path / "spectrum.xxdi.txt"
    odd.write_bytes(xdi.read_bytes())
    assert read_spectrum(odd, mode="transmission").absorbing_element == "Cu"
    unknown = tmp_path / "table.dat"
    unknown.write_text("energy mu\n8979 0.1\n8980 0.2\n")
    with pytest.raises(SpectrumError, match=r"table\.dat: unknown spectrum format.*XDI.*FEFF.*JSON"):
        read_spectrum(unknown)
    with pytest.raises(SpectrumError, match="read_feff_compound"):
        read_spectrum(test_data / "feff" / "omnixas" / "mp-1005792")
    with pytest.raises(TypeError, match="take no reader options"):
        read_spectrum(mp, edge="K")


def test_write_xdi_round_trip_keeps_provenance(tmp_path, test_data):
    from xasml.io.feff import read_feff_xmu
    from xasml.io.xdi import write_xdi
    from xasml.preprocess.normalize import preprocess_measured

    s = read_xdi(test_data / "io" / "xdi" / "cu_metal_rt.xdi")
    ref = read_feff_xmu(test_data / "feff" / "omnixas" / "mp-1005792" / "FEFF-XANES" / "008_Cu" / "xmu.dat")
    out, rec = preprocess_measured(s, ref.energy, ref.mu)
    path = write_xdi(tmp_path / "cu_norm.xdi", out)
    with warnings.catch_warnings():
        warnings.simplefilter("error", XDIWarning)  # what we write is valid XDI
        back = read_xdi(path)
        table = read_xdi_table(path)
    assert (back.absorbing_element, back.edge, back.kind) == ("Cu", "K", "norm")
    np.testing.assert_allclose(back.energy, out.energy, atol=1e-6)
    np.testing.assert_allclose(back.mu, out.mu, rtol=1e-9, atol=1e-12)
    assert float(table.get("xasml.preprocessing_shift_eV")) == pytest.approx(rec["shift_eV"])
    assert table.get("Mono.d_spacing") == "3.13553" and table.comments == s.metadata["comments"]
    assert table.applications == ["GSE/1.0", "xasml/" + __import__("xasml").__version__]


def _as_angle_file(test_data, tmp_path, units: str, scale: float) -> Path:
    """The real Cu foil file with its energy column rewritten as a Si(111) Bragg angle in ``units``."""
    from xasml.io.xdi import HC_EV_ANGSTROM

    src = (test_data / "io" / "xdi" / "cu_metal_rt.xdi").read_text().splitlines()
    out = []
    for line in src:
        if line.startswith("# Column.1:"):
            line = f"# Column.1: angle {units}"
        elif line.startswith("# energy"):
            line = line.replace("energy", "angle", 1)
        elif not line.startswith("#") and line.strip():
            parts = line.split()
            theta = np.degrees(np.arcsin(HC_EV_ANGSTROM / (2 * 3.13553 * float(parts[0]))))
            parts[0] = f"{theta * scale:.6f}"
            line = "  ".join(parts)
        out.append(line)
    p = tmp_path / f"cu_{units}.xdi"
    p.write_text("\n".join(out) + "\n")
    return p


def test_angle_in_millidegrees_and_unknown_angle_units(test_data, tmp_path):
    ref = read_xdi(test_data / "io" / "xdi" / "cu_metal_rt.xdi")
    s = read_xdi(_as_angle_file(test_data, tmp_path, "mdeg", 1000.0))
    np.testing.assert_allclose(s.energy, ref.energy, atol=0.05)
    with pytest.raises(SpectrumError, match=r"cu_furlong\.xdi.*Column\.1.*angle units"):
        read_xdi(_as_angle_file(test_data, tmp_path, "furlong", 1.0))


def test_long_whitespace_in_a_header_value_is_read(tmp_path, test_data):
    text = (test_data / "io" / "xdi" / "cu_metal_rt.xdi").read_text()
    p = tmp_path / "long.xdi"
    p.write_text(text.replace("# Sample.prep: Cu metal foil", "# Sample.prep: Cu" + " " * 100000 + "foil"))
    xdi = read_xdi_table(p)
    assert xdi.get("Sample.prep").startswith("Cu") and xdi.get("Sample.prep").endswith("foil")


def test_xdi_pedantry_only_with_verbose(tmp_path, test_data):
    import subprocess
    import sys

    text = (test_data / "io" / "xdi" / "cu_metal_rt.xdi").read_text()
    p = tmp_path / "no_dspacing.xdi"
    p.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("# Mono.d_spacing")) + "\n")
    cmd = [sys.executable, "-m", "xasml.cli"]
    args = ["local", "predict", "--task", "coordination", str(p)]
    quiet = subprocess.run(cmd + args, capture_output=True, text=True, timeout=120)
    loud = subprocess.run(cmd + ["--verbose", *args], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Mono.d_spacing" not in quiet.stderr
    assert f"warning: {p}" in loud.stderr and "Mono.d_spacing: missing" in loud.stderr
    with pytest.warns(XDIWarning, match="Mono.d_spacing"):  # the library always warns
        read_xdi(p)
