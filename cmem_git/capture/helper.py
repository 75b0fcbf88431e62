"""A second process that redacts every other chunk of a large backup.

Redaction is most of a first backup's time (about 12 ms per MiB, 1.2 s for 100 MiB) and it
cannot use a second thread: `re` holds the GIL while it scans. SessionEnd's budget is 1.5 s
whole process, on machines with two cores. So a backup of many new bytes forks a helper once the
redaction rules are compiled; the helper redacts the odd chunks while this process redacts the
even ones, and the results are used in file order (chunk names are offsets in the redacted file,
so each length must be known in turn).

The helper only reads chunks from a pipe, runs the same filter and writes the result back: it
touches no repository and no file. A chunk it left unchanged comes back as a flag, not as bytes.
If this process dies (SIGKILL mid-backup), the helper sees its pipe close and exits; if the
helper fails, the chunk is redacted here instead, so a helper can only make a backup faster.
Linux only: there fork is cheap and safe for a single-threaded process; elsewhere (macOS, where
system frameworks do not survive fork) and in a process that runs other threads, nothing forks.
"""

from __future__ import annotations

import collections
import fcntl
import os
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Generic, TypeVar

Transform = Callable[[bytes], "tuple[bytes, int]"]
T = TypeVar("T")
_PIPE = 1 << 20  # Linux's limit for an unprivileged process (fs/pipe-max-size)
# Chunks the helper may have at once, and the largest one it gets (a longer line is redacted
# here): what is asked about, and the answers (redaction barely changes a length), fit in a pipe.
_AHEAD = 2
_LARGEST = 384 * 1024
_QUEUE = 6  # chunks between the first one read and the first one not yet returned
_ASK = struct.Struct(">Q")  # chunk length
# Count of secrets (-1: failed), whether the chunk came back unchanged, length of the new bytes.
_ANSWER = struct.Struct(">q?Q")


def usable() -> bool:
    return sys.platform == "linux" and threading.active_count() == 1 and (os.cpu_count() or 1) > 1


def redacted(items: Iterable[T], data: Callable[[T], bytes], change: Transform,
             keep: Callable[[bytes], None]) -> Iterator[tuple[T, tuple[bytes, int]]]:
    """Each item with `change(data(item))`, in order, some computed by a helper when one can
    be started. `keep` is told of every result, here in this process (the repository's record
    of filtered bytes: the helper keeps nothing, so its memory stays a few chunks). Closing the
    iterator early stops the helper."""
    helper = _Helper.start(change) if usable() else None
    if helper is None:
        yield from ((item, _kept(change(data(item)), keep)) for item in items)
        return
    try:
        yield from _shared(items, data, change, keep, helper)
    finally:
        helper.stop()


def _shared(items: Iterable[T], data: Callable[[T], bytes], change: Transform,
            keep: Callable[[bytes], None], helper: _Helper
            ) -> Iterator[tuple[T, tuple[bytes, int]]]:
    """The helper gets a chunk whenever it has fewer than _AHEAD to do, this process redacts
    the others: neither waits for the other while the machine's other work holds one of them
    up. Results leave in file order, at most _QUEUE chunks behind."""
    queue: collections.deque[_Entry[T]] = collections.deque()
    asked: collections.deque[_Entry[T]] = collections.deque()
    for item in items:
        chunk = data(item)
        helper.collect(asked, keep, wait=False)
        entry = _Entry(item, chunk)
        if len(asked) < _AHEAD and helper.ask(chunk):
            asked.append(entry)
        else:
            entry.result = _kept(change(chunk), keep)
        queue.append(entry)
        while queue and (queue[0].result is not None or len(queue) > _QUEUE):
            yield _first(queue, asked, change, keep, helper)
    while queue:
        yield _first(queue, asked, change, keep, helper)


def _first(queue: collections.deque[_Entry[T]], asked: collections.deque[_Entry[T]],
           change: Transform, keep: Callable[[bytes], None], helper: _Helper
           ) -> tuple[T, tuple[bytes, int]]:
    """The first entry of the queue and its result: waited for if the helper has it, made
    here if the helper failed on it."""
    if queue[0].result is None:
        helper.collect(asked, keep, wait=True)
    head = queue.popleft()
    return head.item, head.result or _kept(change(head.data), keep)


def _kept(result: tuple[bytes, int], keep: Callable[[bytes], None]) -> tuple[bytes, int]:
    keep(result[0])
    return result


@dataclass
class _Entry(Generic[T]):
    item: T
    data: bytes
    result: tuple[bytes, int] | None = None


class _Helper:
    def __init__(self, pid: int, asks: int, answers: int) -> None:
        self.pid, self.asks, self.answers = pid, asks, answers
        self.broken = False

    @classmethod
    def start(cls, change: Transform) -> _Helper | None:
        change(b"")  # compile the rules here, once, before the fork
        ask_read, ask_write = os.pipe()
        answer_read, answer_write = os.pipe()
        fds = (ask_read, ask_write, answer_read, answer_write)
        try:
            if not all(_widen(fd) for fd in (ask_write, answer_write)):
                raise OSError("pipes too small")
            pid = os.fork()
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        if pid == 0:  # the helper: serve, then leave without running this process's exit code
            code = 1
            try:
                _close_all_but(ask_read, answer_write)
                _serve(change, os.fdopen(ask_read, "rb"), os.fdopen(answer_write, "wb"))
                code = 0
            finally:
                os._exit(code)
        os.close(ask_read)
        os.close(answer_write)
        return cls(pid, ask_write, answer_read)

    def ask(self, chunk: bytes) -> bool:
        """Hand `chunk` to the helper; False (redact it here) when it is too large to sit in
        the pipe whole, so that neither process can block the other, or the helper failed."""
        if self.broken or len(chunk) > _LARGEST:
            return False
        try:
            _write_all(self.asks, _ASK.pack(len(chunk)) + chunk)
        except OSError:
            self.broken = True
            return False
        return True

    def collect(self, asked: collections.deque[_Entry[T]], keep: Callable[[bytes], None],
                wait: bool) -> None:
        """Results of the oldest chunks asked about: one at least with `wait`, else those
        ready. A chunk the helper failed on is redacted here (the entry's result stays None)."""
        while asked and (wait or select.select([self.answers], [], [], 0)[0]):
            entry = asked.popleft()
            entry.result = self._answer(entry.data)
            if entry.result is not None:
                keep(entry.result[0])
            wait = False

    def _answer(self, chunk: bytes) -> tuple[bytes, int] | None:
        if self.broken:
            return None
        try:
            head = _read_exactly(self.answers, _ANSWER.size)
            count, same, size = _ANSWER.unpack(head)
            if count < 0:
                return None
            return (chunk if same else _read_exactly(self.answers, size)), count
        except OSError:
            self.broken = True
            return None

    def stop(self) -> None:
        for fd in (self.asks, self.answers):
            os.close(fd)
        # The helper exits when its pipe closes; one still busy with a chunk is not waited for.
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(self.pid, 0)


def _serve(change: Transform, asks: BinaryIO, answers: BinaryIO) -> None:
    while True:
        head = asks.read(_ASK.size)
        if len(head) < _ASK.size:
            return  # the backup ended (or died)
        (size,) = _ASK.unpack(head)
        chunk = asks.read(size)
        try:
            new, count = change(chunk)
        except Exception:
            answers.write(_ANSWER.pack(-1, True, 0))
        else:
            same = new is chunk
            answers.write(_ANSWER.pack(count, same, 0 if same else len(new)))
            if not same:
                answers.write(new)
        answers.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = os.read(fd, min(left, _PIPE))
        if not part:
            raise OSError("the helper closed its pipe")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _widen(fd: int) -> bool:
    """Whether the pipe now holds _PIPE bytes (64 KiB by default): chunks asked about and their
    answers then fit in it whole, and writing one never waits for the other process."""
    try:
        return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE) >= _PIPE
    except (OSError, AttributeError):
        return False


def _close_all_but(*kept: int) -> None:
    """In the helper: every inherited descriptor closed (the transcript, the repository's lock),
    so that nothing the backup holds outlives it in the helper."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in kept:
            try:
                os.close(fd)
            except OSError:
                pass
