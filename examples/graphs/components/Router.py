"""A ROUTER for Seldon's Python wrapper: picks a child by the first feature.

Served by `seldon-core-microservice Router --service-type ROUTER`; the executor calls its /route
(REST) or Router/Route (gRPC) and sends the request on to the child whose index this returns:
0 when the first feature of the first row is below the threshold, else 1. (A router may also return
-1, every child, or -2, none: the request itself is then the answer.)
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)


class Router:
    def __init__(self, threshold=10.0):
        self.threshold = float(threshold)
        logger.info("Router: child 0 below %s, else child 1", self.threshold)

    def route(self, features, feature_names=None):
        first = float(np.asarray(features, dtype=float).reshape(-1)[0])
        return 0 if first < self.threshold else 1
