"""html._draw_all: views drawn in forked children that claim them one at a time give the same images, in
the page's order, as drawing them here in turn; a view a failed child claimed is still drawn."""

from __future__ import annotations

import os

import pytest

from quantscope.report import html

pytestmark = pytest.mark.unit

NAMES = ["dashboard", "throughput", "radar", "memory", "quality", "speedup"]


def fake_draw(name: str) -> str:
    return f"svg of {name} drawn by {os.getpid()}"


@pytest.fixture
def two_cores(monkeypatch):
    import threading

    monkeypatch.setattr(html, "_draw", fake_draw)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    # the forked path, even when an earlier test left a thread running (the fakes here start none)
    monkeypatch.setattr(threading, "active_count", lambda: 1)


def test_parallel_drawing_keeps_the_page_order_and_loses_no_view(two_cores):
    uris = html._draw_all(NAMES, ([], [], None))
    assert [u.split(" drawn")[0] for u in uris] == [f"svg of {n}" for n in NAMES]


def test_a_child_that_fails_leaves_its_views_to_the_parent(two_cores, monkeypatch):
    parent = os.getpid()

    def failing_in_children(name: str) -> str:
        if os.getpid() != parent:
            raise RuntimeError("a child's drawing failed")
        return fake_draw(name)

    monkeypatch.setattr(html, "_draw", failing_in_children)
    uris = html._draw_all(NAMES, ([], [], None))
    assert uris == [f"svg of {n} drawn by {parent}" for n in NAMES]

