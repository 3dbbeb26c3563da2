"""A coordinator for a thousand agents (issue 13, item 5): a crowd of connections is all
taken, running out of file descriptors pauses accepting instead of spinning, the
open-file limit is raised or explained, and connections that never join leave nothing."""
import json
import socket
import subprocess
import sys
import textwrap

from serving import Stop, serve_in_thread
from small_runs import KEY, small_config
from waiting import PATIENCE, wait_until

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import MAX_PENDING, MAX_PENDING_PER_ADDRESS, Server

QUIET = dict(log=lambda *a: None)


def _subprocess(code: str, *args, stdin=None) -> dict:
    """Run `code` in a fresh interpreter (its own file limit); it prints one JSON line last."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=PATIENCE * 4)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_connections_that_arrive_together_are_all_accepted(tmp_path):
    n = 300                                   # well above MAX_PENDING, all from one address
    run = Run(small_config(agents=n, rounds=1), tmp_path / "run", **QUIET)
    server = Server(run, KEY, **QUIET)
    assert server.pending_limits() == (MAX_PENDING + n, max(MAX_PENDING_PER_ADDRESS, n))
    socks = []
    try:
        for _ in range(n):                    # connected before the server takes any of them
            socks.append(socket.create_connection(server.address, timeout=PATIENCE))

        seen = {}

        def check():                          # (serve() closes every link when it stops)
            if len(server.pending) >= n:
                seen.update(pending=len(server.pending), hosts=dict(server.pending_hosts))
                raise Stop()
        thread, errors = serve_in_thread(server, check)
        thread.join(PATIENCE)
        assert not thread.is_alive() and not errors
        # Before: MAX_PENDING (64) were taken and the rest refused (8 from one address).
        assert seen == {"pending": n, "hosts": {"127.0.0.1": n}}
        assert not any("refused" in what for what in server.tally.totals)
    finally:
        for sock in socks:
            sock.close()


def test_links_that_never_join_leave_no_state(tmp_path):
    run = Run(small_config(agents=2), tmp_path / "run", **QUIET)
    server = Server(run, KEY, **QUIET)
    cycles, stop = 100, []

    def check():
        if stop:
            raise Stop()
    thread, errors = serve_in_thread(server, check)
    try:
        for k in range(cycles):
            with socket.create_connection(server.address, timeout=PATIENCE) as sock:
                if k % 2:
                    sock.sendall(b"\x00\x00\x00\x30" + bytes(48))    # a frame that fails its checks
            wait_until(lambda: server.forgotten > k, "the stranger's link to be forgotten")
    finally:
        stop.append(True)
        thread.join(PATIENCE)
    assert not thread.is_alive() and not errors
    assert not server.links and server.pending == {} and server.pending_hosts == {}
    assert server.unjoined.total["up"].wire_bytes == (cycles // 2) * 52    # their bytes are still counted


EMFILE_CHILD = """
    import json, os, resource, selectors, socket, sys, time
    from fedzo.coordinator.transports.acceptor import Acceptor, listen

    clients = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    selector = selectors.DefaultSelector()
    logs = []
    listener = listen(("127.0.0.1", 0))
    acceptor = Acceptor(listener, selector, logs.append)
    fillers = []
    while True:                                   # use up every descriptor
        try:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    print(listener.getsockname()[1], flush=True)
    sys.stdin.readline()                          # the parent has connected its clients
    accepted, passes, ready_while_paused = [], 0, 0

    def one_pass():
        global passes, ready_while_paused
        passes += 1
        for key, _ in selector.select(timeout=0.05):
            if acceptor.paused:
                ready_while_paused += 1
            accepted.extend(acceptor.accept_ready(time.monotonic()))
        acceptor.tick(time.monotonic())

    while acceptor.pauses < 3:                    # three pauses while nothing is free
        one_pass()
    passes_out_of_files = passes
    for fd in fillers[:clients + 4]:               # descriptors free up: every queued one is taken
        os.close(fd)
    while len(accepted) < clients and passes < 10_000:
        one_pass()
    print(json.dumps({"pauses": acceptor.pauses, "passes_out_of_files": passes_out_of_files,
                      "ready_while_paused": ready_while_paused, "accepted": len(accepted),
                      "logs": logs}))
"""


def test_out_of_file_descriptors_pauses_accepting_logs_once_and_never_spins():
    clients = 5
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(EMFILE_CHILD), str(clients)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    socks = []
    try:
        port = int(child.stdout.readline())
        for _ in range(clients):                  # queued by the kernel; the child has no descriptor for them
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=PATIENCE))
        out, err = child.communicate("go\n", timeout=PATIENCE * 4)
    finally:
        child.kill()
        for sock in socks:
            sock.close()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    # Each failed accept paused the listener: the selector never reported it while paused
    # (a spinning loop would see it ready on every pass and fail again at once).
    assert result["pauses"] == 3 and result["ready_while_paused"] == 0
    assert result["passes_out_of_files"] > result["pauses"]       # passes went by without an accept
    assert len(result["logs"]) == 1 and "open files" in result["logs"][0] and "ulimit -n 48" in result["logs"][0]
    assert result["accepted"] == clients                          # nothing queued was lost


FDLIMIT_CHILD = """
    import json, resource, sys
    from fedzo.coordinator.transports.fdlimit import ensure_open_files, files_needed

    agents, soft, hard = (int(a) for a in sys.argv[1:])
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    now, needed, message = ensure_open_files(agents, 64)
    print(json.dumps({"now": now, "needed": needed, "message": message,
                      "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                      "expected": files_needed(agents, 64)}))
"""


def test_the_open_file_limit_is_raised_where_allowed_and_explained_where_not():
    raised = _subprocess(FDLIMIT_CHILD, 1000, 256, 4096)
    assert raised["message"] is None and raised["soft"] == raised["now"] == raised["needed"] == raised["expected"]
    stuck = _subprocess(FDLIMIT_CHILD, 1000, 256, 512)
    assert stuck["soft"] == stuck["now"] == 512              # raised as far as the hard limit goes
    assert "open-file limit is 512" in stuck["message"] and f"ulimit -n {stuck['needed']}" in stuck["message"]
    enough = _subprocess(FDLIMIT_CHILD, 10, 256, 512)
    assert enough["message"] is None and enough["soft"] == 256   # nothing to change
