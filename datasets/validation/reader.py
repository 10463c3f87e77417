"""Chunked line reader: physical lines of a binary stream with bounded memory.

The stream is read ``chunk_size`` bytes at a time and split on ``\\n``. At most one partial line is carried
between chunks, and a line that grows past ``max_line`` bytes stops being buffered (it is reported as too long
and skipped up to its newline), so memory is bounded by about ``2 × max_line + chunk_size`` (a line of the
maximum length and its pieces while they are joined) whatever the file holds.

:class:`RangeStream` cuts a file into pieces for parallel validation: the lines that *start* in a byte range.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from brightrun.storage import BoundedStream

#: ``open_range(start, end)`` → a binary stream of the bytes ``[start, end)`` of a file (``end`` None: to its end).
OpenRange = Callable[[int, "int | None"], BinaryIO]

CHUNK_SIZE = 1 << 20
MAX_LINE_BYTES = 4 << 20
BOM = b"\xef\xbb\xbf"


class LineReader:
    """Iterates ``(line_number, line)`` over the non-blank lines of ``stream``.

    ``line`` is the line's bytes without its ``\\n`` (a trailing ``\\r`` and a leading UTF-8 BOM on line 1 are
    removed and recorded in ``bom`` / ``crlf_line``; ``on_note("BOM_PRESENT" | "CRLF_LINE_ENDINGS", line)``
    is called the first time each is seen), or None when the line is longer than ``max_line``. ``strip_bom``
    False leaves a BOM on line 1 as data (a stream that starts inside a file, not at its start).
    Blank (whitespace-only) lines are counted but not yielded. After iteration: ``bytes_read``, ``lines``
    (physical lines seen), ``too_large`` (more than ``max_bytes`` bytes were offered; reading stopped and the
    incomplete line at the cut was dropped).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        max_bytes: int | None = None,
        chunk_size: int = CHUNK_SIZE,
        max_line: int = MAX_LINE_BYTES,
        on_note: Callable[[str, int], None] | None = None,
        strip_bom: bool = True,
    ) -> None:
        self.stream = stream
        self.strip_bom = strip_bom
        self.max_bytes = max_bytes
        self.chunk_size = chunk_size
        self.max_line = max_line
        self.bytes_read = 0
        self.lines = 0
        self.too_large = False
        self.bom = False
        self.crlf_line: int | None = None
        self.on_note = on_note

    def _chunks(self) -> Iterator[bytes]:
        read = self.stream.read
        limit = self.max_bytes
        while True:
            want = self.chunk_size
            if limit is not None:
                # One byte past the limit is enough to know the file is too large.
                want = min(want, limit + 1 - self.bytes_read)
            chunk = read(want)
            if not chunk:
                return
            if not isinstance(chunk, bytes):
                chunk = bytes(chunk)  # bytearray / memoryview from some file-likes
            self.bytes_read += len(chunk)
            if limit is not None and self.bytes_read > limit:
                self.too_large = True
                yield chunk[: len(chunk) - (self.bytes_read - limit)]
                return
            yield chunk

    def __iter__(self) -> Iterator[tuple[int, bytes | None]]:
        max_line = self.max_line
        lineno = 0
        # The start of a line that spans chunks, kept as pieces (joined once, when its newline arrives).
        pending: list[bytes] = []
        pending_size = 0
        skipping = False  # inside a line already known to be too long: its bytes are dropped, not kept
        for chunk in self._chunks():
            parts: list[bytes | None] = chunk.split(b"\n")  # type: ignore[assignment]
            tail: bytes = parts.pop()  # type: ignore[assignment]
            if parts:
                if skipping:
                    parts[0] = None
                elif pending:
                    pending.append(parts[0])  # type: ignore[arg-type]
                    parts[0] = b"".join(pending)
                skipping = False
                pending, pending_size = ([tail], len(tail)) if tail else ([], 0)
            elif not skipping and tail:
                pending.append(tail)
                pending_size += len(tail)
            if pending_size > max_line:
                pending, pending_size = [], 0
                skipping = True
            yield from self._emit(lineno, parts)
            lineno += len(parts)
        # A line cut by the size limit is incomplete: it is neither validated nor counted.
        if not self.too_large and (pending or skipping):
            yield from self._emit(lineno, [None if skipping else b"".join(pending)])
            lineno += 1
        self.lines = lineno

    def _emit(self, lineno: int, parts: list[bytes | None]) -> Iterator[tuple[int, bytes | None]]:
        max_line = self.max_line
        for part in parts:
            lineno += 1
            if part is None or len(part) > max_line:
                yield lineno, None
                continue
            if lineno == 1 and self.strip_bom and part.startswith(BOM):
                self.bom = True
                part = part[3:]
                if self.on_note:
                    self.on_note("BOM_PRESENT", lineno)
            if part.endswith(b"\r"):
                part = part[:-1]
                if self.crlf_line is None:
                    self.crlf_line = lineno
                    if self.on_note:
                        self.on_note("CRLF_LINE_ENDINGS", lineno)
            if part and not part.isspace():
                yield lineno, part


class RangeStream(io.RawIOBase):
    """The bytes of the lines of a file that *start* in ``[start, end)``, read through ``open_range``.

    ``end`` None means to the end of the file. A range that does not start at 0 is entered at the byte before
    ``start``, so that a line starting exactly at ``start`` is recognised: everything up to and including the
    first ``\\n`` from there is skipped (it is the end of a line that the previous range owns). The range's
    last line is finished past ``end``, up to and including its ``\\n`` (or the end of the file), through a
    second stream ``open_range(end, None)`` opened only when that line is unfinished at ``end``. Consecutive
    ranges that cover ``[0, size)`` therefore deliver every byte of the file exactly once, cut at line starts;
    ``bytes_read`` counts the bytes delivered. Only ``read(n)`` is offered (what :class:`LineReader` uses).
    """

    def __init__(self, open_range: OpenRange, start: int, end: int | None, *, chunk_size: int = CHUNK_SIZE) -> None:
        super().__init__()
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range [{start}, {end})")
        self._open_range = open_range
        self._end = end
        self._chunk_size = chunk_size
        self._pos = max(start - 1, 0)  # file offset of the next byte of ``_stream``
        self._stream: BinaryIO = open_range(self._pos, end)
        self._tail: BinaryIO | None = None  # the file past ``end``, for the last line
        self._pending = b""  # read while looking for the first line start, not yet delivered
        self._last = 0x0A  # the last byte taken from the file; the file's start counts as after a newline
        self._state = "range"  # then "tail" (finishing the last line past ``end``), then "done"
        self.bytes_read = 0
        if start > 0:
            self._skip_to_line_start()

    def readable(self) -> bool:
        return True

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes of ``[.., end)`` (never more, whatever ``open_range`` returned)."""
        if self._end is not None:
            size = min(size, self._end - self._pos)
            if size <= 0:
                return b""
        data = self._stream.read(size)
        if data:
            if not isinstance(data, bytes):
                data = bytes(data)
            self._pos += len(data)
            self._last = data[-1]
        return data

    def _skip_to_line_start(self) -> None:
        while True:
            data = self._take(self._chunk_size)
            if not data:  # no newline before ``end``: no line starts in the range
                self._state = "done"
                return
            newline = data.find(b"\n")
            if newline >= 0:
                self._pending = data[newline + 1 :]
                return

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self._chunk_size), b""))
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
        elif self._state == "range":
            data = self._take(size)
            if not data:
                if self._end is None or self._pos < self._end or self._last == 0x0A:
                    self._state = "done"  # the file ended, or the range ends with a complete line
                    return b""
                self._tail = self._open_range(self._end, None)
                self._state = "tail"
                return self.read(size)
        elif self._state == "tail":
            assert self._tail is not None
            data = self._tail.read(size)
            if not isinstance(data, bytes):
                data = bytes(data)
            newline = data.find(b"\n")
            if newline >= 0:
                data = data[: newline + 1]
            if newline >= 0 or not data:
                self._state = "done"
        else:
            return b""
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                if self._tail is not None:
                    self._tail.close()
        super().close()


def open_file_range(path: str | Path, start: int, end: int | None) -> BinaryIO:
    """The bytes ``[start, end)`` of a local file (``end`` None: to its end); an ``open_range`` for
    :func:`datasets.validation.validate_ranges`. Module-level, so ``functools.partial(open_file_range, path)``
    pickles (needed with the "spawn" start method).
    """
    handle = open(path, "rb")  # closed by the returned stream
    try:
        handle.seek(start)
    except BaseException:
        handle.close()
        raise
    return BoundedStream(handle, None if end is None else max(end - start, 0))
