"""Materials Project XAS documents and ``xasml fetch mp`` (with a fake MPRester: no network)."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest

import xasml.io.fetch_cli as fetch_cli
from xasml.cli import main
from xasml.errors import MissingExtraError, SpectrumError
from xasml.io.feff import read_feff_compound
from xasml.io.mp import read_mp_xas_document


@pytest.fixture(scope="module")
def mp_dir(test_data):
    return test_data / "io" / "mp"


@pytest.fixture
def doc(mp_dir):
    return json.loads((mp_dir / "mp-1022728_xas_Cu_K.json").read_text())


def test_read_document(mp_dir, doc):
    s = read_mp_xas_document(mp_dir / "mp-1022728_xas_Cu_K.json")
    assert (s.absorbing_element, s.edge, s.material_id, s.kind) == ("Cu", "K", "mp-1022728", "average")
    assert len(s) == 200 and s.absorbing_index is None
    assert s.multiplicity == 3  # Cu3O2: three Cu sites, two inequivalent
    assert s.metadata["spectrum_id"] == "mp-1022728-XANES-Cu-K"
    assert s.metadata["structure"].composition.reduced_formula == "Cu3O2"
    np.testing.assert_allclose(s.mu, doc["spectrum"]["y"])
    # same from the parsed dict; a list gives a list
    assert len(read_mp_xas_document(doc)) == 200
    both = read_mp_xas_document(mp_dir / "xas_docs.json")
    assert [x.material_id for x in both] == ["mp-1022728", "mp-1005792"]
    assert both[1].absorbing_index == 8
    assert read_mp_xas_document({"data": [doc]})[0].material_id == "mp-1022728"  # raw API response


def test_document_matches_the_feff_data_it_was_built_from(shared_data, mp_dir):
    s = read_mp_xas_document(mp_dir / "mp-1022728_xas_Cu_K.json")
    sites = read_feff_compound(shared_data / "omnixas-cu-feff" / "FEFF" / "Cu" / "mp-1022728")
    assert len(sites) == 2
    # the document's spectrum lies between the two site spectra (a weighted average of them)
    lo = np.minimum(*[x.interpolate(s.energy).mu for x in sites])
    hi = np.maximum(*[x.interpolate(s.energy).mu for x in sites])
    inner = slice(5, -5)
    assert np.all(s.mu[inner] >= lo[inner] - 0.02) and np.all(s.mu[inner] <= hi[inner] + 0.02)


@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d["spectrum"].pop("x"), "spectrum.x", "Field required"),
    (lambda d: d.pop("absorbing_element"), "absorbing_element", "Field required"),
    (lambda d: d.update(edge="Q"), "edge", "unknown edge"),
    (lambda d: d.update(absorbing_element="Xx"), "absorbing_element", "unknown element"),
    (lambda d: d["spectrum"]["y"].pop(), "spectrum.y", "spectrum.x has 200 values but spectrum.y has 199"),
    (lambda d: d["spectrum"]["x"].reverse(), "spectrum.x", "strictly increasing"),
    (lambda d: d["spectrum"].update(x="abc"), "spectrum.x", "valid list"),
    (lambda d: d.update(absorbing_element="Fe"), "spectrum.absorbing_element", "differs"),
    (lambda d: d["spectrum"].update(absorbing_index=99), "spectrum.absorbing_index", "out of range"),
])
def test_invalid_documents_name_the_field(tmp_path, doc, mutate, field, message):
    bad = copy.deepcopy(doc)
    mutate(bad)
    p = tmp_path / "doc.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(SpectrumError, match=message) as err:
        read_mp_xas_document(p)
    assert err.value.field == field and err.value.source == str(p)


def test_invalid_json_and_list_position(tmp_path, doc):
    p = tmp_path / "broken.json"
    p.write_text('{"spectrum": [1,\n 2,, 3]}')
    with pytest.raises(SpectrumError, match=r"broken\.json, line 2: invalid JSON"):
        read_mp_xas_document(p)
    bad = copy.deepcopy(doc)
    del bad["spectrum"]["y"]
    with pytest.raises(SpectrumError, match="document 1: Field required"):
        read_mp_xas_document([doc, bad])


class _FakeXAS:
    def __init__(self, docs, calls):
        self.docs, self.calls = docs, calls

    def search(self, **kwargs):
        self.calls.append(kwargs)
        return [d for d in self.docs if d["material_id"] in kwargs["material_ids"]]


class _FakeMPRester:
    """Stands in for mp_api.client.MPRester: returns the recorded documents."""

    docs: list = []
    calls: list = []
    keys: list = []

    def __init__(self, api_key=None):
        self.keys.append(api_key)
        self.materials = type("M", (), {"xas": _FakeXAS(self.docs, self.calls)})()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_fetch_mp_with_fake_rester(monkeypatch, tmp_path, mp_dir, capsys):
    docs = json.loads((mp_dir / "xas_docs.json").read_text())
    _FakeMPRester.docs, _FakeMPRester.calls, _FakeMPRester.keys = docs, [], []
    monkeypatch.setattr(fetch_cli, "_mprester_class", lambda: _FakeMPRester)
    monkeypatch.setenv("MP_API_KEY", "env-key")
    out = tmp_path / "docs"
    rc = main(["fetch", "mp", "--material-ids", "mp-1022728", "mp-1005792", "--element", "cu", "--out", str(out)])
    assert rc == 0
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == ["mp-1005792-XANES-Cu-K-8.json", "mp-1022728-XANES-Cu-K.json"]
    assert "wrote 2 XAS document(s)" in capsys.readouterr().out
    assert _FakeMPRester.keys == ["env-key"]
    call = _FakeMPRester.calls[0]
    assert call["material_ids"] == ["mp-1022728", "mp-1005792"] and str(call["absorbing_element"]) == "Cu"
    s = read_mp_xas_document(out / "mp-1022728-XANES-Cu-K.json")  # what was written reads back
    np.testing.assert_allclose(s.mu, docs[0]["spectrum"]["y"])
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries
    # --api-key wins over the environment
    fetch_cli.fetch_mp(["mp-1022728"], tmp_path / "o2", api_key="cli-key")
    assert _FakeMPRester.keys[-1] == "cli-key"


def test_fetch_errors(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    rc = main(["fetch", "mp", "--material-ids", "mp-1", "--out", str(tmp_path)])
    assert rc == 2 and "no Materials Project API key" in capsys.readouterr().err
    with pytest.raises(fetch_cli.FetchError, match="must look like 'mp-1234'"):
        fetch_cli.fetch_mp(["1234"], tmp_path, api_key="k")
    # missing extra: mp_api cannot be imported
    monkeypatch.setitem(sys.modules, "mp_api", None)
    monkeypatch.setitem(sys.modules, "mp_api.client", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'xasml\[mp\]'"):
        fetch_cli.fetch_mp(["mp-1"], tmp_path, api_key="k")

    class Offline(_FakeMPRester):
        def __init__(self, api_key=None):
            raise ConnectionError("Failed to resolve 'api.materialsproject.org'")

    monkeypatch.setattr(fetch_cli, "_mprester_class", lambda: Offline)
    rc = main(["fetch", "mp", "--material-ids", "mp-1", "--api-key", "k", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "Materials Project request failed (ConnectionError" in err and "network" in err
    _FakeMPRester.docs = []
    monkeypatch.setattr(fetch_cli, "_mprester_class", lambda: _FakeMPRester)
    with pytest.raises(fetch_cli.FetchError, match="no XAS documents for mp-1"):
        fetch_cli.fetch_mp(["mp-1"], tmp_path, api_key="k")


# --------------------------------------------------------------------------------------------
# rfxas experiment.csv (measured spectra with coordination labels)
# --------------------------------------------------------------------------------------------

def test_rfxas_sample(test_data):
    from xasml.io import read_rfxas_csv
    from xasml.edges import edge_energy

    rows = read_rfxas_csv(test_data / "io" / "rfxas_sample.csv")
    assert [lab["xas_id"] for _, lab in rows] == ["mp-25620-V", "mp-1692-Cu", "mp-306-B", "mp-25620-V"]
    cuo, lab = rows[1]
    assert (cuo.absorbing_element, cuo.edge, cuo.material_id, len(cuo)) == ("Cu", "K", "mp-1692", 200)
    assert lab["coordination_number"] == 4 and lab["cn_label"] == "CN_4" and lab["formula"] == "CuO"
    assert cuo.mu.min() == 0.0 and cuo.mu.max() == 1.0  # min-max scaled
    assert cuo.energy[0] == pytest.approx(edge_energy("Cu") - 5.0, abs=0.5)  # grid starts 5 eV below the edge
    np.testing.assert_allclose(np.diff(cuo.energy), np.diff(cuo.energy)[0], rtol=1e-6)  # uniform grid
    assert sum(lab["cn_weights"].values()) == pytest.approx(1.0, abs=1e-6)
    assert rows[2][0].metadata["technique"] == "EELS" and rows[0][0].metadata["technique"] == "XAS"
    v2o5 = rows[0][1]
    assert v2o5["coordination_number"] == 5 and "square pyramidal CN_5" in v2o5["environment_weights"]


def test_rfxas_full_file(shared_data):
    from xasml.io import read_rfxas_csv

    rows = read_rfxas_csv(shared_data / "experimental" / "rfxas" / "experiment.csv")
    assert len(rows) == 30
    assert {s.absorbing_element for s, _ in rows} >= {"V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"}
    assert all(len(s) == 200 and lab["coordination_number"] in lab["cn_present"] for s, lab in rows)
    assert sum(s.metadata["technique"] == "EELS" for s, _ in rows) == 5


def test_rfxas_errors(tmp_path, test_data):
    from xasml.io import read_rfxas_csv

    text = (test_data / "io" / "rfxas_sample.csv").read_text().splitlines()
    p = tmp_path / "no_energy.csv"
    p.write_text("\n".join([text[0].replace("x_axis_energy", "energy_axis")] + text[1:]) + "\n")
    with pytest.raises(SpectrumError, match="no_energy.csv.*missing column.*x_axis_energy"):
        read_rfxas_csv(p)
    p = tmp_path / "broken.csv"
    p.write_text("\n".join(text[:2] + [text[2].replace("(8973", "(oops, 8973", 1)]) + "\n")
    with pytest.raises(SpectrumError, match=r"broken\.csv, line 3, field 'x_axis_energy'"):
        read_rfxas_csv(p)


def test_fetch_accepts_pydantic_documents(monkeypatch, tmp_path, mp_dir):
    """mp_api returns pydantic models (emmet XASDoc), not dicts: they are dumped to plain JSON."""
    from xasml.io.mp import MPXASDocument

    docs = json.loads((mp_dir / "xas_docs.json").read_text())

    class ModelXAS(_FakeXAS):
        def search(self, **kwargs):
            return [MPXASDocument.model_validate(d) for d in super().search(**kwargs)]

    class Rester(_FakeMPRester):
        def __init__(self, api_key=None):
            self.materials = type("M", (), {"xas": ModelXAS(docs, [])})()

    monkeypatch.setattr(fetch_cli, "_mprester_class", lambda: Rester)
    files = fetch_cli.fetch_mp(["mp-1005792"], tmp_path, api_key="k")
    s = read_mp_xas_document(files[0])
    assert s.absorbing_index == 8 and s.material_id == "mp-1005792"
