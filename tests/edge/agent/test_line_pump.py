"""LinePump: a person's wait keeps the serial line serviced, and a line that fails meanwhile
does not break the comparison (edge/agent/line_pump.py), on a real pseudo-terminal line."""
import threading
import time

import numpy as np
import pytest
from people import human_sources
from small_runs import KEY
from waiting import wait_until

from fedzo.edge.agent.line_pump import POLL_SECONDS, LinePump
from fedzo.edge.learning.preference import Batch, Where
from fedzo.edge.links.serial_link import PortIO, SerialEndpoint, make_arq
from fedzo.edge.protocol import AGENT, Hello, LinkCounters, LinkFailed, Session
from fedzo.firmware_sim.line import SerialLine

BAUD = 115200


@pytest.fixture
def line():
    with SerialLine(BAUD) as line:
        yield line


def test_a_person_s_wait_pumps_the_line_and_a_link_that_gives_up_meanwhile_is_raised_after(line, tmp_path):
    """Nobody acknowledges the agent's Hello and the line brings garbage: while the person
    looks, the pump resends the Hello until the ARQ gives up; the comparison still ends
    with the person's answer, and the loop gets the failure from check() afterwards."""
    port, peer = PortIO(line.agent_port, BAUD), PortIO(line.coordinator_port, BAUD)
    try:
        endpoint = SerialEndpoint(Session(AGENT, KEY, counters=LinkCounters("agent")),
                                  make_arq(BAUD, link_timeout=0.5))
        logs = []
        pump = LinePump(port, endpoint, log=logs.append)
        desk, (source,) = human_sources(1, tmp_path / "answers.jsonl")
        pump.serve(source)
        assert (source.idle, source.idle_every) == (pump, POLL_SECONDS)
        endpoint.send(Hello(), time.monotonic())
        pump.flush()
        line.inject("down", b"\x13\x37 not a packet \x00" * 3)
        heard = bytearray()

        def person():
            ask = wait_until(desk.next_open, "the comparison")
            wait_until(lambda: pump.failure is not None, "the ARQ to give up while the person looks")
            desk.answer(ask.id, "left")

        def coordinator_side():                  # reads the line, says nothing back
            while not answered.is_set():
                peer.wait(POLL_SECONDS)
                heard.extend(peer.read())

        answered = threading.Event()
        threads = [threading.Thread(target=f, daemon=True) for f in (person, coordinator_side)]
        for t in threads:
            t.start()
        batch = Batch(np.zeros(1), clips=[])
        result = source.compare(batch, batch, np.random.default_rng(0), Where(0, 0, 0, time.monotonic()))
        answered.set()
        for t in threads:
            t.join(5)
        assert result in (1, -1)                 # the person's answer, whatever the side
        assert endpoint.arq.stats["retransmitted"] >= 2 and heard.count(0) >= 3   # resent while waiting
        assert pump.pumped > 0 and endpoint.counters.rejected_total > 0           # the garbage: read, counted
        assert isinstance(pump.failure, LinkFailed)
        with pytest.raises(LinkFailed):
            pump.check()
        pump.check()                             # raised once: the loop has dealt with it
        pump.release()
        assert source.idle is None
    finally:
        port.close()
        peer.close()
