"""Exports scikit-learn's `diabetes` regression data set (442 patients, 10 features, a
disease-progression target) once, for examples/custom_models.rs (the chapter's regression
examples use California housing, which scikit-learn only downloads). The data is
scikit-learn's (BSD 3-clause, see examples/data/LICENSE-scikit-learn), from Efron, Hastie,
Johnstone and Tibshirani (2004), "Least Angle Regression".

Format of diabetes.csv: one patient per line, the 10 features as scikit-learn ships them
(mean-centred and scaled), then the target (an integer from 25 to 346), with full float64
precision (repr).
Run: python examples/data/export_diabetes.py > examples/data/diabetes.csv
"""

from sklearn.datasets import load_diabetes

d = load_diabetes()
for x, y in zip(d.data, d.target):
    print(",".join(repr(float(v)) for v in x) + f",{repr(float(y))}")
