"""The data engine's simulation side: FEFF10 XANES of crystal sites on Dask (``xasml simulate``).

* :mod:`xasml.simulate.feff` - settings presets, symmetry-inequivalent sites, ``feff.inp`` by
  pymatgen's MPXANESSet, one-site FEFF10 runs (feff10-rs) with atomic outputs;
* :mod:`xasml.simulate.sources` - structures from files, the AMCSD (larixite), Materials Project;
* :mod:`xasml.simulate.engine` - the resumable Dask engine with ``sites.csv``, ``failures.csv``,
  ``summary.json``;
* :mod:`xasml.simulate.pack` - compact Parquet datasets of simulation folders.
"""
