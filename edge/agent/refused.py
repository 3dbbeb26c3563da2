"""Why an agent cannot take part: one list of refusals, one exception, one line each.

An agent ends with AgentRefused (exit code EXIT_REFUSED, its text printed
after "refused: ") when:

- the coordinator refused its Hello (a Refusal, not authenticated: a wrong
  key or another run's, another protocol version, or this agent's own key
  revoked). The text is the
  agent's own for the code: a Refusal carries no text, since anyone who
  could forge one would choose it;
- the coordinator refused its Join (an authenticated Error whose code is in
  REFUSALS: the run is full, the id is not in the run, ...). Its text is
  the coordinator's, which proved the run key;
- the agent itself cannot fit the run in its memory budget (BudgetTooSmall,
  decided from the Challenge before it takes a slot, budget.py): it tells
  the coordinator why (Error INCOMPATIBLE, Bye) before it leaves.

ID_IN_USE is not a refusal: the id frees up once its old session falls
silent, so the agent joins again after a back-off (reconnect.py).
"""
from fedzo.edge.protocol import MAX_TEXT_BYTES, PROTOCOL_VERSION, Bye, ByeReason, Error, ErrorCode

# Answers that joining again cannot change: the agent stops.
REFUSALS = (ErrorCode.AUTH_FAILED, ErrorCode.BAD_VERSION, ErrorCode.RUN_FULL, ErrorCode.UNKNOWN_AGENT,
            ErrorCode.INCOMPATIBLE, ErrorCode.REVOKED)

_WHY = {
    ErrorCode.AUTH_FAILED: "the coordinator does not accept this key (wrong key or another run's); "
                           "use the run.key of the run it serves (or, in a run with a key per "
                           "agent, this agent's own key file)",
    ErrorCode.REVOKED: "the coordinator revoked this agent's key (fedzo coordinator keys); "
                       "ask the run's operator for a new key file",
    ErrorCode.BAD_VERSION: f"the coordinator speaks another protocol version (this agent speaks "
                           f"{PROTOCOL_VERSION}); install the same fedzo on both",
}


class AgentRefused(RuntimeError):
    """The agent cannot take part; str(exc) says why in one line."""

    def goodbye(self) -> list:
        """What the agent sends before it leaves (nothing: the coordinator ended it)."""
        return []


class AgentDeclines(AgentRefused):
    """This agent cannot take part in this run (its own decision: a task it cannot build, a
    model or policy size other than the coordinator's, a human run without a person, ...)."""

    BYE_TEXT = "declined the run"

    def goodbye(self) -> list:
        """Why (Error INCOMPATIBLE), then Bye: the coordinator logs and counts the decline."""
        return [Error(ErrorCode.INCOMPATIBLE, str(self).encode()[:MAX_TEXT_BYTES].decode(errors="ignore")),
                Bye(ByeReason.SHUTDOWN, self.BYE_TEXT)]


class BudgetTooSmall(AgentDeclines):
    """This agent's memory budget cannot hold the run (decided before it takes a slot)."""

    BYE_TEXT = "memory budget too small"


def refused_by_coordinator(code: int, text: str = "") -> AgentRefused:
    """The AgentRefused for a refusal: the coordinator's text when it sent one (an
    authenticated Error), else this agent's own words for the code (a Refusal)."""
    if text:
        return AgentRefused(f"the coordinator refused this agent: {text}")
    return AgentRefused(_WHY.get(code, f"the coordinator refused this agent (error {code})"))
