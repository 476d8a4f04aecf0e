"""The topology indicator (Andrejevic et al., Adv. Mater. 34, 2204113 (2022)): run, predict, report."""

from xasml.topology.predict import TopologyPredictor, predict_topology
from xasml.topology.run import BUNDLED_DATASET, BUNDLED_MODEL, run_topology

__all__ = ["BUNDLED_DATASET", "BUNDLED_MODEL", "TopologyPredictor", "predict_topology", "run_topology"]
