"""The summary of a run in which an agent sent no report (it left or lost its link at the end)."""
from small_runs import Harness

from fedzo.coordinator.run.summary_text import print_summary
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.protocol import Report

QUIET = dict(log=lambda *a: None)


class NoReport(AgentRuntime):
    """An agent whose Report never reaches the coordinator (its link was lost after the last round)."""

    def handle(self, msg):
        return [reply for reply in super().handle(msg) if not isinstance(reply, Report)]


def test_work_is_summed_over_the_reports_that_came_and_the_missing_one_is_named(tmp_path, capsys):
    h = Harness(tmp_path, agents=2, rounds=2)
    agents = [AgentRuntime(**QUIET), NoReport(**QUIET)]
    for agent in agents:
        h.connect(agent)
    while h.runtime.phase != "finishing":
        h.step_all()
    h.step_all()                              # agent 0 reports; agent 1 does not
    assert h.runtime.phase == "finishing"
    h.now += h.runtime.report_timeout         # the runtime's clock: the wait for reports is over
    h.dispatch(h.runtime.tick())
    assert h.runtime.done
    summary = h.run.finish()
    reporting = agents[0].logic.counters()
    # Before: env_steps and reviewer_votes were None, and the text said "None env steps".
    assert summary["agents_reported"] == 1
    assert summary["env_steps"] == reporting["env_steps"] > 0
    assert summary["reviewer_votes"] == reporting["reviewer_votes"]
    assert summary["per_agent"][0]["peak_rss_bytes"] and summary["per_agent"][1]["peak_rss_bytes"] is None
    print_summary(summary, tmp_path / "h")
    out = capsys.readouterr().out
    assert f"{reporting['env_steps']} env steps (reports of 1 of 2 agents)" in out
    assert "no report from agent 1" in out and "None" not in out
