"""`prefetched`: the same items in the same order, the source's error where it happened, and a
caller that stops early stops the reader thread."""

import threading
import time

import pytest

from sq.core.prefetch import prefetched


def test_items_arrive_in_order_and_complete():
    assert list(prefetched(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(prefetched(iter([]))) == []


def test_the_source_error_reaches_the_caller_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("corrupt page 3")

    got = []
    with pytest.raises(ValueError, match="corrupt page 3"):
        for x in prefetched(source()):
            got.append(x)
    assert got == [1, 2]


def test_the_source_is_read_on_another_thread_ahead_of_the_caller():
    threads = set()
    produced = []

    def source():
        for i in range(5):
            threads.add(threading.get_ident())
            produced.append(i)
            yield i

    it = prefetched(source(), depth=2)
    assert next(it) == 0
    deadline = time.monotonic() + 60
    while len(produced) < 3 and time.monotonic() < deadline:  # the reader runs ahead while the caller holds item 0
        time.sleep(0.01)
    assert len(produced) >= 3
    assert threading.get_ident() not in threads
    assert list(it) == [1, 2, 3, 4]


def test_a_caller_that_stops_early_stops_the_reader():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetched(endless(), depth=2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()
    assert closed.wait(60), "the reader kept reading after the caller stopped"
