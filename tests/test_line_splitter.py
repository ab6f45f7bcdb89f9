"""Lines out of chunked channels (docker exec frames, WebSocket frames)."""

from __future__ import annotations

from probe_engine.sources.channel import LineSplitter


def test_lines_are_reassembled_across_chunks_and_the_last_one_flushed() -> None:
    splitter = LineSplitter(limit=100)
    lines = [line for chunk in (b"ab", b"c\nde", b"f\n\ng", b"h") for line in splitter.feed(chunk)]
    assert [*lines, *splitter.close()] == [b"abc", b"def", b"", b"gh"]


def test_an_overlong_line_is_dropped_and_the_next_ones_kept() -> None:
    splitter = LineSplitter(limit=5)
    lines = [
        line for chunk in (b"ok\n12345", b"6789", b"XX\nnext\n") for line in splitter.feed(chunk)
    ]
    assert lines == [b"ok", b"next"]
    assert splitter.overflowed


def test_thousands_of_lines_in_one_chunk() -> None:
    splitter = LineSplitter()
    payload = b"".join(b'{"id":%d}\n' % i for i in range(20_000))
    lines = splitter.feed(payload)
    assert len(lines) == 20_000
    assert lines[-1] == b'{"id":19999}'
