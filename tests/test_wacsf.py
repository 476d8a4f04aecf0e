"""wACSF descriptor: against a loop-by-loop evaluation of the paper's equations, periodic versus
molecular consistency, invariances, and the Gastegger parameterisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xasml.descriptors.wacsf import (WACSF, cosine_cutoff, gastegger_parameters, site_environment,
                                     structure_environment, wacsf_reference)
from xasml.errors import DataError

CU = Path(__file__).resolve().parent / "data" / "forward" / "cu"


def _octahedron(d=2.0):
    """Fe with 6 O at distance d along the axes, plus one C further out (hand-made)."""
    pos = [[0, 0, 0]] + [list(v) for v in (d * np.vstack([np.eye(3), -np.eye(3)]))] + [[2.9, 1.1, 0.4]]
    return np.array([26, 8, 8, 8, 8, 8, 8, 6]), np.array(pos, dtype=float)


def _cu_structure(name="mp-361"):
    from pymatgen.core import Structure

    return Structure.from_file(str(CU / name / "POSCAR"))


def test_paper_layout_and_g2_centres():
    w = WACSF()
    assert w.n_features == 97 == len(w.feature_names)
    # shifted G2 centres quoted in the paper (§III.C): 1.47, 1.63 and 1.8 Å
    for mu in (1.47, 1.63, 1.79):
        assert np.min(np.abs(w.g2_mu - mu)) < 0.005
    assert np.allclose(w.g2_eta, w.g2_eta[0])
    # centred G4: mu = 0, eta = 1 / (2 r^2) on 8 radii (64 / (2 lambdas * 4 zetas))
    assert w.g4_eta.size == 8 and np.all(w.g4_mu == 0)
    eta, mu = gastegger_parameters(8, 0.0, 6.0, "centred")
    assert np.allclose(eta, 1 / (2 * np.linspace(0.5, 5.5, 8) ** 2))


def test_cutoff_function():
    r = np.array([0.0, 3.0, 6.0, 7.0])
    assert np.allclose(cosine_cutoff(r, 6.0), [1.0, 0.5, 0.0, 0.0])


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 2e-5)])
def test_against_direct_evaluation_handmade(dtype, rtol):
    z, pos = _octahedron()
    w = WACSF(n_g2=8, n_g4=16, zetas=(1, 2, 4, 8), dtype=dtype)
    ref = wacsf_reference(w, z, pos, 0)
    got = w.molecule(z, pos, 0)
    assert np.allclose(got, ref, rtol=rtol, atol=1e-12)
    # G1 is the sum of cutoffs of the 7 neighbours
    d = np.linalg.norm(pos[1:], axis=1)
    assert got[0] == pytest.approx(np.sum(0.5 * (np.cos(np.pi * d / 6) + 1)))


def test_against_direct_evaluation_shifted_g4_and_non_integer_zeta():
    z, pos = _octahedron(1.9)
    w = WACSF(n_g2=4, n_g4=6, zetas=(1.0, 2.5, 3.0), lambdas=(1.0,), g4_scheme="shifted", dtype="float64")
    assert np.allclose(w.molecule(z, pos, 0), wacsf_reference(w, z, pos, 0), rtol=1e-10)


def test_against_direct_evaluation_real_fe_complex(shared_data):
    from xasml.io.structures import read_xyz

    files = sorted((shared_data / "xanesnet-fe" / "preconv" / "xyz_train").glob("*.xyz"))[:2]
    w = WACSF(n_g2=6, n_g4=16)
    for f in files:
        mol = read_xyz(f)
        assert mol.numbers[0] == 26 and np.allclose(mol.positions[0], 0)
        assert np.allclose(w.molecule(mol.numbers, mol.positions), wacsf_reference(w, mol.numbers, mol.positions),
                           rtol=2e-5, atol=1e-9)


def test_batch_equals_single_and_order_independent(shared_data):
    from xasml.io.structures import read_xyz

    files = sorted((shared_data / "xanesnet-fe" / "preconv" / "xyz_train").glob("*.xyz"))[:40]
    mols = [read_xyz(f) for f in files]
    w = WACSF()
    X = w.molecules([(m.numbers, m.positions) for m in mols])
    for i in (0, 17, 39):
        assert np.allclose(X[i], w.molecule(mols[i].numbers, mols[i].positions), rtol=1e-6)
    # permuting the neighbour order does not change the descriptor
    m = mols[3]
    p = np.r_[0, 1 + np.random.default_rng(0).permutation(len(m) - 1)]
    assert np.allclose(w.molecule(m.numbers[p], m.positions[p]), X[3], rtol=1e-5)


def test_rotation_translation_invariance():
    z, pos = _octahedron()
    from scipy.spatial.transform import Rotation

    R = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    w = WACSF(dtype="float64")
    a = w.molecule(z, pos)
    b = w.molecule(z, pos @ R.T + np.array([5.0, -2.0, 1.0]))
    assert np.allclose(a, b, rtol=1e-10)


def test_atoms_beyond_cutoff_do_not_contribute():
    z, pos = _octahedron()
    w = WACSF()
    far = np.vstack([pos, [[0, 0, 6.5]]])
    assert np.allclose(w.molecule(np.r_[z, 53], far), w.molecule(z, pos))


def test_periodic_matches_large_cluster_cut_from_crystal():
    """The site descriptor of a crystal equals that of a finite cluster (radius 9 Å) cut from it."""
    w = WACSF(dtype="float64")
    for name in ("mp-361", "mp-1079516"):
        s = _cu_structure(name)
        idx = next(i for i, site in enumerate(s) if site.specie.symbol == "Cu")
        per = w.structure(s, idx)
        centre = s[idx].coords
        sphere = s.get_sites_in_sphere(centre, 9.0)
        # absorber first, then every other atom of the cluster
        sphere.sort(key=lambda nb: np.linalg.norm(nb.coords - centre))
        assert np.linalg.norm(sphere[0].coords - centre) < 1e-8
        z = np.array([nb.specie.Z for nb in sphere])
        pos = np.array([nb.coords for nb in sphere])
        mol = w.molecule(z, pos, 0)
        assert np.allclose(per, mol, rtol=1e-10, atol=1e-12)
        assert per[0] > 0 and np.all(np.isfinite(per))


def test_structure_environment_counts_images():
    # Cu2O (mp-361): each Cu has 2 O at ~1.86 Å and 12 Cu at ~3.03 Å
    s = _cu_structure("mp-361")
    idx = next(i for i, site in enumerate(s) if site.specie.symbol == "Cu")
    z, rel = structure_environment(s, idx, 3.1)
    d = np.linalg.norm(rel, axis=1)
    assert sorted(z.tolist()) == [8, 8] + [29] * 12
    assert np.allclose(np.sort(d)[:2], 1.857, atol=0.01)


def test_errors_name_the_problem():
    z, pos = _octahedron()
    with pytest.raises(DataError, match="out of range"):
        site_environment(z, pos, 42)
    with pytest.raises(DataError, match="coincides"):
        site_environment(np.r_[z, 8], np.vstack([pos, [[0, 0, 0]]]), 0)
    with pytest.raises(ValueError, match="multiple"):
        WACSF(n_g4=10)
    with pytest.raises(DataError, match="unknown"):
        WACSF.from_dict({"n_g2": 4, "bogus": 1})
    assert WACSF.from_dict(WACSF(n_g2=4, n_g4=8).to_dict()).n_features == 13
