"""A COMBINER for Seldon's Python wrapper: the mean of its children's answers.

Served by `seldon-core-microservice Combiner --service-type COMBINER`; the executor walks every child
of the node with the same request, then calls /aggregate (REST: a JSON array of the children's whole
answers) or Combiner/Aggregate (gRPC: a SeldonMessageList), and the wrapper hands this method the
children's data, one array per child.

For the error demo: a child's answer of `fail_above` or more raises an exception here, which the
wrapper answers with HTTP 500 (gRPC: UNKNOWN), so the executor's error record names this node.
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)


class Combiner:
    def __init__(self, fail_above=1000.0):
        self.fail_above = float(fail_above)
        self.class_names = ["mean"]

    def aggregate(self, features_list, feature_names_list=None):
        answers = [np.asarray(f, dtype=float) for f in features_list]
        if any((a >= self.fail_above).any() for a in answers):
            raise ValueError(f"combiner: an answer is {self.fail_above} or more, refusing to average it")
        return np.mean(answers, axis=0)
