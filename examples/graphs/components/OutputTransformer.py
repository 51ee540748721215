"""An OUTPUT_TRANSFORMER for Seldon's Python wrapper: turns a score into a probability.

Served by `seldon-core-microservice OutputTransformer --service-type TRANSFORMER` (the wrapper's
--service-type has no OUTPUT_TRANSFORMER choice, and serves every method whatever the type); the
executor calls its /transform-output (REST) or Transformer/TransformOutput (gRPC) with the answer of
the node's child, on the way back.
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)


class OutputTransformer:
    def __init__(self, centre=5.0):
        self.centre = float(centre)
        self.class_names = ["probability"]

    def transform_output(self, X, features_names=None):
        X = np.asarray(X, dtype=float)
        return np.round(1.0 / (1.0 + np.exp(-(X - self.centre))), 6)
