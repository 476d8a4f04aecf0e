"""Models, all behind one estimator contract (:class:`xasml.models.base.XasmlEstimator`)."""

from xasml.models.base import XasmlEstimator, available_models, get_model, load_estimator, register_model

__all__ = ["XasmlEstimator", "register_model", "get_model", "available_models", "load_estimator"]
