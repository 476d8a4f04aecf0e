"""xasml's XYZ reader against pymatgen's: the same molecules, stricter on broken files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xasml.errors import DataError
from xasml.io.structures import read_xyz


def test_same_molecules_as_pymatgen(shared_data):
    from pymatgen.core import Molecule

    files = sorted((shared_data / "xanesnet-fe" / "preconv" / "xyz_train").glob("*.xyz"))[:40]
    assert files
    for f in files:
        ours = read_xyz(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = Molecule.from_file(f)
        assert list(ours.numbers) == [site.specie.Z for site in theirs]
        np.testing.assert_allclose(ours.positions, theirs.cart_coords)


def test_refuses_what_pymatgen_lets_through(tmp_path):
    nan = tmp_path / "nan.xyz"
    nan.write_text("2\nx\n26 0 0 0\n8 nan 0 0\n")
    short = tmp_path / "short.xyz"
    short.write_text("3\nx\n26 0 0 0\n8 1.9 0 0\n")
    with pytest.raises(DataError, match="nan.xyz: atom 1 has non-finite"):
        read_xyz(nan)
    with pytest.raises(DataError, match="short.xyz: the count line says 3 atoms but 2"):
        read_xyz(short)
