"""Memory figures (DESIGN.md §7): this process's current and peak resident set size,
and any process's unshared memory (a rollout worker's, say).

Linux reports them in /proc/self/statm (pages) and getrusage (KiB); other
systems fall back to getrusage alone, whose units differ (bytes on macOS).
"""
import os
import resource
import sys

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int:
    """Resident memory now, in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def peak_rss_bytes() -> int:
    """The most resident memory this process has had, in bytes (never below the current)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):          # the kernel's high-water mark, in kB
                    return max(int(line.split()[1]) * 1024, current_rss_bytes())
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def unshared_memory(pid) -> dict:
    """{"uss": bytes, "pss": bytes} of a process from /proc/PID/smaps_rollup ({} where unreadable)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Private_Clean", "Private_Dirty"):
                    fields[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return {"uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0), "pss": fields.get("Pss", 0)}
