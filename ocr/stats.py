"""Median and percentile of short sequences, as NumPy computes them, without its per-call cost.

Field finding and segmentation take the median or a percentile of a handful
of widths or heights a few hundred times a page; ``np.median`` and
``np.percentile`` spend 20-160 us a call on argument handling alone.  These
give the same float64 values (NumPy's default, linear interpolation,
including its rounding: :func:`percentile` interpolates from the nearer
end as ``numpy._lerp`` does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def median(values: Iterable[float] | np.ndarray) -> float:
    """``float(np.median(values))``; raises ValueError for no values."""
    v = sorted(_as_list(values))
    n = len(v)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return float(v[mid]) if n % 2 else (v[mid - 1] + v[mid]) / 2


def percentile(values: Iterable[float] | np.ndarray, q: float) -> float:
    """``float(np.percentile(values, q))`` for ``q`` in [0, 100]; raises ValueError for no values."""
    v = sorted(_as_list(values))
    n = len(v)
    if n == 0:
        raise ValueError("percentile of no values")
    position = (q / 100) * (n - 1)
    below = math.floor(position)
    t = position - below
    a, b = float(v[below]), float(v[min(below + 1, n - 1)])
    step = b - a
    return b - step * (1 - t) if t >= 0.5 else a + step * t


def _as_list(values: Iterable[float] | np.ndarray) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)
