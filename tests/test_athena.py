"""Athena project files (Perl dump, gzipped or plain, and JSON): read as data, compared with xraylarch's
``read_athena`` (values recorded in tests/data/measure/larch_athena.json by scripts/larch/larch_reference.py)."""

from __future__ import annotations

import gzip
import json
import warnings

import numpy as np
import pytest

from xasml.errors import SpectrumError
from xasml.io import detect_format, read_spectrum
from xasml.io.athena import read_athena, read_athena_project

LARCH = json.loads((__import__("pathlib").Path(__file__).parent / "data" / "measure" / "larch_athena.json")
                   .read_text())["files"]


def _compare_with_larch(path, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proj = read_athena_project(path)
    larch = LARCH[name]["groups"]
    by_label = {}
    for g in proj.groups:
        by_label[g.label] = g  # larch keys groups by label: a repeated label keeps the last group
    assert len(by_label) == len(larch), name
    for lg in larch:
        g = by_label[lg["label"]]
        assert g.energy.size == lg["n_points"], (name, lg["label"])
        assert g.energy[0] == pytest.approx(lg["energy_first"], abs=1e-6)
        assert g.energy[-1] == pytest.approx(lg["energy_last"], abs=1e-6)
        assert np.sum(g.mu) == pytest.approx(lg["mu_sum"], rel=1e-9, abs=1e-9)
        assert np.sum(g.mu * g.mu) == pytest.approx(lg["mu_sumsq"], rel=1e-9, abs=1e-9)
        assert g.e0 == pytest.approx(lg["e0"], abs=1.0), (name, lg["label"])
        assert g.element == lg["element"] and g.edge == str(lg["edge"]).upper()
        assert (g.i0 is not None) == lg["has_i0"] or g.i0 is None  # mismatched-length i0 arrays are dropped
    return proj


@pytest.mark.parametrize("name", ["cu.prj", "danger.prj", "json_unzipped.prj"])
def test_shipped_projects_match_larch(test_data, name):
    proj = _compare_with_larch(test_data / "io" / "athena" / name, name)
    assert proj.layout == ("json" if name.startswith("json") else "perl")


def test_every_shared_project_matches_larch(shared_data):
    files = sorted((shared_data / "experimental" / "athena-projects").glob("*.prj"))
    assert len(files) == 14
    for f in files:
        _compare_with_larch(f, f.name)


def test_danger_prj_is_parsed_not_executed(test_data, tmp_path):
    # danger.prj carries '@journal = system("hephaestus");' -- it must never run
    path = test_data / "io" / "athena" / "danger.prj"
    assert 'system("hephaestus")' in path.read_text()
    (s,) = read_athena(path)
    assert (s.absorbing_element, s.edge, len(s)) == ("Fe", "K", 341)
    assert s.metadata["label"] == "Fe/Ga alloy scan 1"
    # Perl code where data are expected is an error naming the line, not something to run
    bad = tmp_path / "evil.prj"
    bad.write_text("# Athena project file -- Athena version 0.8.023\n$old_group = 'a';\n"
                   "@args = ('label', system('rm -rf /'));\n@x = (1,2,3);\n@y = (1,2,3);\n[record]\n")
    with pytest.raises(SpectrumError, match=r"evil\.prj, line 3: .*'system'"):
        read_athena_project(bad)


def test_gzipped_and_plain_give_the_same(test_data, tmp_path):
    src = test_data / "io" / "athena" / "cu.prj"
    plain = tmp_path / "cu_plain.prj"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    a, b = read_athena(src), read_athena(plain)
    assert [s.metadata["label"] for s in a] == [s.metadata["label"] for s in b] == ["cu010k.dat", "cu050k.dat",
                                                                                     "cu150k.dat"]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.mu, y.mu)
    assert detect_format(src) == detect_format(plain) == "athena"


def test_stored_athena_parameters(test_data):
    proj = read_athena_project(test_data / "io" / "athena" / "cu.prj")
    g = proj.groups[0]
    assert g.name == "weai" and g.label == "cu010k.dat"
    assert g.e0 == pytest.approx(8977.58)
    assert g.pre1 < g.pre2 < 0 < g.norm1 < g.norm2
    assert g.element == "Cu" and g.edge == "K" and g.is_xmu


def test_json_project_channels_and_order(test_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectra = read_spectrum(test_data / "io" / "athena" / "json_unzipped.prj")
    assert [s.metadata["label"] for s in spectra] == ["FeXANES_DebbysSample.001", "FeXANES_DebbysSample.002",
                                                      "FeXANES_DebbysSample.003", "merge"]
    assert spectra[0].metadata["channels"] == ["signal"] or "signal" in spectra[0].metadata["channels"]
    # the merge group stores an empty @signal: dropped with a warning naming the group
    assert any("'merge'" in w for w in spectra[-1].metadata["warnings"])


def test_reference_groups_are_paired(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectra = read_athena(shared_data / "experimental" / "athena-projects" / "Sn.prj")
    by = {s.metadata["label"]: s for s in spectra}
    assert by["SnO2"].metadata["reference_group"] == "Ref SnO2"
    assert by["Ref SnO2"].metadata["is_reference_channel"]
    assert by["Sn foil"].metadata["reference_group"] is None
    assert len(read_athena(shared_data / "experimental" / "athena-projects" / "Sn.prj",
                           include_references=False)) == 3


@pytest.mark.parametrize("text, message", [
    ("hello\n", "not an Athena project"),
    ("# Athena project file -- Athena version 0.8\n$old_group = 'a';\n@args = ('label','x');\n@x = ('1','2');\n"
     "@y = ('1');\n[record]\n", "2 energies but 1 mu"),
    ("# Athena project file -- Athena version 0.8\n$old_group = 'a';\n@x = ('1','abc');\n@y = ('1','2');\n[record]\n",
     "@x holds 'abc'"),
    ("# Athena project file -- Athena version 0.8\n1;\n", "no data groups"),
    ('{"_____header1": "# Athena project file", "a": {"args": {}, "x": [1, 2]}}', "no 'x'/'y'"),
    ('{"_____header1": "# Athena project file", "a": ', "invalid JSON"),
])
def test_malformed_projects_give_one_line_errors(tmp_path, text, message):
    f = tmp_path / "bad.prj"
    f.write_text(text)
    with pytest.raises(SpectrumError, match=message) as exc:
        read_athena_project(f)
    assert "bad.prj" in str(exc.value) and "\n" not in str(exc.value)


def test_corrupt_gzip_is_an_error(tmp_path):
    f = tmp_path / "broken.prj"
    f.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(SpectrumError, match="broken.prj"):
        read_spectrum(f)


def test_hostile_literals_give_clean_errors(tmp_path):
    """Deep nesting, 5000-digit numbers and long tokens: one short SpectrumError or a value, never a crash."""
    head = "# Athena project file -- Athena version 0.8\n$old_group = 'a';\n"
    deep = tmp_path / "deep.prj"
    deep.write_text(head + "@args = (" + "[" * 5000 + "]" * 5000 + ");\n@x = (1,2);\n@y = (1,2);\n[record]\n")
    with pytest.raises(SpectrumError, match=r"deep\.prj, line 3: group 'a': Perl list nested more than 50"):
        read_athena_project(deep)
    big = tmp_path / "big.prj"
    big.write_text(head + "@args = ('bkg_e0', " + "9" * 5000 + ");\n@x = (1,2,3);\n@y = (1,2,3);\n[record]\n")
    assert read_athena_project(big).groups[0].e0 is None  # an infinite e0 is no e0
    bigjson = tmp_path / "big.json.prj"
    bigjson.write_text('{"_____header1": "# Athena project file", "a": {"args": {"n": ' + "9" * 5000 +
                       '}, "x": [1, 2], "y": [1, 2]}}')
    with pytest.raises(SpectrumError, match="invalid JSON") as exc:
        read_athena_project(bigjson)
    assert len(str(exc.value)) < 300
    junk = tmp_path / "junk.prj"
    junk.write_text(head + "@x = ('" + "z" * 5000 + "');\n@y = (1);\n[record]\n")
    with pytest.raises(SpectrumError, match="@x holds") as exc:
        read_athena_project(junk)
    assert len(str(exc.value)) < 300


# ------------------------------------------------------------------------------------------------
# projects with broken groups: every good group is read, every bad one is reported (issue 15)
# ------------------------------------------------------------------------------------------------

class Perl(str):
    """A Perl literal written as is (for the corner cases a test needs)."""


def _perl(v) -> str:
    if isinstance(v, Perl):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_perl(x) for x in v) + "]"
    return "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _write_project(path, groups, gz=False):
    """A Demeter-style Perl project of ``groups`` (dicts: name, args, x, y, optional extra lines)."""
    out = ["# Athena project file -- Demeter version 0.9.26", "# This file created at 2026-12-07T05:00:00", ""]
    for g in groups:
        out.append(f"$old_group = {_perl(g['name'])};")
        out.append("@args = (" + ",".join(f"{_perl(k)},{_perl(v)}" for k, v in g["args"].items()) + ");")
        for key in ("x", "y"):
            vals = g[key]
            out.append(f"@{key} = (" + (vals if isinstance(vals, str) else ",".join(f"'{v!r}'" for v in vals)) + ");")
        out += g.get("extra", [])
        out += ["[record]", ""]
    out += ["@journal = ();", "", "1;", ""]
    text = "\n".join(out).encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def _cu_group(test_data, shift=0.0, **args):
    """The first group of the real cu.prj (Cu foil at 10 K), energies moved by ``shift`` eV."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = read_athena_project(test_data / "io" / "athena" / "cu.prj").groups[0]
    a = {"label": "cu010k.dat", "bkg_e0": round(g.e0 + shift, 3), "bkg_z": "Cu", "fft_edge": "K", "bkg_pre1": g.pre1,
         "bkg_pre2": g.pre2, "bkg_nor1": g.norm1, "bkg_nor2": g.norm2, "bkg_nnorm": 3, "is_xmu": 1}
    a.update(args)
    return {"name": "g", "args": a, "x": [float(v) for v in g.energy + shift], "y": [float(v) for v in g.mu]}


def _broken_project(test_data, tmp_path, gz=False):
    good = _cu_group(test_data)
    cr = _cu_group(test_data, label=Perl("'CaZrTi2O7 - Transmission.\r4.1 K'"))  # a carriage return in a label
    multi = _cu_group(test_data, label=Perl("'two\nlines'"))  # a string literal over two lines
    stddev = dict(_cu_group(test_data, label="stddev none"), extra=["@stddev = ('None','None');"])
    # H is Athena's unset absorber (bal3ybco.prj: "xraydb has no L3 edge for H"); data moved to the Ba L3 edge
    placeholder = _cu_group(test_data, shift=5247.0 - 8977.58, label="bal3ybco", bkg_z="H", fft_edge="L3")
    bad_x = dict(_cu_group(test_data, label="bad x"), x="'8900','abc','9000'")
    short_y = dict(_cu_group(test_data, label="short y"))
    short_y["y"] = short_y["y"][:-5]
    code = _cu_group(test_data, label=Perl("system('ls')"))  # Perl code: never run
    no_edge = _cu_group(test_data, label="no edge")  # a falling 'edge': edge step not positive
    no_edge["y"] = [-v for v in no_edge["y"]]
    groups = [good, cr, multi, stddev, placeholder, bad_x, short_y, code, no_edge]
    for i, g in enumerate(groups):
        g["name"] = f"grp{i}"
    return _write_project(tmp_path / ("broken.prj" + (".gz" if gz else "")), groups, gz=gz)


@pytest.mark.parametrize("gz", [False, True])
def test_broken_groups_do_not_lose_the_good_ones(test_data, tmp_path, gz):
    path = _broken_project(test_data, tmp_path, gz)
    with pytest.warns(UserWarning, match="not read"):
        spectra = read_athena(path)
    labels = [s.metadata["label"] for s in spectra]
    assert labels == ["cu010k.dat", "CaZrTi2O7 - Transmission. 4.1 K", "two lines", "stddev none", "bal3ybco",
                      "no edge"]
    by = {s.metadata["label"]: s for s in spectra}
    assert all(len(s) == 612 for s in spectra)
    # the unreadable @stddev is dropped with a warning; the group is kept
    assert by["stddev none"].metadata["channels"] == []
    assert any("@stddev holds 'None'" in w for w in by["stddev none"].metadata["warnings"])
    # H is Athena's placeholder: the absorber comes from the data, said so
    assert (by["bal3ybco"].absorbing_element, by["bal3ybco"].edge) == ("Ba", "L3")
    assert by["bal3ybco"].metadata["element_source"] == "data"
    assert any("'H' is the placeholder" in w for w in by["bal3ybco"].metadata["warnings"])
    assert by["cu010k.dat"].metadata["element_source"] == "header"
    failed = {f.label: str(f.error) for f in spectra.failed}
    assert set(failed) == {"bad x", "short y", "grp7"}
    assert failed["bad x"].startswith(str(path)) and "@x holds 'abc'" in failed["bad x"]
    assert "612 energies but 607 mu values" in failed["short y"]
    assert "'system'" in failed["grp7"] and "not executed" in failed["grp7"]


def test_measure_read_reports_failed_groups_and_exits_partial(test_data, tmp_path, capsys):
    from xasml.cli import main
    from xasml.measure import measure_file

    path = _broken_project(test_data, tmp_path)
    recs = measure_file(path, calibrate="none")
    status = {r["label"]: r["status"] for r in recs}
    assert status == {"cu010k.dat": "ok", "CaZrTi2O7 - Transmission. 4.1 K": "ok", "two lines": "ok",
                      "stddev none": "ok", "bal3ybco": "ok", "no edge": "error", "bad x": "error",
                      "short y": "error", "grp7": "error"}
    ok = [r for r in recs if r["status"] == "ok"]
    for r in ok:
        e0 = 5247.0 if r["label"] == "bal3ybco" else 8977.58
        assert r["e0"] == pytest.approx(e0, abs=0.5) and r["e0_source"] == "Athena bkg_e0", r["label"]
    err = {r["label"]: r["error"] for r in recs if r["status"] == "error"}
    assert "edge step" in err["no edge"] and err["no edge"].startswith(str(path))
    assert main(["measure", "read", "--json", "--calibrate", "none", str(path)]) == 3
    out, stderr = capsys.readouterr()
    js = [json.loads(line) for line in out.splitlines()]
    assert len(js) == 9 and sum(r["status"] == "error" for r in js) == 4
    assert stderr.count("xasml: warning: ") == 4 and "Traceback" not in stderr
    assert main(["measure", "read", "--calibrate", "none", str(path)]) == 3
    out, _ = capsys.readouterr()
    assert "[bad x]  NOT READ\n    warning: " + str(path) in out
    # a project none of whose groups reads is refused (2), naming the file and the first reason
    only_bad = _write_project(tmp_path / "allbad.prj", [dict(_cu_group(test_data), name="a", x="'abc'")])
    assert main(["measure", "read", str(only_bad)]) == 2
    assert "allbad.prj, line 6, field 'x': group 'cu010k.dat': @x holds 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize("element, shift, data_guess", [
    ("P", 2156.2 - 8977.58, ("Y", "L2")),    # P_CAMD.prj: P K read as 'Y L2' from the data alone
    ("S", 2465.0 - 8977.58, ("Nb", "L2")),   # sf6.prj: S K read as 'Nb L2'
])
def test_stored_element_and_edge_win_over_the_data_guess(test_data, tmp_path, element, shift, data_guess):
    from xasml.edges import identify_edge
    from xasml.measure import measure_file

    g = _cu_group(test_data, shift=shift, bkg_z=element, fft_edge="k", label=f"{element} standard")
    path = _write_project(tmp_path / f"{element}_std.prj", [g])
    e0 = g["args"]["bkg_e0"]
    assert identify_edge(e0)[:2] == data_guess  # what the data alone would say
    (s,) = read_athena(path)
    assert (s.absorbing_element, s.edge, s.metadata["element_source"]) == (element, "K", "header")
    assert not any("identified" in w for w in s.metadata["warnings"])
    (rec,) = measure_file(path, calibrate="none")
    assert (rec["absorbing_element"], rec["edge"], rec["element_source"]) == (element, "K", "header")
    assert rec["e0"] == pytest.approx(e0, abs=0.01)
    # with no stored absorber the data decide, and say so
    g["args"].pop("bkg_z"), g["args"].pop("fft_edge")
    (s,) = read_athena(_write_project(tmp_path / "unstated.prj", [g]))
    assert (s.absorbing_element, s.edge, s.metadata["element_source"]) == (*data_guess, "data")
    assert any("identified from the data" in w for w in s.metadata["warnings"])


def test_stored_element_in_other_forms(test_data, tmp_path):
    """bkg_z as an atomic number or a name, the edge in lower case: still the stated absorber."""
    for z in (29, "29", "copper", "cu"):
        (s,) = read_athena(_write_project(tmp_path / "z.prj", [_cu_group(test_data, bkg_z=z, fft_edge="k")]))
        assert (s.absorbing_element, s.edge, s.metadata["element_source"]) == ("Cu", "K", "header"), z


def test_corrupt_gzip_past_the_first_16kb(test_data, tmp_path):
    """Damage beyond what format detection decompresses escaped as zlib.error (fuzz, issue 15)."""
    import zlib

    packed = bytearray(gzip.compress((test_data / "io" / "athena" / "json_unzipped.prj").read_bytes()))
    assert len(packed) > 20000
    for offset in range(17000, len(packed) - 8):  # the first flipped bit that breaks the deflate stream itself
        bad = bytearray(packed)
        bad[offset] ^= 0x01
        try:
            gzip.decompress(bytes(bad))
        except zlib.error:
            break
        except (OSError, EOFError):
            continue
    else:
        pytest.fail("no mutation gave a zlib.error")
    f = tmp_path / "damaged.prj"
    f.write_bytes(bytes(bad))
    assert detect_format(f) == "athena"
    with pytest.raises(SpectrumError, match=r"damaged\.prj: gzip data is corrupt"):
        read_spectrum(f)


def test_chi_groups_are_skipped_and_said(test_data, tmp_path, capsys):
    from xasml.cli import main

    chi = _cu_group(test_data, label="chi of cu010k", is_chi=1, is_xmu=0)
    chi["name"] = "chig"
    path = _write_project(tmp_path / "withchi.prj", [_cu_group(test_data), chi])
    with pytest.warns(UserWarning, match="'chi of cu010k' is not mu"):
        spectra = read_athena(path)
    assert [s.metadata["label"] for s in spectra] == ["cu010k.dat"] and spectra.failed == []
    assert [f.label for f in spectra.skipped] == ["chi of cu010k"]
    assert main(["measure", "read", "--json", "--calibrate", "none", str(path)]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in recs] == ["ok", "skipped"]


def test_array_statement_over_several_lines(test_data, tmp_path):
    """A Perl list written over several lines (one value a line) is one statement, as Perl reads it."""
    g = _cu_group(test_data)
    g["y"] = "\n".join(f"'{v!r}'," for v in g["y"]).rstrip(",")
    g["name"] = "multi"
    (s,) = read_athena(_write_project(tmp_path / "multiline.prj", [g]))
    assert len(s) == 612 and s.metadata["label"] == "cu010k.dat"


def test_a_broken_reference_group_leaves_its_sample_uncalibrated(test_data, tmp_path):
    """calibrate='auto' with a 'Ref' group 300 eV off (not the foil): the sample is reported, uncalibrated with a
    warning; the broken reference group is reported with its reason."""
    from xasml.measure import measure_file

    sample = _cu_group(test_data, reference="refg")
    sample["name"] = "samp"
    ref = _cu_group(test_data, shift=300.0, label="  Ref cu010k.dat", reference="samp")
    ref["name"] = "refg"
    recs = measure_file(_write_project(tmp_path / "badref.prj", [sample, ref]))
    by = {r["label"]: r for r in recs}
    assert by["cu010k.dat"]["status"] == "ok" and by["cu010k.dat"]["calibration"]["method"] == "none"
    assert any("not the expected foil; not calibrated" in w for w in by["cu010k.dat"]["warnings"])
    assert by["Ref cu010k.dat"]["status"] == "error" and "Cu K" in by["Ref cu010k.dat"]["error"]


def test_file_names_state_the_absorber_when_athena_does_not(test_data, tmp_path):
    """No stored bkg_z/fft_edge: the group's label (its data file's name), else the project's name, before the data."""
    g = _cu_group(test_data, label="foil_cu_k.dat")
    for k in ("bkg_z", "fft_edge"):
        g["args"].pop(k)
    (s,) = read_athena(_write_project(tmp_path / "standards.prj", [g]))
    assert (s.absorbing_element, s.edge, s.metadata["element_source"]) == ("Cu", "K", "file name")
    g["args"]["label"] = "foil 10 K"
    (s,) = read_athena(_write_project(tmp_path / "Cu_K_foils.prj", [g]))
    assert (s.absorbing_element, s.edge, s.metadata["element_source"]) == ("Cu", "K", "file name")
    (s,) = read_athena(_write_project(tmp_path / "foils.prj", [g]))
    assert (s.absorbing_element, s.edge, s.metadata["element_source"]) == ("Cu", "K", "data")
