"""sq.core.heap: the start-up's objects out of the collector's walks for a trading loop."""

from __future__ import annotations

import gc
import weakref

from sq.core import heap


class _Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _tracked(obj) -> bool:
    """Whether a collection (any generation but the permanent one) would walk `obj`."""
    return any(o is obj for o in gc.get_objects())


def test_objects_alive_at_the_start_are_not_walked_inside_and_are_given_back_after():
    assert gc.get_freeze_count() == 0
    kept = _Node()
    with heap.frozen():
        assert gc.get_freeze_count() > 0
        assert not _tracked(kept)  # in the permanent generation
        made = _Node()
        assert _tracked(made)  # what the loop makes is collected as usual
    assert gc.get_freeze_count() == 0 and _tracked(kept)


def test_garbage_is_collected_before_freezing_not_kept_for_good():
    gone = _Node()
    ref = weakref.ref(gone)
    del gone  # a garbage cycle the collector has not seen yet
    with heap.frozen():
        assert ref() is None


def test_inside_a_heap_someone_else_froze_it_changes_nothing():
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with heap.frozen():
            assert gc.get_freeze_count() == before
        assert gc.get_freeze_count() == before  # not given back: the caller's freeze stands
    finally:
        gc.unfreeze()
