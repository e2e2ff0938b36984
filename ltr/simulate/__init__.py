"""Search-log simulator with known ground truth (relevance, examination, preferences)."""

from ltr.simulate.catalog import augment_catalog
from ltr.simulate.config import SimulationConfig
from ltr.simulate.simulator import SimulationResult, examination_curve, simulate

__all__ = ["SimulationConfig", "SimulationResult", "augment_catalog", "examination_curve",
           "simulate"]
