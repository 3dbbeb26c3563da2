"""The serial transport's pieces: fragmenting endpoint, fault injection, port errors, CLI checks."""
import random
import subprocess
import sys

import numpy as np
import pytest
from waiting import PATIENCE

from fedzo.edge.agent.exit_codes import EXIT_GAVE_UP
from fedzo.edge.protocol.keyfile import write_key_file
from fedzo.edge.links.serial_link import (
    FIRST,
    FRAGMENT_OVERHEAD_BYTES,
    LAST,
    PortIO,
    SerialEndpoint,
    SerialLinkError,
    check_fragment,
    link_timing,
    make_arq,
)
from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    Challenge,
    Hello,
    Join,
    LinkCounters,
    RoundStart,
    Session,
    Vote,
    Welcome,
    sync_chunks,
)
from fedzo.edge.protocol.arq import ARQ_TAG_BYTES
from fedzo.edge.protocol.arqline import ArqLine
from fedzo.firmware_sim.faults import FaultInjector, FaultSpec, FaultSpecError

KEY = bytes.fromhex("c3a17e5b902d4f68e1b0a9d7c6f5e4d3b2a1908f7e6d5c4b3a2918f7e6d5c4b3")
H = bytes(8)


class Line:
    """One direction of an in-memory serial line with a FaultInjector on it."""

    def __init__(self, spec, direction):
        self.injector = FaultInjector(spec, 0, direction)
        self.buffer = bytearray()
        self.written = 0
        self.delivered = 0

    def write(self, data):
        self.written += len(data)
        segments, _ = self.injector.apply(data)
        for _, chunk in segments:
            self.buffer += chunk

    def read(self, rng):
        n = rng.randrange(1, len(self.buffer) + 1) if self.buffer else 0
        out, self.buffer[:] = bytes(self.buffer[:n]), self.buffer[n:]
        self.delivered += len(out)
        return out


def pair(fragment=64, window=4):
    agent = SerialEndpoint(Session(AGENT, KEY, counters=LinkCounters("a")),
                           ArqLine(window=window, rto=0.2, max_retries=10_000), fragment=fragment)
    coord = SerialEndpoint(Session(COORDINATOR, KEY, counters=LinkCounters("c")),
                           ArqLine(window=window, rto=0.2, max_retries=10_000), fragment=fragment)
    return agent, coord


def pump(a, c, up, down, rng, until, limit=3000.0, dt=0.01):
    """Step a simulated clock; returns (messages at the agent, messages at the coordinator)."""
    got_a, got_c, now = [], [], 0.0
    while not until(got_a, got_c) and now < limit:
        now += dt
        for ep in (a, c):
            ep.tick(now)
        up.write(a.output())
        down.write(c.output())
        got_c += c.feed(up.read(rng), now)
        got_a += a.feed(down.read(rng), now)
    return got_a, got_c


def handshake(a, c, up, down, rng):
    a.send(Hello(), 0.0)
    _, got = pump(a, c, up, down, rng, lambda ga, gc: gc)
    assert isinstance(got[0], Hello)
    c.send(Challenge(), 0.0)
    pump(a, c, up, down, rng, lambda ga, gc: ga)
    a.send(Join(agent_id=0), 0.0)
    _, got = pump(a, c, up, down, rng, lambda ga, gc: gc)
    assert isinstance(got[0], Join)
    c.send(Welcome(0, 0, 1, 10, 1, 0, H, "{}"), 0.0)
    got, _ = pump(a, c, up, down, rng, lambda ga, gc: ga)
    assert a.session.established and c.session.established


@pytest.mark.parametrize("spec", ["", "drop=0.005,flip=0.005,seed=1", "burst=0.002,burst_len=6,seed=2"])
def test_big_and_small_frames_arrive_exactly_once_and_the_bytes_add_up(spec):
    rng = random.Random(5)
    spec = FaultSpec.parse(spec)
    a, c = pair()
    up, down = Line(spec, "up"), Line(spec, "down")
    handshake(a, c, up, down, rng)
    theta = np.arange(5000, dtype=np.int16)
    chunks = sync_chunks(3, theta, 10)
    for msg in chunks + [RoundStart(3)]:
        c.send(msg, 0.0)
    a.send(Vote(3, 1, H), 0.0)
    got_a, got_c = pump(a, c, up, down, rng, lambda ga, gc: len(ga) == len(chunks) + 1 and gc)
    assert [type(m).__name__ for m in got_a] == ["Sync"] * len(chunks) + ["RoundStart"]
    assert got_a[0].data == chunks[0].data and got_c == [Vote(3, 1, H)]
    # Quiesce, then every byte written is a counted frame byte or an other byte.
    pump(a, c, up, down, rng, lambda ga, gc: a.idle and c.idle and not up.buffer and not down.buffer)
    for sender, receiver, line, direction in ((a, c, up, "up"), (c, a, down, "down")):
        assert sender.counters.total[direction].wire_bytes == line.written
        assert receiver.counters.total[direction].wire_bytes == line.delivered
    for direction in ("up", "down"):   # both ends agree on the messages
        assert a.counters.total[direction].frame_bytes == c.counters.total[direction].frame_bytes
    if spec.active:
        assert a.counters.rejected_total + c.counters.rejected_total > 0
        assert c.arq.stats["retransmitted"] > 0


def test_a_frame_is_cut_into_fragments_with_first_and_last_flags():
    a, _ = pair(fragment=16)
    a.send(Hello(), 0.0)              # 39-byte frame: 16 + 16 + 7
    payloads = [item[0] for item in a._backlog] + [item.payload for item in a.arq.clear._queue]
    flags = sorted(p[0] for p in payloads)
    assert flags == sorted([FIRST, 0, LAST])
    # The recorded frame bytes are the three packets on the line: 39 + 3 x overhead,
    # without the ARQ tag (a handshake frame travels on the clear channel).
    assert a.counters.total["up"].frame_bytes == 39 + 3 * (FRAGMENT_OVERHEAD_BYTES - ARQ_TAG_BYTES)


def test_bad_fragments_are_counted_and_do_not_break_the_next_frame():
    a, c = pair(fragment=32)
    now = 0.0
    # A continuation with no start, a malformed flags byte, and a frame too long.
    for payload in (bytes([LAST]) + b"x" * 10, bytes([0x80]) + b"y", b""):
        a.arq.send(payload, now)
    c.feed(a.arq.output(), now)
    huge = [bytes([FIRST]) + b"z" * 4000] + [b"\x00" + b"z" * 4000] * 4 + [bytes([LAST]) + b"z"]
    for p in huge:
        a.arq.send(p, now)
        c.feed(a.arq.output(), now)
        a.feed(c.output(), now)
    rejected = c.counters.rejected
    assert rejected["truncated"] >= 1 and rejected["malformed"] >= 2 and rejected["oversized"] == 1
    a.send(Hello(), now)
    now += 0.01
    got = []
    for _ in range(10):
        got += c.feed(a.output(), now)
        a.feed(c.output(), now)
    assert [type(m) for m in got] == [Hello]


def test_rebind_keeps_queued_fragments_for_the_old_session_unless_dropped():
    rng = random.Random(2)
    a, c = pair(fragment=64)
    up, down = Line(FaultSpec(), "up"), Line(FaultSpec(), "down")
    handshake(a, c, up, down, rng)
    chunks = sync_chunks(0, np.arange(3000, dtype=np.int16), 8)
    for msg in chunks:
        c.send(msg, 0.0)
    first = c.counters
    assert c.backlog > 0
    # The session ends (say, after a Bye); what it queued still goes out and counts for it.
    second = LinkCounters("second")
    c.rebind(Session(COORDINATOR, KEY, counters=second))
    assert c.counters is second and c.backlog > 0
    got, _ = pump(a, c, up, down, rng, lambda ga, gc: len(ga) == len(chunks))
    assert [m.offset for m in got] == [m.offset for m in chunks]
    assert first.by_type["down"]["sync"] == len(chunks) and "sync" not in second.by_type["down"]
    # The peer restarted: the backlog is useless and is dropped; the line still adds up.
    handshake(a, c, up, down, rng)          # a new session on the same line
    for msg in chunks:
        c.send(msg, 1.0)
    third = LinkCounters("third")
    c.rebind(Session(COORDINATOR, KEY, counters=third), drop_backlog=True)
    assert c.backlog == 0
    pump(a, c, up, down, rng, lambda ga, gc: c.idle and a.idle and not up.buffer and not down.buffer)
    assert sum(x.total["down"].wire_bytes for x in (first, second, third)) == down.written
    with pytest.raises(ValueError):
        c.rebind(Session(AGENT, KEY))


def test_link_timing_scales_with_the_baud_rate():
    fast, fast_retries = link_timing(115200, link_timeout=30)
    slow, slow_retries = link_timing(9600, link_timeout=30)
    assert 0.25 < fast < slow
    # The timer outlasts a full window on the wire, twice.
    assert slow > 2 * 4 * (128 + FRAGMENT_OVERHEAD_BYTES) * 10 / 9600
    assert fast * fast_retries >= 30 and slow * slow_retries >= 30
    assert make_arq(9600).rto == slow
    for bad in (0, 8, 10**6, True, 1.5):
        with pytest.raises(ValueError):
            check_fragment(bad)


def test_faults_are_reproducible_whatever_the_read_sizes_and_near_their_rates():
    spec = FaultSpec.parse("drop=0.01,flip=0.01,burst=0.001,burst_len=5,delay=0.001,seed=9")
    data = bytes(random.Random(1).randrange(256) for _ in range(100_000))
    outputs = []
    for step in (1, 97, 4096, len(data)):
        inj = FaultInjector(spec, 3, "up")
        out = bytearray()
        for i in range(0, len(data), step):
            for _, chunk in inj.apply(data[i:i + step])[0]:
                out += chunk
        outputs.append((bytes(out), dict(inj.stats)))
    assert all(o == outputs[0] for o in outputs)
    stats = outputs[0][1]
    assert 700 < stats["dropped"] < 1300 and 700 < stats["flipped"] < 1300
    assert stats["burst_bytes"] > 0 and stats["stalls"] > 0
    other = FaultInjector(FaultSpec.parse("drop=0.01,flip=0.01,burst=0.001,burst_len=5,delay=0.001,seed=10"))
    assert b"".join(c for _, c in other.apply(data)[0]) != outputs[0][0]
    clean = FaultInjector(FaultSpec())
    assert clean.apply(data) == ([(0.0, data)], False)


def test_fault_spec_errors_are_clear():
    with pytest.raises(FaultSpecError, match="expected NAME=VALUE"):
        FaultSpec.parse("drop")
    with pytest.raises(FaultSpecError, match="between 0 and 1"):
        FaultSpec.parse("flip=2")
    with pytest.raises(FaultSpecError, match="bad value"):
        FaultSpec.parse("seed=x")
    assert FaultSpec.parse("drop=0.005,flip=0.005").byte_error_rate == pytest.approx(0.01)
    assert FaultSpec.parse("none") == FaultSpec()


def test_a_missing_port_is_a_clear_error():
    with pytest.raises(SerialLinkError, match="cannot open serial port /dev/nonexistent-fedzo"):
        PortIO("/dev/nonexistent-fedzo", 115200)


def _fedzo(*args, timeout=PATIENCE):
    return subprocess.run([sys.executable, "-m", "fedzo.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_agent_command_line_checks(tmp_path):
    key = tmp_path / "k"
    write_key_file(key, KEY)
    both = _fedzo("agent", "--connect", "127.0.0.1:1", "--serial", "/dev/null", "--key-file", str(key))
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    baud = _fedzo("agent", "--connect", "127.0.0.1:1", "--baud", "9600", "--key-file", str(key))
    assert baud.returncode == 2 and "--baud applies to --serial only" in baud.stderr
    gone = _fedzo("agent", "--serial", "/dev/nonexistent-fedzo", "--key-file", str(key),
                  "--reconnect-seconds", "0.5")
    assert gone.returncode == EXIT_GAVE_UP and "no answer from the coordinator at /dev/nonexistent-fedzo" in gone.stderr
    coord = _fedzo("coordinator", "--serial", "/dev/nonexistent-fedzo", "--out", str(tmp_path / "c"),
                   "--agents", "1", "--rounds", "1")
    assert coord.returncode == 2 and "cannot open serial port /dev/nonexistent-fedzo" in coord.stderr
