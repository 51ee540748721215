"""An input TRANSFORMER for Seldon's Python wrapper: scales every feature.

Served by `seldon-core-microservice Transformer --service-type TRANSFORMER`; the executor calls its
/transform-input (REST) or Transformer/TransformInput (gRPC) with the record, and passes the whole
answer on to the next node.
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)


class Transformer:
    def __init__(self, scale=2.0):
        # Graph parameters (PREDICTIVE_UNIT_PARAMETERS, --parameters) arrive as keyword arguments.
        self.scale = float(scale)
        logger.info("Transformer: features times %s", self.scale)

    def transform_input(self, X, features_names=None):
        return np.asarray(X, dtype=float) * self.scale
