import numpy as np
import pytest

from ocr.stats import median, percentile


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 33])
def test_median_and_percentile_equal_numpys(n):
    rng = np.random.default_rng(n)
    for values in (rng.integers(0, 300, n), rng.normal(50, 20, n), rng.integers(0, 3, n).astype(float)):
        assert median(values) == float(np.median(values))
        assert median(values.tolist()) == float(np.median(values))
        for q in (0, 10, 25, 33.3, 50, 75, 90, 95, 100):
            assert percentile(values, q) == float(np.percentile(values, q)), (values, q)


def test_no_values_is_an_error():
    with pytest.raises(ValueError):
        median([])
    with pytest.raises(ValueError):
        percentile(np.zeros(0), 50)
