"""`fedzo bench fleet`: a small fleet runs its rounds over real sockets and the table says so."""
from fedzo.coordinator.tools import bench_fleet
from fedzo.coordinator.tools.fleet_agents import FleetAgent
from fedzo.edge.protocol import Bye, ByeReason, RoundResult, RoundResultNext, RoundStart, Vote, Welcome


def test_a_fleet_agent_votes_on_the_hash_it_was_last_sent():
    agent = FleetAgent(bytes(32), rounds=3)
    h0, h1 = bytes(range(8)), bytes(range(1, 9))
    assert agent.handle(Welcome(4, 4, 9, 10, 1, 0, h0, "{}", bytes(32))) == []
    assert agent.handle(RoundStart(0)) == [Vote(0, -1 if 4 % 3 == 0 else 1, h0)]
    [vote] = agent.handle(RoundResultNext(0, (1,) * 9, h1))
    assert (vote.round, vote.theta_hash) == (1, h1)
    [report] = agent.handle(RoundResult(2, (1,) * 9, h1))          # after the last round
    assert report.round == 3
    agent.handle(Bye(ByeReason.REPLACED))
    assert not agent.done                                           # joins again
    agent.handle(Bye(ByeReason.DONE))
    assert agent.done


def test_a_small_fleet_is_measured(tmp_path):
    record = bench_fleet.measure(12, rounds=4, processes=2, workdir=tmp_path)
    assert record["agents"] == 12 and record["rounds_done"] == 4 and record["processes"] == 2
    assert record["rounds_measured"] == 2 and record["agent_retries"] == 0
    assert record["join_s"] > 0 and record["join_cpu_s"] > 0 and record["round_cpu_ms"] > 0
    assert record["rss_peak_mb"] > 0 and record["rss_after_join_mb"] > 0   # (other tests may reset the peak)
    assert record["send_floor_us"] > 0 and record["send_floor_connections"] == 12
    # prefix, header and tag around a body of the round, the votes (at most a byte each) and the hash
    assert 4 + 7 + 16 + 4 + 8 < record["result_frame_bytes"] <= 4 + 7 + 16 + 4 + 12 + 8 + 4
    text = bench_fleet.format_table([record])
    assert f"{record['agents']:>6}" in text.splitlines()[2] and "cores" in text.splitlines()[0]
    header, row = text.splitlines()[1], text.splitlines()[2].split()
    assert "gc ms" in header and "waits" in header and "send us" in header   # collector, wake-ups, reference
    for figure in (f"{record['round_gc_ms']:.1f}", f"{record['round_waits_per_agent']:.2f}",
                   f"{record['send_floor_us']:.1f}", f"{record['cpu_us_per_agent_round'] / record['send_floor_us']:.2f}"):
        assert figure in row


def test_a_fleet_with_fewer_blocks_than_agents_is_measured(tmp_path):
    record = bench_fleet.measure(9, rounds=3, processes=2, workdir=tmp_path, blocks=3)
    assert record["blocks"] == 3 and record["rounds_done"] == 3 and record["agent_retries"] == 0
    assert "K = 3" in bench_fleet.format_table([record]).splitlines()[0]


def test_fedzo_bench_fleet_refuses_blocks_it_cannot_use(capsys):
    from fedzo.cli import main
    assert main(["bench", "fleet", "--agents", "10,20", "--blocks", "11"]) == 2
    assert "--blocks must be between 1 and the smallest n (10), got 11" in capsys.readouterr().err
