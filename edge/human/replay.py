"""`ReplayPreference`: a person's recorded answers (answers.py), given again.

It answers the comparisons of a run in the order they were asked, from the
answers file, so the run repeats bit-identically without the person. It
draws the candidate's side from the comparison's stream as the live source
did and checks it against the record: a file recorded for another run (other
seed, other agent) is refused at its first comparison, as is a comparison
the file never answered. Either way the agent cannot take part (ReplayError).
"""
from collections import defaultdict, deque

from fedzo.edge.agent.runtime import AgentRefused
from fedzo.edge.human.answers import read_answers
from fedzo.edge.human.source import candidate_side
from fedzo.edge.learning.preference import PreferenceSource
from fedzo.edge.protocol import Bye, ByeReason, Error, ErrorCode


class ReplayError(AgentRefused):
    """The answers file does not answer this run's comparisons."""

    def goodbye(self) -> list:
        return [Error(ErrorCode.INCOMPATIBLE, str(self)[:200]), Bye(ByeReason.SHUTDOWN, "answers file ran out")]


class ReplayPreference(PreferenceSource):
    """Answers from a recorded answers file (`fedzo agent --replay FILE`)."""

    is_person = True

    def __init__(self, path):
        self.path = str(path)
        self._answers = defaultdict(deque)      # (agent, round, comparison) -> records, in the order given
        for key, record in read_answers(path):
            self._answers[key].append(record)
        self.comparisons = 0
        self.reviewer_votes = 0

    def compare(self, candidate, baseline, rng, where=None) -> int:
        key = (where.agent, where.round, where.comparison)
        side = candidate_side(rng)
        if not self._answers.get(key):
            raise ReplayError(f"{self.path} has no (further) answer for agent {key[0]}, round {key[1]}, "
                              f"comparison {key[2]}")
        record = self._answers[key].popleft()
        if record["candidate"] != side:
            raise ReplayError(f"{self.path} was recorded for another run: agent {key[0]}, round {key[1]}, "
                              f"comparison {key[2]} showed the candidate {record['candidate']}, this run "
                              f"shows it {side}")
        self.comparisons += 1
        self.reviewer_votes += 1
        return int(record["outcome"])
