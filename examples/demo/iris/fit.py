"""Fits the demo's iris classifier with scikit-learn and writes model.json beside this file.

    python3 fit.py   (with scikit-learn installed; examples/mlserver/run.sh makes a venv that has it)

The coefficients are all the Go model (model.go) needs; the checks are rows and the probabilities
scikit-learn gives them, which the Go model's test reproduces.
"""
import json
import pathlib

import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris()
model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
rows = [0, 1, 50, 51, 70, 83, 100, 106, 119, 133, 149]
out = {
    "about": "LogisticRegression(max_iter=1000) fitted on sklearn.datasets.load_iris() by scikit-learn "
    + sklearn.__version__
    + " (examples/demo/iris/fit.py)",
    "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    "classes": [str(c) for c in iris.target_names],
    "coef": model.coef_.tolist(),
    "intercept": model.intercept_.tolist(),
    "checks": [
        {"x": iris.data[i].tolist(), "proba": model.predict_proba(iris.data[i : i + 1])[0].tolist()}
        for i in rows
    ],
}
# One key a line, each check on a line of its own: short enough to read, exact enough to reproduce.
lines = []
for key, value in out.items():
    if key == "checks":
        rows = ",\n  ".join(json.dumps(c) for c in value)
        lines.append(f' "{key}": [\n  {rows}\n ]')
    else:
        lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
path = pathlib.Path(__file__).with_name("model.json")
path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
print("wrote", path, "with", out["about"])
