"""The scan's chunk writer: chunks written in order, in a background thread or in line, and a
failed write raised in the scanning thread (never lost)."""

from __future__ import annotations

import threading

import pytest

from lifecycle.discovery.scan import ChunkWriter


@pytest.mark.parametrize("threaded", [True, False])
def test_chunks_are_written_in_order(threaded: bool) -> None:
    written: list[int] = []
    threads: set[str] = set()

    def write(n: int) -> None:
        written.append(n)
        threads.add(threading.current_thread().name)

    writer = ChunkWriter(write, threaded=threaded)
    for n in range(50):
        writer.submit(n)
    writer.close()
    assert written == list(range(50))
    assert threads == ({"tag-writer"} if threaded else {threading.current_thread().name})


def test_a_failed_write_is_raised_in_the_scanning_thread_and_nothing_after_it_is_written() -> None:
    written: list[int] = []

    def write(n: int) -> None:
        if n == 3:
            raise RuntimeError("disk full")
        written.append(n)

    writer = ChunkWriter(write, threaded=True)
    with pytest.raises(RuntimeError, match="disk full"):
        for n in range(100):
            writer.submit(n)
        writer.close()
    assert written == [0, 1, 2]
