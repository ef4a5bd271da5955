"""Read ahead: a source's next items produced by a background thread while the caller works.

A backtest alternates between decoding its input (Parquet pages, Arrow conversions: C++ that
releases the GIL) and running the engine's kernel on the batch (numba without the GIL). Done
one after the other, a run costs the sum of both; with `prefetched` the reader decodes batch
k+1 while the kernel runs batch k, and the run costs about the larger of the two.

The items arrive in order; an exception the source raises reaches the caller at the point of
the stream where it happened (after every item before it), with its own traceback. A caller
that stops early (an error of its own, `break`) stops the reader at its next item.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of `items`, read up to `depth` ahead by a daemon thread."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    source = iter(items)

    def read() -> None:
        try:
            for item in source:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as e:  # handed to the consumer, raised there
            offer(_Failed(e))
        finally:
            close = getattr(source, "close", None)  # a generator's own clean-up (open files) runs here
            if close is not None:
                close()

    reader = threading.Thread(target=read, name="sq-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
