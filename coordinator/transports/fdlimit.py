"""Is the open-file limit enough for n agents? Raise the soft limit if allowed, else say so clearly.

Every TCP agent holds one file descriptor on the coordinator, and connections
still in their handshake hold one each too (up to MAX_PENDING more than the
free seats, server.py). The common default `ulimit -n 1024` is below what a
thousand agents need: before, accept() then failed with EMFILE and the run
never started. `ensure_open_files(n)` raises the soft limit towards what n
agents need when the hard limit allows it, and otherwise returns a message
that says how many agents can connect and how to raise the limit.
"""
import resource

SPARE_FILES = 64          # the run folder, logs, serial ports, the selector, the interpreter's own


def files_needed(agents: int, pending: int) -> int:
    """Descriptors a coordinator with `agents` seats and `pending` handshakes in flight may hold."""
    return agents + pending + SPARE_FILES


def ensure_open_files(agents: int, pending: int) -> tuple:
    """Make the soft limit at least files_needed() if the hard limit allows.

    Returns (soft limit now, needed, message or None): the message when it is still too low."""
    needed = files_needed(agents, pending)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft, needed, None
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft >= needed:
        return soft, needed, None
    fit = max(0, soft - pending - SPARE_FILES)
    return soft, needed, (f"the open-file limit is {soft} (hard limit {hard}) and {agents} TCP agents need "
                          f"about {needed}: only about {fit} of them can be connected at once; raise it "
                          f"(`ulimit -n {needed}` in this shell, or the hard limit in "
                          f"/etc/security/limits.conf) and start again")
