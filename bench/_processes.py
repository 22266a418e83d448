"""The processes of a running bot, seen from outside through /proc (Linux)."""

from __future__ import annotations

import os


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of `motcua run --workers N` started as ``supervisor`` (its
    children made by multiprocessing's spawn, not the resource tracker), in start order."""
    found = []
    for pid in os.popen(f"pgrep -P {supervisor}").read().split():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    found.append(int(pid))
        except OSError:
            continue  # ended meanwhile
    return sorted(found)


def rss_mib(pid: int) -> float | None:
    """The process's resident memory (VmRSS) in MiB; None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int], *, reaped: bool = False) -> float:
    """User + system CPU time the processes have used so far (processes gone count 0).

    ``reaped``: also the time of their children that have ended (PostgreSQL's backends end
    when a connection closes; their time then shows only in the postmaster's)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                # The name (field 2) may hold spaces; the fields after its ")" are fixed.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
        if reaped:
            total += (int(fields[13]) + int(fields[14])) / _TICK  # cutime, cstime
    return total


def pids_of_user(user: str) -> list[int]:
    return [int(pid) for pid in os.popen(f"pgrep -u {user}").read().split()]


def tree(pid: int) -> list[int]:
    """``pid`` and its children."""
    return [pid, *(int(child) for child in os.popen(f"pgrep -P {pid}").read().split())]
