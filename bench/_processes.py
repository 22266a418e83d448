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
