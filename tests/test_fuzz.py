"""Property-based tests: mutants of the real sample files in tests/data give either a clean xasml
error that names the file (one line, no other exception type) or a valid spectrum / structure.

The number of examples is bounded (``XASML_FUZZ_EXAMPLES``, default 60 per reader) and the
examples are the same on every run, so CI stays fast and stable; set it higher, with
``XASML_FUZZ_RANDOM=1`` for fresh examples, for a longer fuzzing session. Every mutant is written to a file and read
through the public reader, exactly as a user's file would be.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xasml.errors import XasmlError

DATA = Path(__file__).parent / "data"
XMU = next(iter(sorted((DATA / "feff" / "omnixas").glob("*/FEFF-XANES/*/xmu.dat"))))
MP_DOC = DATA / "io" / "mp" / "mp-1022728_xas_Cu_K.json"
POSCAR = DATA / "forward" / "cu" / "mp-1023125" / "POSCAR"
CIF = DATA / "feff" / "amcsd-10177" / "structure.cif"

N = int(os.environ.get("XASML_FUZZ_EXAMPLES", "60"))
#: CI runs the same examples every time; XASML_FUZZ_RANDOM=1 draws new ones (a fuzzing session)
FUZZ = settings(max_examples=N, deadline=None, derandomize=not os.environ.get("XASML_FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: what each test saw, for the report (printed with ``-s``)
TALLY: dict[str, dict[str, int]] = {}

TOKENS = ["nan", "NaN", "inf", "-inf", "0", "-0", "-1", "1e308", "1e-308", "99999999999999999999", "abc", "",
          "1,5", "Z=0", "Z=999", "\u00e9", "\x00", "9" * 5000, "Abs Z=29 K shell", "#", "1 2 3 4 5 6 7"]


def _xyz_from_poscar() -> str:
    """A real Cu environment (MP structure mp-1023125, CC-BY 4.0) as an XANESNET-style XYZ: atomic
    numbers in column 1, the absorber first at the origin, neighbours within 4 Å."""
    from pymatgen.core import Structure

    s = Structure.from_file(str(POSCAR))
    i = next(i for i, site in enumerate(s) if site.specie.symbol == "Cu")
    lines = [f"29 0.0 0.0 0.0"]
    for n in sorted(s.get_neighbors(s[i], 4.0), key=lambda n: n.nn_distance):
        d = n.coords - s[i].coords
        lines.append(f"{n.specie.Z} {d[0]:.6f} {d[1]:.6f} {d[2]:.6f}")
    return f"{len(lines)}\nfrom {POSCAR.parent.name}/POSCAR\n" + "\n".join(lines) + "\n"


@st.composite
def text_mutant(draw, text: str) -> str:
    """Apply 1-3 line/token/byte-level mutations to ``text``."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            lines = [""]
        op = draw(st.sampled_from(["token", "token", "delete", "duplicate", "swap", "truncate", "insert", "long"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "token":
            parts = lines[i].split()
            if parts:
                j = draw(st.integers(0, len(parts) - 1))
                parts[j] = draw(st.sampled_from(TOKENS) | st.text(max_size=8))
                lines[i] = " ".join(parts)
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines = lines[:i]
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=40)))
        else:  # a very long line
            lines[i] = lines[i] + " " + draw(st.sampled_from(TOKENS[:6] + ["Abs Z=29", "x"])) * draw(
                st.integers(100, 5000))
    return "\n".join(lines) + "\n"


def _write(data: str | bytes, name: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix="xasml-fuzz-"))
    p = d / name
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8", errors="surrogatepass")
    else:
        p.write_bytes(data)
    return p


def _clean_error(exc: XasmlError, path: Path) -> None:
    msg = str(exc)
    assert str(path) in msg, f"error does not name the file: {msg[:300]}"
    assert "\n" not in msg.strip(), f"error is not one line: {msg[:300]}"
    assert len(msg) < 2000, f"error is {len(msg)} characters long"


def _count(test: str, outcome: str) -> None:
    TALLY.setdefault(test, {}).setdefault(outcome, 0)
    TALLY[test][outcome] += 1


def _check_spectrum(s) -> None:
    e, mu = np.asarray(s.energy), np.asarray(s.mu)
    assert len(e) >= 2 and e.shape == mu.shape
    assert np.isfinite(e).all() and np.isfinite(mu).all()
    assert np.all(np.diff(e) > 0)


def _check_structure(s) -> None:
    m = np.asarray(s.lattice.matrix)
    assert len(s) > 0 and np.isfinite(m).all() and abs(np.linalg.det(m)) > 1e-3
    assert np.isfinite(s.frac_coords).all()


@FUZZ
@given(st.data())
def test_fuzz_feff_xmu(data):
    from xasml.io.feff import read_feff_xmu

    p = _write(data.draw(text_mutant(XMU.read_text())), "xmu.dat")
    try:
        s = read_feff_xmu(p)
    except XasmlError as exc:
        _clean_error(exc, p)
        _count("feff", "clean error")
        return
    _check_spectrum(s)
    assert s.absorbing_element and s.edge
    _count("feff", "valid spectrum")


def _json_mutations(doc):
    """Structured mutations of a parsed MP document: replace a value somewhere with an odd one."""
    odd = st.sampled_from([None, float("nan"), float("inf"), -1, 0, 10**30, "", "Xx", [], {}, [[[]]], True,
                           "L2,3", "K", [1.0], {"element": "Cu"}])

    @st.composite
    def mutate(draw):
        d = json.loads(json.dumps(doc))
        for _ in range(draw(st.integers(1, 3))):
            node, key = d, None
            for _depth in range(draw(st.integers(1, 6))):
                if isinstance(node, dict) and node:
                    key = draw(st.sampled_from(sorted(node)))
                elif isinstance(node, list) and node:
                    key = draw(st.integers(0, len(node) - 1))
                else:
                    key = None
                    break
                if draw(st.booleans()) and isinstance(node[key], (dict, list)) and node[key]:
                    node, key = node[key], None  # go one level deeper and pick again
                else:
                    break
            if key is not None:
                if draw(st.integers(0, 5)) == 0 and isinstance(node, dict):
                    del node[key]
                else:
                    node[key] = json.loads(json.dumps(draw(odd)))  # a fresh copy: no shared objects
        return json.dumps(d, allow_nan=True)

    return mutate()


@FUZZ
@given(st.data())
def test_fuzz_mp_json(data):
    from xasml.io.mp import read_mp_xas_document

    text = MP_DOC.read_text()
    if data.draw(st.booleans()):
        mutant = data.draw(_json_mutations(json.loads(text)))
    else:
        mutant = data.draw(text_mutant(text))
    raw = mutant.encode("utf-8", errors="surrogatepass")
    if data.draw(st.integers(0, 9)) == 0:  # invalid UTF-8 somewhere
        k = data.draw(st.integers(0, len(raw)))
        raw = raw[:k] + b"\xff\xfe" + raw[k:]
    p = _write(raw, "doc.json")
    try:
        got = read_mp_xas_document(p)
    except XasmlError as exc:
        _clean_error(exc, p)
        _count("mp", "clean error")
        return
    for s in got if isinstance(got, list) else [got]:
        _check_spectrum(s)
        struct = s.metadata.get("structure")
        if struct is not None:
            _check_structure(struct)
    _count("mp", "valid spectrum")


@FUZZ
@given(st.data())
def test_fuzz_xyz_and_forward_predict(data):
    """The reader and the whole ``forward predict`` path (descriptor + network) on XYZ mutants."""
    from xasml.forward.predict import SHIPPED

    if not (SHIPPED / "Cu" / "forward.json").exists():
        pytest.skip("shipped Cu model not present")
    p = _write(data.draw(text_mutant(_xyz_from_poscar())), "site.xyz")
    model = _model("Cu")
    try:
        r = model.predict_file(p)
    except XasmlError as exc:
        _clean_error(exc, p)
        _count("xyz", "clean error")
        return
    assert len(r["mu"]) == len(r["energy"]) and np.isfinite(r["mu"]).all()
    _count("xyz", "valid spectrum")


_MODELS: dict = {}


def _model(el: str):
    """The shipped forward model of ``el``, loaded once."""
    from xasml.forward.predict import SHIPPED, ForwardModel

    if el not in _MODELS:
        _MODELS[el] = ForwardModel.load(SHIPPED / el)
    return _MODELS[el]


@pytest.mark.parametrize("sample,name", [(POSCAR, "POSCAR"), (CIF, "structure.cif")])
def test_fuzz_structures(sample, name):
    """POSCAR and CIF mutants: ``read_structure`` gives a clean error or a finite, non-degenerate
    structure, and ``forward predict`` on it (symmetry search, descriptor, network) never crashes."""
    from xasml.io.structures import read_structure

    @FUZZ
    @given(st.data())
    def run(data):
        p = _write(data.draw(text_mutant(sample.read_text())), name)
        try:
            s = read_structure(p)
        except XasmlError as exc:
            _clean_error(exc, p)
            _count(name, "clean error")
            return
        _check_structure(s)
        if "Cu" in {e.symbol for e in s.composition.elements} and s.is_ordered and len(s) <= 64:
            try:
                r = _model("Cu").predict_file(p)
                assert np.isfinite(r["mu"]).all()
            except XasmlError as exc:
                _clean_error(exc, p)
        _count(name, "valid structure")

    run()


def teardown_module(module):
    if TALLY:
        print("\nfuzz tally:", json.dumps(TALLY, sort_keys=True))


@pytest.mark.parametrize("which", ["forward", "local"])
def test_fuzz_model_folder_json(which, tmp_path):
    """Tampered ``estimator.json`` / ``forward.json`` / ``bundle.json`` of the shipped Cu forward model and
    CN bundle: loading gives a clean error naming the folder's file, or a model whose prediction is finite."""
    import shutil

    from xasml.forward.predict import SHIPPED, ForwardModel
    from xasml.models.bundle import SHIPPED_DIR, ModelBundle

    src = SHIPPED / "Cu" if which == "forward" else SHIPPED_DIR / "Cu" / "cn"
    files = (["estimator.json", "forward.json"] if which == "forward"
             else ["estimator/estimator.json", "bundle.json"])
    docs = {f: json.loads((src / f).read_text()) for f in files}
    xyz = tmp_path / "cu.xyz"
    xyz.write_text(_xyz_from_poscar())

    @FUZZ
    @given(st.data())
    def run(data):
        d = Path(tempfile.mkdtemp(prefix="xasml-fuzz-model-")) / src.name
        shutil.copytree(src, d)
        f = data.draw(st.sampled_from(files))
        (d / f).write_text(data.draw(_json_mutations(docs[f])))
        try:
            if which == "forward":
                out = ForwardModel.load(d).predict_file(xyz)["mu"]
            else:
                out = [r["prediction"] for r in ModelBundle.load(d).predict([_xmu_spectrum()])]
        except XasmlError as exc:
            msg = str(exc)
            assert (str(d) in msg or str(xyz) in msg or str(XMU) in msg) and "\n" not in msg.strip(), msg[:300]
            _count(f"model-{which}", "clean error")
            return
        assert np.isfinite(out).all()
        _count(f"model-{which}", "valid model")

    run()


def _xmu_spectrum():
    from xasml.io.feff import read_feff_xmu

    return read_feff_xmu(XMU)
