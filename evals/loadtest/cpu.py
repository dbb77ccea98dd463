"""CPU seconds per process over a load-test step: the API, the LLM server, the load generator (locust).

The API and the stand-in are read with ``psutil`` (user + system time of the process and its reaped
children) at the step's start and end; locust is a child of this process that is waited for during the
step, so its CPU time is the growth of ``RUSAGE_CHILDREN`` over the step.
"""

from __future__ import annotations

import logging
import resource

import psutil

logger = logging.getLogger(__name__)


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` (threads and reaped children included); ``None`` when unknown."""
    if pid is None:
        return None
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        logger.warning("no CPU times for process %s", pid)
        return None
    return float(t.user + t.system + t.children_user + t.children_system)


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's waited-for children (here: the locust runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(usage.ru_utime + usage.ru_stime)


class CpuClock:
    """CPU seconds of the API, the LLM server and the load generator between ``__init__`` and ``read``."""

    def __init__(self, api_pid: int | None, llm_pid: int | None) -> None:
        self.pids = {"api": api_pid, "llm": llm_pid}
        self.start = {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        self.start_loadgen = children_cpu_s()

    def read(self) -> dict[str, float | None]:
        """Seconds used since the clock was made, per process (``None``: not measured)."""
        used: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            now, before = process_cpu_s(pid), self.start[name]
            used[name] = None if now is None or before is None else round(now - before, 2)
        used["loadgen"] = round(children_cpu_s() - self.start_loadgen, 2)
        return used
