"""Work on batches of clips on every core: chunks of the first axis in threads, results in order.

NumPy's FFTs and matrix products, which most per-clip features spend their time in, release
the GIL, so threads share two cores without copying audio into other processes. Results are
the same as one serial pass: every chunk is computed by the same function, and they are joined
in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Result = TypeVar("Result")


def map_chunks(
    function: Callable[..., Result], *arrays: Sequence, chunk: int = 32, workers: int | None = None
) -> list[Result]:
    """``function`` on matching chunks of ``arrays`` (``chunk`` items of the first axis each), in order.

    With several arrays, chunk i of each is passed together (they must have the same length); an
    empty batch is one call on the empty arrays.
    ``workers`` defaults to the machine's cores.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise ValueError(f"arrays must have the same length, got {sorted(lengths)}")
    (length,) = lengths
    starts = range(0, max(length, 1), chunk)  # an empty batch still gets one (empty) call, as a serial pass
    if len(starts) <= 1:
        return [function(*(array[start : start + chunk] for array in arrays)) for start in starts]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(lambda start: function(*(array[start : start + chunk] for array in arrays)), starts))
