"""Chunks of a batch on every core: the results of one serial pass, in order."""

from __future__ import annotations

import numpy as np
import pytest

from lib.core.parallel import map_chunks, map_in_processes


def test_chunks_come_back_in_order_and_together_give_the_serial_result():
    values = np.arange(100)
    parts = map_chunks(lambda chunk: chunk * 2, values, chunk=7, workers=2)
    assert [len(part) for part in parts] == [7] * 14 + [2]
    assert np.array_equal(np.concatenate(parts), values * 2)


def test_several_arrays_are_chunked_together_and_must_match():
    first, second = np.arange(10), np.arange(10) * 10
    assert np.array_equal(np.concatenate(map_chunks(np.add, first, second, chunk=3)), first + second)
    with pytest.raises(ValueError, match="same length"):
        map_chunks(np.add, first, second[:9])
    with pytest.raises(ValueError, match="at least 1"):
        map_chunks(np.negative, first, chunk=0)


def test_an_empty_batch_is_one_call_on_the_empty_batch():
    calls = []
    assert map_chunks(lambda chunk: calls.append(len(chunk)) or len(chunk), np.zeros((0, 5))) == [0]
    assert calls == [0]


def test_shares_in_processes_come_back_in_order():
    values = np.arange(11)
    parts = map_in_processes(np.negative, values, workers=2)
    assert [len(part) for part in parts] == [6, 5] or [len(part) for part in parts] == [5, 6]
    assert np.array_equal(np.concatenate(parts), -values)
    assert [len(part) for part in map_in_processes(np.negative, values[:1], workers=2)] == [1]  # one item: here


def interrupt_handlers(share: list) -> list[bool]:
    """Whether Ctrl-C is ignored in the process that runs this share."""
    import signal

    return [signal.getsignal(signal.SIGINT) == signal.SIG_IGN for _ in share]


def test_worker_processes_leave_interrupts_to_the_parent():
    import signal

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN already when the tests run in a background job
    assert map_in_processes(interrupt_handlers, [0, 1], workers=2) == [[True], [True]]
    assert signal.getsignal(signal.SIGINT) == before  # the pool leaves this process's Ctrl-C as it was
