"""Features: the spec, derived features, history features, splits and preprocessing."""

from ltr.features.preprocess import Preprocessor
from ltr.features.spec import FeatureSpec

__all__ = ["FeatureSpec", "Preprocessor"]
