"""The garbage collector around a trading loop: start-up's objects frozen for the run.

Once the engine's kernels are loaded a process holds ~150K objects that live as long as it does
(modules, numba's typing and lowering registries, the loaded kernels). A full collection walks
all of them: 25-70 ms measured here, at whatever moment the collector picks — in a live run,
possibly between a tick and its order. `frozen()` collects once (so no garbage is kept for good)
and moves every object then alive to the collector's permanent generation, where collections
during the loop never look; on the way out it gives them back (a process that goes on, such as
a test run, collects them again as before).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def frozen() -> Iterator[None]:
    """Run the block with the objects alive at its start out of the collector's walks. Inside
    an already frozen heap (a caller froze it) it changes nothing."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
