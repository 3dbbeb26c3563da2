"""Where every transport hands a message to the coordinator's state machine.

`deliver(runtime, link, msg)` is the one exception boundary between a
transport (coordinator/transports/server.py for TCP and serial, inproc.py)
and `CoordinatorRuntime.received`. A message that authenticated but that the
runtime cannot take (a model of the wrong size, a non-finite or out-of-range
model, a chunk that does not continue its vector, or any other failure while
handling it) must not stop the run: the sender gets an Error(BAD_MESSAGE)
naming the message and the reason, the refusal is counted (the runtime's
`rejected["bad_input"]` and the link's counters under REFUSED_REASON), the
link is reported disconnected (its slot is free, the round may close without
it) and closed. The other agents and the run go on. A MemoryError passes
through: running out of memory is the coordinator's state, not the message's
fault (what a message can make it allocate is bounded before it is read).
"""
from fedzo.coordinator.rounds.runtime import CLOSE
from fedzo.edge.protocol.refusal import REFUSED_REASON, refusal

BAD_INPUT = "bad_input"           # key in runtime.rejected


def deliver(runtime, link, msg, log=print) -> list:
    """runtime.received(link, msg); on failure Error + count + disconnect + close (see above)."""
    try:
        return runtime.received(link, msg)
    except Exception as exc:        # the boundary: nothing one link sends may stop the run
        if isinstance(exc, MemoryError):
            raise
        runtime.rejected[BAD_INPUT] = runtime.rejected.get(BAD_INPUT, 0) + 1
        link.counters.reject(REFUSED_REASON)
        reply = refusal(msg, exc)
        log(f"coordinator: {link.name}: {reply.text}; closing the link")
        return [(link, reply)] + runtime.disconnected(link) + [(link, CLOSE)]
