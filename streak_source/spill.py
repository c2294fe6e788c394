"""Bytes kept on disk rather than in memory, read back by position: the refresh basis' raw items
(streak_source/refresh.py). A 20,000-box basis holds ~140 MB of JSON, of which a refresh reads
back only what it keeps; held in memory, even compressed (~90 MB with its index), it added that
much to every step of the run after it was read (docs/refresh.md, "Memory, measured").

The file is an unnamed temporary file (``tempfile.TemporaryFile``: unlinked at once, so it is gone
when closed or when the process ends, whatever ends it). Appends are buffered and written through
once a read needs them; reads use ``os.pread``, which takes its position as an argument, so the
buffered file's own offset is never moved and any thread may read.
"""

from __future__ import annotations

import os
import tempfile
import threading
import weakref
from typing import BinaryIO

__all__ = ["SpillFile"]


class SpillFile:
    """Append-only bytes in an unnamed temporary file, created at the first :meth:`append`."""

    def __init__(self, prefix: str = "streak-spill-") -> None:
        self._prefix = prefix
        self._file: BinaryIO | None = None
        self._size = 0
        self._flushed = 0
        self._closed = False
        self._lock = threading.Lock()

    def append(self, data: bytes) -> tuple[int, int]:
        """Write ``data`` at the end; its ``(offset, length)`` for :meth:`read`."""
        with self._lock:
            if self._closed:
                raise ValueError("SpillFile.append after close()")
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix=self._prefix)  # noqa: SIM115 (closed by close())
                weakref.finalize(self, self._file.close)  # never closed by hand: closed when collected
            self._file.write(data)
            where = (self._size, len(data))
            self._size += len(data)
            return where

    def read(self, offset: int, length: int) -> bytes:
        """The ``length`` bytes written at ``offset`` (as :meth:`append` returned them)."""
        with self._lock:
            file = self._file
            if self._closed or file is None or offset < 0 or length < 0 or offset + length > self._size:
                raise ValueError(f"SpillFile.read({offset}, {length}): not a written range "
                                 f"({self._size} bytes written{', closed' if self._closed else ''})")
            if self._flushed < self._size:  # buffered writes through to the OS, where pread sees them
                file.flush()
                self._flushed = self._size
            data = os.pread(file.fileno(), length, offset)  # under the lock: close() cannot come between
        if len(data) != length:
            raise OSError(f"SpillFile.read({offset}, {length}): the temporary file gave {len(data)} bytes")
        return data

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def close(self) -> None:
        """Delete the file's contents (it has no name); later reads and appends raise ``ValueError``."""
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
                self._file = None
