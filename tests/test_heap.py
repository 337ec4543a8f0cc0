"""reuse_freed_memory keeps freed memory in the heap inside the block and gives it back after."""

from __future__ import annotations

import sys

import numpy as np
import psutil
import pytest

from holley_gnn_assets.training.heap import _glibc, reuse_freed_memory

MB = 1024**2
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _glibc() is None, reason="glibc only"
)


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _alloc_free(n_bytes: int) -> int:
    """RSS growth that remains after allocating, touching and freeing ``n_bytes``."""
    before = _rss()
    a = np.ones(n_bytes // 8)
    del a
    return _rss() - before


def test_freed_memory_stays_inside_and_is_returned_after() -> None:
    assert _alloc_free(256 * MB) < 64 * MB  # default glibc: a big block is unmapped on free
    with reuse_freed_memory() as active:
        assert active
        kept = _alloc_free(256 * MB)
        assert kept > 200 * MB
        inside = _rss()
    assert inside - _rss() > 200 * MB  # restored defaults + malloc_trim give it back
    assert _alloc_free(256 * MB) < 64 * MB


def test_disabled_is_a_no_op() -> None:
    with reuse_freed_memory(enabled=False) as active:
        assert not active
        assert _alloc_free(256 * MB) < 64 * MB


def test_release_gives_freed_heap_back_inside_reuse() -> None:
    from holley_gnn_assets.training.heap import release_freed_memory

    with reuse_freed_memory():
        kept = _alloc_free(256 * MB)
        assert kept > 200 * MB
        before = _rss()
        release_freed_memory()
        assert before - _rss() > 200 * MB
