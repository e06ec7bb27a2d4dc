"""The ``--jobs`` pool: inputs in tasks to worker processes (and this one), results back in
input order.

Imported only when a run has more than one job; no module-level state of its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from xmlnest.cli.config import RunConfig
from xmlnest.cli.worker import FileResult, processed
from xmlnest.files import Input

CHUNK = 256  # inputs per task handed to a worker


def results(items: list[Input], config: RunConfig, jobs: int) -> Iterator[FileResult]:
    """Results in input order from ``jobs`` processes: this one and ``jobs - 1`` workers.

    This process takes every ``jobs``-th task itself (while it works, the workers go on
    with theirs) rather than waiting on them: on two cores, two processes do the work,
    and half the results need no pickling."""
    from concurrent.futures import ProcessPoolExecutor

    from xmlnest.files.temps import run_leader

    chunks = list(_chunks(items, jobs))
    pool = ProcessPoolExecutor(
        max_workers=jobs - 1, initializer=_init_worker, initargs=(run_leader(),)
    )
    try:
        theirs = {
            k: pool.submit(process_chunk, chunk, config)
            for k, chunk in enumerate(chunks)
            if k % jobs
        }
        for k, chunk in enumerate(chunks):
            if k % jobs:
                yield from theirs.pop(k).result()
            else:
                yield from processed(chunk, config)
    except BaseException:
        # Ctrl-C or a closed stdout: workers finish the chunk in hand (writes are atomic)
        # and nothing new starts.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def process_chunk(items: list[Input], config: RunConfig) -> list[FileResult]:
    """A worker's task: the results of ``items``, in order."""
    return list(processed(items, config))


def _chunks(items: list[Input], jobs: int) -> Iterator[list[Input]]:
    """Tasks for the workers: up to ``CHUNK`` inputs, smaller towards the end (a quarter of
    a worker's share of what is left, at least 16), so that the workers finish together."""
    k = 0
    while k < len(items):
        size = max(16, min(CHUNK, (len(items) - k) // (jobs * 4)))
        yield items[k : k + size]
        k += size


def _init_worker(leader: str) -> None:
    """Workers leave Ctrl-C to the parent, die with it if it is killed outright, and name
    their temp files after the run's leader (so that a later run can tell them stale as
    soon as the leader is gone, see ``sources.temps``)."""
    import signal

    from xmlnest.files.temps import follow, leader_gone

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    follow(leader)
    if os.getppid() == 1 or leader_gone(leader):  # the parent died before prctl took effect
        os._exit(1)
