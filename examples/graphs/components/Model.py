"""A MODEL for Seldon's Python wrapper: a small deterministic linear model, y = weight * sum(x) + bias.

Served by `seldon-core-microservice Model --service-type MODEL`; the executor calls its /predict
(REST) or Model/Predict (gRPC). Each graph node gets its own weight and bias from the graph's
parameters, so the answers show which model served a record. Nothing is downloaded.

For the error demo: a negative feature is refused with SeldonMicroserviceException, which the wrapper
answers with HTTP 400 (a client error, not retried by the executor).
"""
import logging

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException

logger = logging.getLogger(__name__)


class Model:
    def __init__(self, weight=1.0, bias=0.0):
        self.weight = float(weight)
        self.bias = float(bias)
        self.class_names = ["y"]
        logger.info("Model: y = %s * sum(x) + %s", self.weight, self.bias)

    def predict(self, X, features_names=None):
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if (X < 0).any():
            raise SeldonMicroserviceException("Model: negative features are not allowed", status_code=400)
        return self.weight * X.sum(axis=1, keepdims=True) + self.bias
