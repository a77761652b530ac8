"""Exports scikit-learn's 8x8 `digits` data set (1797 images, 10 classes) once, for
examples/train_digits.rs and tests/train_digits.rs. The data is scikit-learn's (BSD 3-clause,
see examples/data/LICENSE-scikit-learn); it is a copy of the UCI ML hand-written digits test set.

Format of digits.csv: one image per line, 64 pixel values (integers 0..16, row-major) then the label.
Run: python examples/data/export_digits.py > examples/data/digits.csv
"""

from sklearn.datasets import load_digits

d = load_digits()
for image, label in zip(d.data.astype(int), d.target):
    print(",".join(str(v) for v in image) + f",{label}")
