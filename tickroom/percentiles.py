"""One percentile rule for every figure tickroom reports: the load tester's
report, the benchmarks and the server's tick statistics.

Nearest rank, never interpolated: the q-th percentile of n samples is the
sample at index ``min(n - 1, floor(q / 100 * n))`` of the sorted samples, so
every figure is a value that was actually measured (a p99 of 200 samples is
the 199th smallest). NaN when there are no samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def percentiles(values: np.ndarray | Iterable[float], qs: Sequence[float]) -> list[float]:
    """The percentiles ``qs`` (each in [0, 100]) of ``values``, by nearest rank.

    Args:
        values: the samples, any order (an array, a list, any iterable).
        qs: the percentiles wanted, e.g. ``(50, 99)``.

    Returns one float per entry of ``qs``, in order; NaN for each when
    ``values`` is empty. Raises ValueError for a ``q`` outside [0, 100].
    """
    if any(not 0 <= q <= 100 for q in qs):
        raise ValueError(f"percentiles must be in [0, 100], got {list(qs)}")
    samples = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=np.float64)
    ordered = np.sort(samples.ravel())
    if ordered.size == 0:
        return [float("nan")] * len(qs)
    last = ordered.size - 1
    return [float(ordered[min(last, int(q / 100 * ordered.size))]) for q in qs]
