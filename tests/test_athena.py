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
    with pytest.raises(SpectrumError, match=r"deep\.prj, line 3: Perl list nested more than 50"):
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
