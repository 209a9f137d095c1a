"""Work on batches of clips on every core: chunks of the first axis, results in order.

:func:`map_chunks` runs chunks in threads: for work that spends its time in NumPy's FFTs and
matrix products, which release the GIL. :func:`map_in_processes` sends one contiguous share per
core to worker processes (spawned once, kept for the session): for Python-bound work such as
librosa's pitch tracker. Either way every chunk is computed by the same function and the
results come back in order, as one serial pass would give them.
"""

from __future__ import annotations

import atexit
import itertools
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
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


_POOLS: dict[int, ProcessPoolExecutor] = {}  # by worker count, for the session


def map_in_processes(function: Callable[..., Result], array: Sequence, *, workers: int | None = None) -> list[Result]:
    """``function`` (picklable: a module-level function or a partial of one) on one contiguous share of
    ``array`` per worker process, in order. One share, run here, when there is one worker or item.

    Workers are spawned (the caller may hold TensorFlow's threads, which forking would copy) on the
    first call and kept until the interpreter exits: later calls pay no start-up.
    """
    workers = workers or os.cpu_count() or 1
    shares = min(workers, len(array))
    if shares <= 1:
        return [function(array)]
    bounds = [round(i * len(array) / shares) for i in range(shares + 1)]
    return list(_pool(workers).map(function, [array[start:end] for start, end in itertools.pairwise(bounds)]))


def spawned_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (the caller may hold TensorFlow's threads, which forking
    would copy). The workers leave Ctrl-C to the parent, which stops the pool: an interrupt, or a Jupyter
    kernel shutting down, prints no traceback per worker."""
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_leave_interrupts_to_parent
    )


def _leave_interrupts_to_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(workers: int) -> ProcessPoolExecutor:
    if workers not in _POOLS:
        _POOLS[workers] = spawned_pool(workers)
        atexit.register(_POOLS[workers].shutdown)
    return _POOLS[workers]
