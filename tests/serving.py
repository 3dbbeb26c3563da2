"""A coordinator Server serving in a thread, for the transport tests."""
import socket
import threading

from small_runs import KEY
from waiting import PATIENCE

from fedzo.cli import main
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp


class Stop(Exception):
    """Raised by a check() to end serve() once a test has seen what it waits for."""


def serve_in_thread(server, check=None):
    """server.serve() in a thread (check() runs in it on every pass; it may raise
    Stop to end the serving early); returns (thread, errors)."""
    errors = []

    def target():
        try:
            server.serve(stop_after=2 * PATIENCE, check=check)
        except Stop:
            pass
        except Exception as exc:   # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def serve_with_agents(run, agents, log=lambda *a: None):
    """Serve `run` over TCP to the given AgentRuntimes, one thread each, until it ends.

    Returns (server, errors): errors holds what serve() raised. An agent that
    outlives the server gives up after 2 s without a coordinator.
    """
    server = Server(run, KEY, log=log)
    thread, errors = serve_in_thread(server)

    def agent(runtime):
        try:
            run_agent_tcp(server.address, KEY, runtime, reconnect_seconds=2.0, log=log)
        except Exception:              # gave up once the server was gone: fine
            pass

    threads = [threading.Thread(target=agent, args=(a,), daemon=True) for a in agents]
    for t in threads:
        t.start()
    thread.join(2 * PATIENCE)
    for t in threads:
        t.join(PATIENCE)
    assert not thread.is_alive()
    return server, errors


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def coordinator_with_agents(argv, port, agents=2, key_of=lambda k: KEY):
    """`fedzo coordinator ARGV` in a thread and `agents` agents on 127.0.0.1:port; its exit code.
    Agent k joins as k under key_of(k) (default: the run key KEY)."""
    result, quiet = [], (lambda *a: None)
    thread = threading.Thread(target=lambda: result.append(main(["coordinator", *argv])), daemon=True)
    thread.start()
    helpers = [threading.Thread(target=run_agent_tcp, args=(("127.0.0.1", port), key_of(k),
                                                            AgentRuntime(agent_id=k, log=quiet)),
                                kwargs=dict(reconnect_seconds=PATIENCE, log=quiet), daemon=True)
               for k in range(agents)]
    for helper in helpers:
        helper.start()
    thread.join(2 * PATIENCE)
    assert not thread.is_alive(), "the coordinator did not finish"
    return result[0]
