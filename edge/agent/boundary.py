"""Where every agent loop hands a message to the agent's state machine.

`take(runtime, msg, counters)` is the one exception boundary between an
agent transport (tcp.py, serial.py, the in-process link) and
`AgentRuntime.handle`. A message that authenticated but that the runtime
cannot take (a chunk that does not fit, a Sync whose hash does not match,
any other failure while handling it) must not end the agent: the refusal is
counted (the link's LinkCounters under REFUSED_REASON) and MessageRefused is
raised carrying the Error(BAD_MESSAGE) to send; the loop sends it, closes
that link and joins again, which brings a fresh Welcome (and a Sync if
needed). AgentRefused (this agent cannot take part at all) and an
allocation failure (a board out of memory: out_of_memory.is_out_of_memory)
pass through: neither is the message's fault, and joining again cannot help.
"""
from fedzo.edge.agent.out_of_memory import is_out_of_memory
from fedzo.edge.agent.runtime import AgentRefused
from fedzo.edge.protocol.refusal import REFUSED_REASON, refusal


class MessageRefused(Exception):
    """The runtime could not take a message; `reply` is the Error to send before closing the link."""

    def __init__(self, reply):
        super().__init__(reply.text)
        self.reply = reply


def take(runtime, msg, counters) -> list:
    """runtime.handle(msg); MessageRefused (counted) if it fails, AgentRefused as is."""
    try:
        return runtime.handle(msg)
    except AgentRefused:
        raise
    except Exception as exc:        # the boundary: one bad message must not end the agent
        if is_out_of_memory(exc):
            raise
        counters.reject(REFUSED_REASON)
        raise MessageRefused(refusal(msg, exc)) from exc
