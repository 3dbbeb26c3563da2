"""`HumanPreference`: a person answers each comparison, through a desk (desk.py).

For each comparison it draws, from the comparison's own seed stream, which
side the candidate is shown on (so neither side is favoured, and a replay
draws the same), posts both batches' clips to the desk, waits for the
person's "left", "right" or "tie", appends the answer to the answers file
and returns +1, -1 or 0 (a tie: the vote's tie rule applies). It never
reads the returns.
"""
from fedzo.edge.human.answers import outcome
from fedzo.edge.human.clips import ClipRecorder
from fedzo.edge.learning.preference import PreferenceSource


def candidate_side(rng) -> str:
    """Where the candidate is shown: one fair draw from the comparison's stream."""
    return "left" if rng.integers(2) else "right"


class HumanPreference(PreferenceSource):
    """A person's answers, taken from `desk`, recorded in `log` (answers.AnswerLog)."""

    is_person = True

    def __init__(self, desk, log, round_timeout=None, idle=None, idle_every=1.0):
        self.desk, self.log = desk, log
        self.round_timeout = round_timeout      # shown on the page; None: the round waits for the person
        self.idle = idle                        # run while waiting (a transport keeping its link alive)
        self.idle_every = idle_every            # ... every this many seconds
        self.scene = None
        self.comparisons = 0
        self.reviewer_votes = 0

    def clip_recorder(self, task):
        recorder = ClipRecorder(task)
        self.scene = recorder.scene
        return recorder

    def compare(self, candidate, baseline, rng, where=None) -> int:
        side = candidate_side(rng)
        left, right = (candidate, baseline) if side == "left" else (baseline, candidate)
        deadline = None if self.round_timeout is None or where is None else where.started + self.round_timeout
        ask = self.desk.post(where, left.clips, right.clips, self.scene, deadline)
        answer = self.desk.wait(ask, poll=self.idle_every, idle=self.idle)
        result = outcome(answer, side)
        self.log.append({"agent": where.agent, "round": where.round, "comparison": where.comparison,
                         "candidate": side, "answer": answer, "outcome": result, "seconds": ask.seconds})
        self.comparisons += 1
        self.reviewer_votes += 1          # one person
        return result
