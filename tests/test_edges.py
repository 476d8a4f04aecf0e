"""xasml.edges: the one place for edge facts and the absorber rule every reader follows (option, what the
file states, the file name, then the data), on real spectra."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xasml.edges import identify_edge, resolve_absorber, stated_edge, stated_element
from xasml.errors import SpectrumError
from xasml.io.xdi import read_xdi


@pytest.mark.parametrize("value, symbol", [
    ("Fe", "Fe"), ("fe", "Fe"), ("FE", "Fe"), (26, "Fe"), ("26", "Fe"), (26.0, "Fe"), ("iron", "Fe"),
    ("15: P", "P"), ("", None), ("undef", None), (None, None), ("Xx", None), (0, None), (120, None), (True, None),
])
def test_stated_element_forms(value, symbol):
    assert stated_element(value) == symbol


@pytest.mark.parametrize("value, edge", [("K", "K"), ("k", "K"), ("l3", "L3"), ("L3-edge", "L3"), ("Kedge", "K"),
                                         ("L", "L3"), ("x", None), (3, None), (None, None)])
def test_stated_edge_forms(value, edge):
    assert stated_edge(value) == edge


def _fe2o3(test_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_xdi(test_data / "measure" / "Fe2O3_rt_01.xdi")


def test_the_order_option_header_file_name_data(test_data):
    s = _fe2o3(test_data)
    e, mu = s.energy, s.mu
    a = resolve_absorber("f", element="Fe", edge="K", stated_element_value="Fe", stated_edge_value="K",
                         filename="Cu_K.dat", energy=e, mu=mu)
    assert (a.element, a.edge, a.element_source, a.warnings) == ("Fe", "K", "option", [])
    a = resolve_absorber("f", stated_element_value="Fe", stated_edge_value="K", filename="Cu_K.dat", energy=e, mu=mu)
    assert (a.element, a.element_source) == ("Fe", "header")
    a = resolve_absorber("f", filename="hematite_fe_k.dat", energy=e, mu=mu)
    assert (a.element, a.edge, a.element_source, a.edge_source) == ("Fe", "K", "file name", "file name")
    a = resolve_absorber("f", filename="scan.dat", energy=e, mu=mu)
    assert (a.element, a.edge, a.element_source) == ("Fe", "K", "data")
    assert "identified from the data" in a.warnings[0]
    # the header's element with the edge from the data (restricted to that element)
    a = resolve_absorber("f", stated_element_value="Fe", energy=e, mu=mu)
    assert (a.element, a.edge, a.element_source, a.edge_source) == ("Fe", "K", "header", "data")


def test_a_contradicting_option_is_used_and_said(test_data):
    s = _fe2o3(test_data)
    a = resolve_absorber("f", element="Cu", stated_element_value="Fe", stated_edge_value="K", energy=s.energy,
                         mu=s.mu)
    assert a.element == "Cu" and a.element_source == "option"
    assert a.warnings == ["the element Cu was given but the header say Fe; Cu used"]


def test_file_name_states_an_l3_edge(shared_data):
    """sno2_l3.dat (SnO2, Sn L3): the data alone say In L2; the file name says Sn L3."""
    from xasml.io.columns import read_columns

    f = shared_data / "experimental" / "beamline-files" / "sno2_l3.dat"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_columns(f, absorbing_element="Sn", edge="L3")
    a = resolve_absorber(str(f), filename=f.name, energy=s.energy, mu=s.mu)
    assert (a.element, a.edge, a.element_source) == ("Sn", "L3", "file name") and a.warnings == []
    b = resolve_absorber(str(f), filename="scan.dat", energy=s.energy, mu=s.mu)
    assert (b.element, b.edge, b.element_source) == ("In", "L2", "data")


def test_unusable_statements_are_ignored_with_a_warning(test_data):
    s = _fe2o3(test_data)
    a = resolve_absorber("f", stated_element_value="H", stated_edge_value="L3", placeholder_elements=("H",),
                         energy=s.energy, mu=s.mu)
    assert (a.element, a.edge, a.element_source) == ("Fe", "K", "data") and "placeholder" in a.warnings[0]
    assert "edge L3 fits no element near the data" in a.warnings[1]
    # Li has no L3 edge: the edge is dropped, and Li fits no edge near the Fe K data either
    with pytest.raises(SpectrumError, match=r"^f, field 'absorbing_element': .*not identifiable"):
        resolve_absorber("f", stated_element_value="Li", stated_edge_value="L3", energy=s.energy, mu=s.mu)
    a = resolve_absorber("f", stated_element_value="Unobtainium", energy=s.energy, mu=s.mu)
    assert (a.element, a.element_source) == ("Fe", "data") and "names no element" in a.warnings[0]


def test_errors_name_the_file():
    e = np.linspace(7000.0, 7300.0, 100)
    mu = np.tanh((e - 7112.0) / 3.0)
    with pytest.raises(SpectrumError, match=r"^scan\.dat, field 'edge': unknown edge 'Q'"):
        resolve_absorber("scan.dat", edge="Q", energy=e, mu=mu)
    with pytest.raises(SpectrumError, match=r"^scan\.dat, field 'absorbing_element': .*not identifiable"):
        resolve_absorber("scan.dat", stated_element_value="Fe", stated_edge_value=None, energy=e + 5000, mu=mu)
    assert identify_edge(7112.0)[:2] == ("Fe", "K")
