"""A serial agent whose Welcome never comes joins again within seconds (issue 11, item 5).

Before, a lost Welcome left the agent waiting IDLE_SECONDS (300 s): what the
coordinator sent next was sealed with session keys the agent never got.
"""
import threading
import time

from small_runs import KEY
from waiting import PATIENCE, wait_until

from fedzo.edge.agent.reconnect import AgentGaveUp
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.serial import WELCOME_SECONDS, run_agent_serial, welcome_wait
from fedzo.edge.links.serial_link import PortIO, make_arq
from fedzo.firmware_sim.line import SerialLine

BAUD = 115200


def test_an_agent_without_a_welcome_joins_again():
    line = SerialLine(BAUD).start()
    heard = []                         # payloads a silent coordinator received (and acknowledged)
    outcome = []

    def agent():
        try:
            run_agent_serial(line.agent_port, KEY, AgentRuntime(log=lambda *a: None), baud=BAUD,
                             welcome_timeout=0.5, reconnect_seconds=2.0, log=lambda *a: None)
        except AgentGaveUp as exc:     # nobody ever answered: it gives up, as it should
            outcome.append(exc)

    thread = threading.Thread(target=agent, daemon=True)
    try:
        port = PortIO(line.coordinator_port, BAUD)
        arq = make_arq(BAUD)
        thread.start()

        def two_joins():               # acknowledge everything, answer nothing
            arq.tick(time.monotonic())
            heard.extend(arq.feed(port.read(), time.monotonic()))
            port.write(arq.output())
            return len(heard) >= 2

        wait_until(two_joins, "the agent to join a second time")   # before: not within 300 s
        thread.join(PATIENCE)
        port.close()
    finally:
        line.close()
    assert not thread.is_alive() and outcome


def test_the_welcome_wait_covers_the_line_time_of_a_largest_frame():
    assert welcome_wait(115200) > WELCOME_SECONDS
    assert welcome_wait(9600) > WELCOME_SECONDS + 2 * 16384 * 10 / 9600 - 0.01
