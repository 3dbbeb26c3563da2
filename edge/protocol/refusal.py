"""The reply to a message a state machine could not take (both sides' exception boundary).

coordinator/rounds/boundary.py and edge/agent/boundary.py catch what a
runtime raises while handling one authenticated message, count it under
REFUSED_REASON in the link's LinkCounters, and send `refusal(msg, exc)`
before they close that link.
"""
from .constants import MAX_TEXT_BYTES
from .messages import Error, ErrorCode

REFUSED_REASON = "refused"        # key in LinkCounters.rejected


def refusal(msg, exc: BaseException) -> Error:
    """Error(BAD_MESSAGE) naming the message and the reason, cut to MAX_TEXT_BYTES."""
    text = f"{getattr(msg, 'NAME', type(msg).__name__)} refused: {exc or type(exc).__name__}"
    return Error(ErrorCode.BAD_MESSAGE, text.encode()[:MAX_TEXT_BYTES].decode(errors="ignore"))
