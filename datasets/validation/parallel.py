"""Parallel validation over byte ranges: the same report as :func:`validate_stream`, with every core.

Split out of ``validator.py``; see ``validate_ranges``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from array import array
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from datasets.validation.checks import LineIssues
from datasets.validation.reader import OpenRange, RangeStream
from datasets.validation.report import Issue, IssueLog, ValidationReport, make_issue
from datasets.validation.stats import DigestSet, StatsCollector, digest_key
from datasets.validation.validator import (
    _DUPLICATE,
    _NOTES,
    _check_options,
    _file_issues,
    _report,
    _Scan,
    _setting,
    validate_stream,
)

PARALLEL_MIN_BYTES = 32 << 20
#: Default number of ranges (and of processes, the calling one included), at most this many.
MAX_WORKERS = 4


def default_workers() -> int:
    """min(CPUs, 4): :func:`validate_ranges`' default number of ranges."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def validate_ranges(
    open_range: OpenRange,
    size: int,
    *,
    workers: int | None = None,
    format: str = "auto",
    context_tokens: int | None = None,
    min_examples: int | None = None,
    validation_percent: int | None = None,
    max_bytes: int | None = None,
    max_issues: int = 200,
    parallel_min_bytes: int | None = None,
    start_method: str | None = None,
) -> ValidationReport:
    """Validate the ``size``-byte file behind ``open_range`` on several cores: the same report as
    :func:`validate_stream` on the whole file (``duration_seconds`` apart), in less wall-clock time.

    ``open_range(start, end)`` returns a binary stream of the bytes ``[start, end)`` (``end`` None: to the end of
    the file), e.g. ``functools.partial(reader.open_file_range, path)`` or :func:`brightrun.storage.open_range`.
    The file is cut into ``workers`` (default :func:`default_workers`) byte ranges; each range's lines are
    validated by one process (the first range by the calling one, while a ``ProcessPoolExecutor`` runs the
    others), and the results are merged in file order. Sequential, through :func:`validate_stream`, when
    ``workers`` is 1, ``size`` is below ``parallel_min_bytes`` (default :data:`PARALLEL_MIN_BYTES`) or above
    ``max_bytes`` (validation stops at the limit), and when the file's format is not recognisable in the first
    range (the other ranges could not be told it). Options and defaults are :func:`validate_stream`'s; settings
    are read here, never in the processes.

    How ranges keep the sequential semantics:

    - **Lines.** A range owns the lines that *start* in it (:class:`reader.RangeStream`: it skips the end of
      the line that the previous range finishes, and reads past its own end to finish its last line), so a
      line longer than 4 MiB is LINE_TOO_LONG whichever ranges it crosses. Line numbers are counted per range
      and offset by the line counts of the ranges before it.
    - **Format.** With ``format="auto"`` the format is first detected sequentially from the first range (the
      same rule as :func:`validate_stream`) and handed to the other ranges with the line it was detected from,
      so MIXED_FORMATS and its message are the same. A BOM and a v4 ``_meta`` header count only in the first
      range. Each range finds its first CRLF line; CRLF_LINE_ENDINGS is reported once, at the earliest.
    - **Duplicates.** Each range flags repeats within itself and returns the 8-byte digest keys of its other
      examples with their lines (an ``array``, 12 bytes per example); the merge walks the ranges in order with
      one :class:`stats.DigestSet` and flags the first occurrence in a range of a key seen in an earlier range,
      so a line is DUPLICATE_EXAMPLE exactly when an earlier line of the file has its digest key, as in one
      pass. A duplicate is a valid example either way (it counts in every statistic); only the duplicate count
      and the issue depend on the flag.
    - **Issues.** Each range keeps its first ``max_issues``; the merge adds the CRLF and cross-range duplicate
      issues where :func:`validate_stream` reports them within their line, keeps the first ``max_issues`` in
      file order, and adds the file-level issues (EMPTY_FILE, TOO_FEW_EXAMPLES) once.
    - **Statistics** are merged (:meth:`stats.StatsCollector.merge`): sums, counts per distinct value, the first
      three samples in file order.

    Processes: ``start_method`` "fork" (the default on Linux) or "spawn" (the default elsewhere).
    Fork starts a process in milliseconds, shares the loaded code copy-on-write, and passes ``open_range``
    to the processes without pickling it, so a closure over a Django storage works; such an ``open_range``
    must not reuse a network connection of the calling process (:func:`brightrun.storage.open_range` makes a
    client per process). With "spawn", ``open_range`` must pickle and work without Django set up in the child
    (``functools.partial(open_file_range, path)`` does). The processes never touch Django settings or the
    database: every option is resolved here and passed explicitly. Celery's prefork workers are daemonic
    processes, which multiprocessing forbids to have children; :func:`_children_allowed` lifts that while the
    pool starts, which is safe because the processes are stopped before this returns or raises and exit by
    themselves if this process dies (:func:`_exit_with_parent`).
    """
    started = time.perf_counter()
    min_examples = _setting(min_examples, "DATASET_MIN_EXAMPLES")
    validation_percent = _setting(validation_percent, "DATASET_VALIDATION_PERCENT")
    max_bytes = _setting(max_bytes, "DATASET_MAX_BYTES")
    _check_options(format, validation_percent)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError("workers must be at least 1")
    options: dict[str, Any] = {
        "format": format,
        "context_tokens": context_tokens,
        "min_examples": min_examples,
        "validation_percent": validation_percent,
        "max_bytes": max_bytes,
        "max_issues": max_issues,
    }
    if parallel_min_bytes is None:
        parallel_min_bytes = PARALLEL_MIN_BYTES
    if workers == 1 or size <= 0 or size < parallel_min_bytes or size > max_bytes:
        return _sequential(open_range, options)
    starts = [size * index // workers for index in range(workers)]
    ends: list[int | None] = [*starts[1:], None]  # the last range runs to the end, whatever the size said
    file_format, detected_at = format, None
    if format == "auto":
        detected = _detect_format(open_range, ends[0], validation_percent)
        if detected is None:
            return _sequential(open_range, options)
        file_format, detected_at = detected
    tasks = [
        _RangeTask(
            start=start,
            end=end,
            format=format if start == 0 else file_format,
            detected_at=None if start == 0 else detected_at,
            validation_percent=validation_percent,
            context_tokens=context_tokens,
            max_issues=max_issues,
        )
        for start, end in zip(starts, ends, strict=True)
    ]
    results = _run_ranges(open_range, tasks, start_method)
    log, stats = _merge(results, validation_percent=validation_percent, max_issues=max_issues)
    total = sum(result.bytes for result in results)
    if total > max_bytes:  # the file is larger than ``size`` said: the sequential pass stops at the limit
        return _sequential(open_range, options)
    _file_issues(
        log,
        stats,
        too_large=False,
        data_lines=sum(result.data_lines for result in results),
        min_examples=min_examples,
        max_bytes=max_bytes,
    )
    return _report(
        log,
        stats,
        format=results[0].format,
        size=total,
        lines=sum(result.lines for result in results),
        started=started,
        settings_used={
            "min_examples": min_examples,
            "validation_percent": validation_percent,
            "context_tokens": context_tokens,
            "max_bytes": max_bytes,
        },
    )


def _sequential(open_range: OpenRange, options: dict[str, Any]) -> ValidationReport:
    stream = open_range(0, None)
    try:
        return validate_stream(stream, **options)
    finally:
        stream.close()


class _FormatFound(Exception):
    pass


class _DetectingScan(_Scan):
    """Stops (raising :class:`_FormatFound`) as soon as the file's format is known."""

    def _resolve(self, obj: dict[str, Any], lineno: int, report: LineIssues) -> str | None:
        fmt = super()._resolve(obj, lineno, report)
        if self.format is not None:
            raise _FormatFound
        return fmt


def _detect_format(open_range: OpenRange, end: int | None, validation_percent: int) -> tuple[str, int] | None:
    """The format :func:`validate_stream` detects and the line it detects it from, when that line starts before
    ``end``; else None. Usually reads one line (and one 1 MiB chunk).
    """
    with RangeStream(open_range, 0, end) as stream:
        scan = _DetectingScan(
            stream,
            fmt="auto",
            validation_percent=validation_percent,
            max_bytes=None,
            context_tokens=None,
            log=IssueLog(0),
        )
        try:
            for _ in scan:
                pass
        except _FormatFound:
            assert scan.format is not None and scan.detected_at is not None
            return scan.format, scan.detected_at
    return None


@dataclass(frozen=True)
class _RangeTask:
    """What one process is told: its byte range and the resolved options (picklable, no settings)."""

    start: int
    end: int | None
    format: str  # "auto" for the first range (it detects, as the whole file would), else the file's format
    detected_at: int | None  # the file line the format was detected from (None when the caller chose it)
    validation_percent: int
    context_tokens: int | None
    max_issues: int


@dataclass
class _RangeResult:
    """One range's share of the report, with range-local line numbers."""

    format: str | None
    lines: int  # physical lines that start in the range
    data_lines: int
    bytes: int  # bytes of those lines
    crlf_line: int | None  # the range's first CRLF line (not in ``issues``)
    issues: list[Issue]  # the first ``max_issues``
    counts: dict[str, int]
    error_count: int
    warning_count: int
    stats: StatsCollector
    keys: array  # digest keys of the examples that do not repeat an earlier line of the range, in line order
    key_lines: array  # their lines


def _validate_range(open_range: OpenRange, task: _RangeTask) -> _RangeResult:
    log = IssueLog(task.max_issues)
    with RangeStream(open_range, task.start, task.end) as stream:
        scan = _Scan(
            stream,
            fmt=task.format,
            detected_at=task.detected_at,
            first_range=task.start == 0,
            crlf_in_log=False,
            validation_percent=task.validation_percent,
            max_bytes=None,
            context_tokens=task.context_tokens,
            log=log,
        )
        stats = StatsCollector(task.validation_percent)
        add = stats.add
        keys, key_lines = array("Q"), array("I")
        add_key, add_line = keys.append, key_lines.append
        for example in scan:
            add(example)
            if not example.duplicate:
                add_key(digest_key(example.digest))
                add_line(example.line)
        reader = scan.reader
        return _RangeResult(
            format=scan.format,
            lines=reader.lines,
            data_lines=scan.data_lines,
            bytes=stream.bytes_read,
            crlf_line=reader.crlf_line,
            issues=log.issues,
            counts=log.counts,
            error_count=log.error_count,
            warning_count=log.warning_count,
            stats=stats,
            keys=keys,
            key_lines=key_lines,
        )


_pool_open_range: OpenRange | None = None


def _pool_init(open_range: OpenRange, parent: int) -> None:
    """Runs first in each pool process: keep ``open_range``, leave interrupts to the parent, die with it."""
    global _pool_open_range
    _pool_open_range = open_range
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent acts
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not a handler inherited from, say, a Celery worker
    threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A pool process waits for work on a pipe that it also holds open, so it would outlive a parent killed
    without cleaning up (a Celery hard time limit); it checks every second and exits then.
    """
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _pool_validate_range(task: _RangeTask) -> _RangeResult:
    assert _pool_open_range is not None
    return _validate_range(_pool_open_range, task)


def _start_method(start_method: str | None) -> str:
    if start_method is not None:
        return start_method
    return "fork" if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods() else "spawn"


@contextmanager
def _children_allowed() -> Iterator[None]:
    """Let a daemonic process (a Celery prefork worker) start the pool's processes (see validate_ranges)."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon = config.get("daemon")
    if not daemon:
        yield
        return
    config["daemon"] = False
    try:
        yield
    finally:
        config["daemon"] = daemon


def _run_ranges(open_range: OpenRange, tasks: list[_RangeTask], start_method: str | None) -> list[_RangeResult]:
    """The first task here, the others in a process pool; results in task order."""
    pool = ProcessPoolExecutor(
        max_workers=len(tasks) - 1,
        mp_context=multiprocessing.get_context(_start_method(start_method)),
        initializer=_pool_init,
        initargs=(open_range, os.getpid()),
    )
    try:
        with _children_allowed():  # the processes start on the first submit
            futures = [pool.submit(_pool_validate_range, task) for task in tasks[1:]]
        results = [_validate_range(open_range, tasks[0])]
        results += [future.result() for future in futures]
    except BaseException:
        # An error, or an interrupt (Ctrl-C, a Celery soft time limit): stop the other ranges now rather than
        # wait for them. ProcessPoolExecutor has no public way to (Python 3.14 adds terminate_workers()).
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _merge(results: list[_RangeResult], *, validation_percent: int, max_issues: int) -> tuple[IssueLog, StatsCollector]:
    """The ranges' issues and statistics as one file's, in file order (see validate_ranges)."""
    log = IssueLog(max_issues)
    stats = StatsCollector(validation_percent)
    seen = DigestSet()
    offset = 0
    crlf_reported = False
    for result in results:
        extras: list[Issue] = []
        if result.crlf_line is not None and not crlf_reported:
            crlf_reported = True
            extras.append(make_issue(offset + result.crlf_line, "CRLF_LINE_ENDINGS", "", _NOTES["CRLF_LINE_ENDINGS"]))
        add_key = seen.add_key
        # Keys are unique within a range, so a key already present comes from an earlier range.
        repeats = [line for key, line in zip(result.keys, result.key_lines, strict=True) if add_key(key)]
        extras += [make_issue(offset + line, "DUPLICATE_EXAMPLE", "", _DUPLICATE) for line in repeats]
        extras.sort(key=lambda issue: (issue.line, issue.code != "CRLF_LINE_ENDINGS"))
        for issue in result.issues:
            issue.line += offset  # type: ignore[operator]
        counts = dict(result.counts)
        for extra in extras:
            counts[extra.code] = counts.get(extra.code, 0) + 1
        complete = len(result.issues) == result.error_count + result.warning_count
        log.absorb(
            _interleave(result.issues, extras, complete=complete, limit=max_issues),
            counts,
            result.error_count,
            result.warning_count + len(extras),
        )
        result.stats.duplicates += len(repeats)
        stats.merge(result.stats, offset)
        offset += result.lines
    return log, stats


def _interleave(issues: list[Issue], extras: list[Issue], *, complete: bool, limit: int) -> list[Issue]:
    """A range's stored ``issues`` with the merge's ``extras`` (warnings, in line order) where
    :func:`validate_stream` reports them: CRLF_LINE_ENDINGS before its line's issues (after a BOM_PRESENT),
    DUPLICATE_EXAMPLE after its line's check issues and before its EXCEEDS_CONTEXT. At most ``limit`` issues;
    when the range stored only some of its issues (``complete`` False), an extra that falls after all of them
    is not stored (the sequential pass would not store it either).
    """
    out: list[Issue] = []
    index, count = 0, len(issues)
    for extra in extras:
        line = extra.line
        assert line is not None
        if extra.code == "CRLF_LINE_ENDINGS":
            while index < count and (issues[index].line < line or issues[index].code == "BOM_PRESENT"):  # type: ignore[operator]
                out.append(issues[index])
                index += 1
        else:
            while index < count and (
                issues[index].line < line  # type: ignore[operator]
                or (issues[index].line == line and issues[index].code != "EXCEEDS_CONTEXT")
            ):
                out.append(issues[index])
                index += 1
        if len(out) >= limit or (index == count and not complete):
            break
        out.append(extra)
    out += issues[index:]
    return out[:limit]
