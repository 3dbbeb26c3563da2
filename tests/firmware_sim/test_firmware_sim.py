"""Simulated boards: baud-rate pacing, faults on the line, CPU throttle, RAM caps, whole runs."""
import json
import os
import subprocess
import sys
import time

import pytest
from small_runs import KEY, run_small, small_config
from waiting import PATIENCE, wait_until

from fedzo.edge.protocol.keyfile import write_key_file
from fedzo.coordinator.run.lifecycle import Run
from fedzo.edge.links.serial_link import BITS_PER_BYTE, PortIO
from fedzo.firmware_sim.faults import FaultInjector, FaultSpec
from fedzo.firmware_sim.line import SerialLine, _Direction
from fedzo.firmware_sim.profiles import PROFILES, ProfileError, get_profile
from fedzo.firmware_sim.simulate import BoardsFailed, simulate_boards
from fedzo.firmware_sim.throttle import CpuThrottle

QUIET = dict(log=lambda *a: None)


def transfer(line, nbytes, direction="up", lost=lambda: 0):
    """Write nbytes into one end at once and read the other end until every byte has
    come out or been lost (lost(): how many the line has dropped so far).

    Returns (seconds from the first write until the last byte came out, what came out, what was sent).
    """
    a, c = PortIO(line.agent_port, line.baud), PortIO(line.coordinator_port, line.baud)
    src, dst = (a, c) if direction == "up" else (c, a)
    try:
        data = os.urandom(nbytes)
        pending, got = bytearray(data), bytearray()
        start = last = time.monotonic()
        limit = start + PATIENCE
        while len(got) < nbytes - lost():
            assert time.monotonic() < limit, f"{len(got)} of {nbytes} bytes came out in {PATIENCE:.0f} s"
            if pending:
                del pending[:src.write(pending)]
            dst.wait(0.01)
            piece = dst.read()
            if piece:
                got += piece
                last = time.monotonic()
        return last - start, bytes(got), data
    finally:
        a.close()
        c.close()


def test_the_pacer_sends_a_byte_every_ten_bit_times_and_catches_up_after_a_late_wake_up():
    """The line's schedule, on a simulated clock: byte i is out once i + 1 byte times have
    passed, never sooner; bytes queue behind each other; a pacer that wakes late delivers
    all that became due at once, so the long-run rate stays the baud rate."""
    baud = 9600
    byte_time = BITS_PER_BYTE / baud
    line = _Direction("up", None, None, FaultInjector(FaultSpec(), 0, "up"), byte_time, tx_buffer=10_000)
    first, second = os.urandom(3000), os.urandom(500)
    line.accept(first, 0.0)
    line.accept(second, 0.0)                   # queued behind the first 3000
    assert line.next_due() == pytest.approx(byte_time)
    for due in (0, 1, 2, 10, 2999, 3000, 3001, 3499, 3500):    # wake-ups, some very late
        line.deliver((due + 0.5) * byte_time)
        assert len(line.out) == due, due
    assert bytes(line.out) == first + second and line.next_due() is None


def test_a_real_line_is_never_faster_than_its_baud_rate_and_counts_its_wire_time():
    baud, nbytes = 115200, 28800
    nominal = nbytes * BITS_PER_BYTE / baud          # 8N1: 10 bits a byte; 2.5 s
    with SerialLine(baud) as line:
        elapsed, got, sent = transfer(line, nbytes, "up")
        stats = line.stats()
    assert got == sent
    # The pacer's clock sets the pace: a loaded machine can only make it later.
    assert elapsed >= nominal * 0.995, (elapsed, nominal)
    assert stats["up"]["bytes_out"] == nbytes
    assert stats["up"]["wire_seconds"] == pytest.approx(nominal)


def test_the_line_drops_and_flips_at_its_rates_and_a_cut_loses_everything():
    spec = FaultSpec.parse("drop=0.02,flip=0.02,seed=4")
    with SerialLine(1_000_000, spec) as line:
        _, got, sent = transfer(line, 20000, "down", lost=lambda: line.stats()["down"]["dropped"])
        stats = line.stats()["down"]
        assert got != sent
        assert 250 < stats["dropped"] < 550 and 250 < stats["flipped"] < 550
        assert stats["bytes_out"] == len(got) == 20000 - stats["dropped"]
        line.disconnect(10 * PATIENCE)              # until reconnect()
        a = PortIO(line.agent_port, line.baud)
        try:
            a.write(b"x" * 100)
            wait_until(lambda: line.stats()["up"]["lost_in_cut"] >= 100, "the cut to swallow 100 bytes")
            assert line.cut
            line.reconnect()
            assert not line.cut
        finally:
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
                         text=True, timeout=PATIENCE)
    assert out.returncode == 0
    listed = {p["name"]: p for p in json.loads(out.stdout)}
    assert listed["tight"]["baud"] == 9600 and listed["pi4"]["link"] == "ethernet"


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        return sum(int(x) for x in f.read().split()[13:15]) / os.sysconf("SC_CLK_TCK")


def test_the_cpu_throttle_gives_a_busy_process_about_one_share_in_factor():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    throttle = CpuThrottle(busy, factor=4.0, period=0.05).start()
    try:
        wait_until(lambda: throttle.stopped_seconds > 0, "the throttle to stop the process once")
        before, stopped, t0 = cpu_seconds(busy.pid), throttle.stopped_seconds, time.monotonic()
        # A window of about 40 periods, measured by the throttle's own stops.
        wait_until(lambda: throttle.stopped_seconds - stopped >= 1.5, "1.5 s of stops")
        share = (cpu_seconds(busy.pid) - before) / (time.monotonic() - t0)
    finally:
        throttle.stop()
        busy.kill()
        busy.wait()
    # At most 1/4 of a core, with room for signal latency; other load only lowers it.
    assert share < 0.25 * 1.4, share
    assert throttle.peak_rss > 0


def test_a_board_under_its_ram_cap_fails_with_a_clear_message(tmp_path):
    key = tmp_path / "run.key"
    write_key_file(key, KEY)
    # The wrapper itself: too little RAM to import NumPy and MuJoCo.
    boot = subprocess.run([sys.executable, "-m", "fedzo.firmware_sim.boot", "--ram-mb", "48", "--board", "tiny",
                           "--", "agent", "--connect", "127.0.0.1:9", "--key-file", str(key),
                           "--reconnect-seconds", "1"],
                          capture_output=True, text=True, timeout=PATIENCE,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2"))
    assert boot.returncode == 4
    assert "board tiny: out of memory under its 48 MiB RAM cap" in boot.stderr
    # A simulation whose boards start and cannot load the task: it stops as soon
    # as one is dead and says why (waiting out the timeout would raise
    # TimeoutError instead). They fail on the Challenge's terms, before they
    # take a slot, so the run never starts (before protocol 3 they joined
    # first, and the run started with voters about to die).
    run = Run(small_config(agents=2, rounds=2), tmp_path / "small", **QUIET)
    tiny = get_profile("pi-zero-2w").with_overrides(ram_mb=64, cpu_factor=1.0)
    with pytest.raises(BoardsFailed) as failed:
        simulate_boards(run, KEY, tiny, timeout=2 * PATIENCE, **QUIET)
    text = str(failed.value)
    assert "stopped before the run" in text and "64 MiB" in text       # one board, or both
    named = [line for line in text.splitlines() if line.strip().startswith("board ")]
    assert named and all(": out of memory" in line for line in named)
    assert not run.runtime.started and all(s.joins == 0 for s in run.runtime.slots)
    k = int(named[0].split()[1].rstrip(":"))
    log = (tmp_path / "small" / f"agent-{k}.log").read_text()
    assert "fedzo agent: out of memory" in log


def test_serial_boards_run_like_the_inproc_run_and_report_wire_time_and_memory(tmp_path):
    _, _, reference = run_small(tmp_path, "reference", agents=2, rounds=2)
    run = Run(small_config(agents=2, rounds=2), tmp_path / "boards", **QUIET)
    profile = get_profile("pi-zero-2w").with_overrides(cpu_factor=1.5)
    run.runtime.report_timeout = PATIENCE            # the boards' reports are asserted on
    summary = simulate_boards(run, KEY, profile, timeout=2 * PATIENCE, **QUIET)
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
    summary = simulate_boards(run, KEY, get_profile("pi4").with_overrides(cpu_factor=1.0),
                              timeout=2 * PATIENCE, **QUIET)
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
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * PATIENCE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "serial links" in done.stdout and "boards: tight (UART 9600 baud 8N1, 128 MB RAM" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["boards"][0]["status"] == "ok" and summary["per_agent"][0]["baud"] == 9600
    assert summary["faults"]["burst"] == 0.001
    bad = subprocess.run([sys.executable, "-m", "fedzo.cli", "simulate", "--link", "inproc", "--board", "tight"],
                         capture_output=True, text=True, timeout=PATIENCE)
    assert bad.returncode == 2 and "--board and board options need --link serial" in bad.stderr
