"""Simulated boards: baud-rate pacing, faults on the line, CPU throttle, RAM caps, whole runs."""
import json
import os
import subprocess
import sys
import time

import pytest
from small_runs import KEY, run_small, small_config

from fedzo.coordinator.run.lifecycle import Run
from fedzo.edge.links.serial_link import PortIO
from fedzo.firmware_sim.faults import FaultSpec
from fedzo.firmware_sim.line import SerialLine
from fedzo.firmware_sim.profiles import PROFILES, ProfileError, get_profile
from fedzo.firmware_sim.simulate import BoardsFailed, simulate_boards
from fedzo.firmware_sim.throttle import CpuThrottle

QUIET = dict(log=lambda *a: None)


def transfer(line, nbytes, direction="up", quiet=None):
    """Write nbytes into one end at once; (seconds until the last byte came out, intact).

    quiet: stop once everything is written and nothing came for this long
    (a lossy line never delivers all nbytes).
    """
    a, c = PortIO(line.agent_port, line.baud), PortIO(line.coordinator_port, line.baud)
    src, dst = (a, c) if direction == "up" else (c, a)
    try:
        data = os.urandom(nbytes)
        pending, got = bytearray(data), bytearray()
        start = last = time.monotonic()
        deadline = start + 4 * nbytes * 10 / line.baud + 10
        while len(got) < nbytes and time.monotonic() < deadline:
            if pending:
                del pending[:src.write(pending)]
            dst.wait(0.01)
            piece = dst.read()
            now = time.monotonic()
            if piece:
                got += piece
                last = now
            elif quiet is not None and not pending and now - last > quiet:
                break
        return last - start, bytes(got) == data
    finally:
        a.close()
        c.close()


@pytest.mark.parametrize("baud, nbytes", [(115200, 28800), (9600, 3000)])
def test_pacing_is_within_five_percent_of_the_baud_rate(baud, nbytes):
    nominal = nbytes * 10 / baud          # 8N1: 10 bits a byte; 2.5 s and 3.1 s
    with SerialLine(baud) as line:
        elapsed, intact = transfer(line, nbytes, "up")
        stats = line.stats()
    assert intact
    # Never faster than the line (the pacer is clock-driven); slower only by
    # scheduling latency at the end, which 5 % of 2.5 s leaves room for.
    assert nominal * 0.995 <= elapsed <= nominal * 1.05, (elapsed, nominal)
    assert stats["up"]["bytes_out"] == nbytes
    assert stats["up"]["wire_seconds"] == pytest.approx(nominal)


def test_the_line_drops_and_flips_at_its_rates_and_a_cut_loses_everything():
    spec = FaultSpec.parse("drop=0.02,flip=0.02,seed=4")
    with SerialLine(1_000_000, spec) as line:
        _, intact = transfer(line, 20000, "down", quiet=0.3)
        stats = line.stats()["down"]
        assert not intact
        assert 250 < stats["dropped"] < 550 and 250 < stats["flipped"] < 550
        assert stats["bytes_out"] == 20000 - stats["dropped"]
        line.disconnect(0.5)
        a = PortIO(line.agent_port, line.baud)
        a.write(b"x" * 100)
        time.sleep(0.2)
        assert line.stats()["up"]["lost_in_cut"] >= 100 and line.cut
        a.close()


def test_profiles_and_the_boards_command():
    assert {"pi-zero-2w", "pi4", "tight"} <= set(PROFILES)
    zero, pi4, tight = get_profile("pi-zero-2w"), get_profile("pi4"), get_profile("tight")
    assert (zero.ram_mb, zero.link, zero.baud) == (512, "uart", 115200)
    assert pi4.link == "ethernet" and not pi4.serial
    assert (tight.ram_mb, tight.baud) == (128, 9600)
    with pytest.raises(ProfileError, match="known boards: pi-zero-2w"):
        get_profile("arduino")
    with pytest.raises(ProfileError, match="Ethernet board"):
        pi4.with_overrides(baud=9600)
    assert zero.with_overrides(cpu_factor=1.0, ram_mb=64).ram_mb == 64
    out = subprocess.run([sys.executable, "-m", "fedzo.cli", "boards", "--json"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    listed = {p["name"]: p for p in json.loads(out.stdout)}
    assert listed["tight"]["baud"] == 9600 and listed["pi4"]["link"] == "ethernet"


def test_the_cpu_throttle_gives_a_busy_process_about_one_share_in_factor():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    throttle = CpuThrottle(busy, factor=4.0, period=0.05).start()
    try:
        time.sleep(0.3)
        with open(f"/proc/{busy.pid}/stat") as f:
            before = sum(int(x) for x in f.read().split()[13:15])
        t0 = time.monotonic()
        time.sleep(2.0)
        with open(f"/proc/{busy.pid}/stat") as f:
            after = sum(int(x) for x in f.read().split()[13:15])
        wall = time.monotonic() - t0
    finally:
        throttle.stop()
        busy.kill()
        busy.wait()
    share = (after - before) / os.sysconf("SC_CLK_TCK") / wall
    assert share < 0.25 * 1.4, share          # 1/4 of a core, with room for signal latency
    assert throttle.stopped_seconds > 1.0 and throttle.peak_rss > 0


def test_a_board_under_its_ram_cap_fails_with_a_clear_message(tmp_path):
    key = tmp_path / "run.key"
    key.write_text(KEY.hex())
    # The wrapper itself: too little RAM to import NumPy and MuJoCo.
    boot = subprocess.run([sys.executable, "-m", "fedzo.firmware_sim.boot", "--ram-mb", "48", "--board", "tiny",
                           "--", "agent", "--connect", "127.0.0.1:9", "--key-file", str(key),
                           "--reconnect-seconds", "1"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2"))
    assert boot.returncode == 4
    assert "board tiny: out of memory under its 48 MiB RAM cap" in boot.stderr
    # A simulation whose boards start, join, and then cannot build the task:
    # it stops at once and says why.
    run = Run(small_config(agents=2, rounds=2), tmp_path / "small", **QUIET)
    tiny = get_profile("pi-zero-2w").with_overrides(ram_mb=64, cpu_factor=1.0)
    started = time.monotonic()
    with pytest.raises(BoardsFailed) as failed:
        simulate_boards(run, KEY, tiny, timeout=90, **QUIET)
    assert time.monotonic() - started < 30
    text = str(failed.value)
    assert "board 0: out of memory" in text and "board 1: out of memory" in text and "64 MiB" in text
    log = (tmp_path / "small" / "agent-0.log").read_text()
    assert "fedzo agent: out of memory" in log


def test_serial_boards_run_like_the_inproc_run_and_report_wire_time_and_memory(tmp_path):
    _, _, reference = run_small(tmp_path, "reference", agents=2, rounds=2)
    run = Run(small_config(agents=2, rounds=2), tmp_path / "boards", **QUIET)
    profile = get_profile("pi-zero-2w").with_overrides(cpu_factor=1.5)
    summary = simulate_boards(run, KEY, profile, timeout=150, **QUIET)
    assert summary["theta_hash"] == reference["theta_hash"]
    saved = json.loads((tmp_path / "boards" / "summary.json").read_text())
    assert saved["boards"] == summary["boards"] and saved["board_profile"]["name"] == "pi-zero-2w"
    for agent, board in zip(summary["per_agent"], summary["boards"]):
        assert board["status"] == "ok" and board["exit_code"] == 0
        assert 0 < board["peak_rss_bytes"] < board["ram_cap_bytes"]
        assert agent["transport"] == "serial" and agent["baud"] == 115200
        # Time on the wire agrees with what the pacer carried (the coordinator stops
        # reading after the run, so its count may miss the agent's last acks).
        line = board["line"]
        assert agent["wire_seconds_down"] == pytest.approx(line["down"]["wire_seconds"])
        assert 0 <= line["up"]["wire_seconds"] - agent["wire_seconds_up"] < 0.01
        assert board["agent_link"]["sessions"] == 1
        assert board["agent_link"]["wire_bytes_up"] == line["up"]["bytes_in"]
        assert board["stopped_seconds"] > 0                   # the CPU throttle was on
    assert "per_agent" in summary and summary["faults"] is None


def test_an_ethernet_board_runs_over_tcp_with_its_memory_cap(tmp_path):
    run = Run(small_config(agents=1, rounds=2), tmp_path / "pi4", **QUIET)
    summary = simulate_boards(run, KEY, get_profile("pi4").with_overrides(cpu_factor=1.0), timeout=150,
                              **QUIET)
    board = summary["boards"][0]
    assert board["status"] == "ok" and board["line"] is None
    assert summary["per_agent"][0]["transport"] == "tcp" and summary["rounds"] == 2
    with pytest.raises(ValueError, match="needs a serial board"):
        simulate_boards(run, KEY, get_profile("pi4"), faults=FaultSpec(drop=0.1))


def test_simulate_command_on_the_tight_board(tmp_path):
    out = tmp_path / "tight"
    cmd = [sys.executable, "-m", "fedzo.cli", "simulate", "--link", "serial", "--board", "tight",
           "--cpu-factor", "1", "--agents", "1", "--rounds", "1", "--batch", "1", "--eval-every", "0",
           "--eval-episodes", "1", "--faults", "burst=0.001,seed=2", "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "serial links" in done.stdout and "boards: tight (UART 9600 baud 8N1, 128 MB RAM" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["boards"][0]["status"] == "ok" and summary["per_agent"][0]["baud"] == 9600
    assert summary["faults"]["burst"] == 0.001
    bad = subprocess.run([sys.executable, "-m", "fedzo.cli", "simulate", "--link", "inproc", "--board", "tight"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--board and board options need --link serial" in bad.stderr
