"""`fedzo bench link`: its measurements agree with the protocol's frame sizes and the line's speed."""
import json
import math
import os

from fedzo.coordinator.tools import bench_link
from fedzo.edge.links.serial_link import FRAGMENT_OVERHEAD_BYTES


def test_measured_serial_round_is_the_frames_on_the_wire_and_never_faster(tmp_path):
    K = 2
    record = bench_link.measure("serial", "par-s2zpo", K, baud=115200, rounds=3, workdir=tmp_path)
    # Up: one vote frame (36 B) in one fragment. Down: one RoundResultNext (37 + ceil(K/4) B),
    # the result that also starts the next round (protocol 4), in one fragment.
    assert record["frame_bytes_up_per_agent_per_round"] == 36 + FRAGMENT_OVERHEAD_BYTES
    assert record["frame_bytes_down_per_agent_per_round"] == 37 + math.ceil(K / 4) + FRAGMENT_OVERHEAD_BYTES
    done = bench_link._finish(dict(record), latency_measured=True, bytes_from="serial 115200")
    # The wire time is bounded by the line on both sides: the frames' data bits alone
    # take (48 + 89) x 8 / 115200 s, and the measured round, which carried them, took
    # at least as long (a loaded machine only makes it longer).
    frames = record["frame_bytes_up_per_agent_per_round"] + record["frame_bytes_down_per_agent_per_round"]
    assert frames * 8 / 115200 < done["wire_seconds_per_round"] <= done["round_latency_s"]
    assert done["cpu_count"] >= 1


def test_tcp_record_and_table(tmp_path):
    record = bench_link._finish(bench_link.measure("tcp", "fedavg-s2zpo", 1, rounds=3, workdir=tmp_path),
                                latency_measured=True, bytes_from="tcp")
    d = record["d"]
    # A float32 model each way, in 16 KiB chunks with their headers and length prefixes.
    assert 4 * d < record["frame_bytes_up_per_agent_per_round"] < 4 * d + 200
    assert record["wire_seconds_per_round"] is None
    derived = bench_link._finish(dict(record, link="serial", baud=9600), latency_measured=False,
                                 bytes_from="serial 921600")
    text = bench_link.format_table([record, derived])
    assert f"this machine: {os.cpu_count()} cores" in text
    # One row per record, named by its link (the first column, 14 wide).
    rows = {line[:14].strip(): line for line in text.splitlines() if line.startswith(("tcp ", "serial "))}
    assert set(rows) == {"tcp", "serial 9600"}
    # The measured record's time is plain; the derived one's is starred and says where its bytes came from.
    assert f" {record['round_latency_s']:.3f} " in rows["tcp"]
    assert rows["tcp"].endswith("  measured") and "*" not in rows["tcp"]
    assert f" {derived['round_latency_s']:.3f}* " in rows["serial 9600"]
    assert rows["serial 9600"].endswith("bytes measured on serial 921600; time derived")
    json.dumps([record, derived])          # --json prints exactly these records
