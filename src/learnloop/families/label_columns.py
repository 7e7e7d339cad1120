"""A fitted classifier's classes (those its training data showed) laid out in a model's label
order: a label the data never showed gets a column of zeros."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from learnloop.families.base import FloatArray


def class_columns(classes: Sequence[Any], labels: Sequence[str]) -> np.ndarray[Any, np.dtype[np.intp]]:
    """The column in ``labels`` of each of the classifier's ``classes``."""
    return np.array([list(labels).index(str(c)) for c in classes], dtype=np.intp)


def spread(proba: FloatArray, columns: np.ndarray[Any, np.dtype[np.intp]], n_labels: int) -> FloatArray:
    """``proba`` (one column per class) as one column per label."""
    out = np.zeros((proba.shape[0], n_labels))
    out[:, columns] = proba
    return out
