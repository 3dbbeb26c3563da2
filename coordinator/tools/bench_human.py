"""`fedzo bench human`: what the comparison page costs an agent.

    page load     the wire bytes (HTTP headers included) of GET / and GET /page.js
    comparison    one comparison's clips: raw float32 poses, and the wire bytes of
                  the GET /api/next that carries them (base64 in JSON, with the scene)
    peak RSS      of one `fedzo agent` process in a real run over loopback TCP, with
                  the page on (--human, answered by a scripted person over HTTP) and
                  off (the simulated panel); the agent reports it at the end of the run;
                  the median of a few runs of each

The comparison is the run's own: the packaged actor of the task, D = `batch`
episodes of up to the task's 1000 steps on each side, drawn from the same
reset seeds as round 0 of seed 0. `--answers FILE` instead summarises how
long a person took over the comparisons of an answers file.
"""
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

from fedzo.coordinator.tools.page_client import answer_until_exit, page_url, start_fedzo

RUN_SECONDS = 900.0


def _wire_bytes(address, path) -> int:
    """Bytes of the whole HTTP response to GET `path` (the server closes after it: HTTP/1.0)."""
    host, port = address
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        total = 0
        while chunk := sock.recv(65536):
            total += len(chunk)
    return total


def page_and_comparison_bytes(task_name="hopper", batch=2) -> dict:
    """Wire bytes of a page load and of one comparison's GET /api/next; raw clip bytes."""
    from fedzo.edge.human.clips import ClipRecorder
    from fedzo.edge.human.desk import Desk
    from fedzo.edge.human.server import PageServer
    from fedzo.edge.learning import streams
    from fedzo.edge.learning.algorithm import initial_store, load_actor
    from fedzo.edge.learning.config import RunConfig
    from fedzo.edge.learning.preference import Where
    from fedzo.edge.policy.rollout import run_batch
    from fedzo.edge.tasks import make

    config = RunConfig(task=task_name, batch=batch)
    actor, task = load_actor(config), make(task_name)
    policy = actor.policy(*task.model.actuator_ctrlrange.T)
    policy.refresh(initial_store(config, actor))
    recorder = ClipRecorder(task)
    seeds = streams.reset_seeds(config.seed, 0, 0, batch)
    sides = [run_batch(task, policy, seeds, recorder) for _ in range(2)]
    desk = Desk()
    desk.post(Where(0, 0, 0), sides[0].clips, sides[1].clips, recorder.scene)
    server = PageServer(desk, ("127.0.0.1", 0)).start()
    try:
        page = _wire_bytes(server.address, "/") + _wire_bytes(server.address, "/page.js")
        comparison = _wire_bytes(server.address, "/api/next")
    finally:
        server.stop()
    return {"task": task_name, "batch": batch, "page_load_bytes": page, "comparison_bytes": comparison,
            "clip_bytes": sum(c.nbytes for side in sides for c in side.clips),
            "frames": sum(c.poses.shape[0] for side in sides for c in side.clips),
            "steps": sum(side.steps for side in sides)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(condition, process, lines):
    """Poll condition() while `process` runs; RuntimeError with its output if it exits first."""
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[3]} exited: " + "".join(lines)[-2000:])
        time.sleep(0.05)


def agent_peak_rss(page: bool, task_name="hopper", rounds=2, folder=None) -> int:
    """The agent's peak RSS (bytes) in a 1-agent run over loopback TCP, with or without the page."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(folder or scratch) / ("page-on" if page else "page-off")
        port = _free_port()
        run = ["--agents", "1", "--rounds", str(rounds), "--task", task_name, "--eval-every", "0",
               "--eval-episodes", "1", "--seed", "0"]
        coordinator, clines = start_fedzo("coordinator", "--listen", f"127.0.0.1:{port}", "--out", str(out),
                                          "--preference", "human" if page else "panel", *run)
        key = out / "run.key"
        _wait_for(key.is_file, coordinator, clines)
        agent_args = ["agent", "--connect", f"127.0.0.1:{port}", "--key-file", str(key)]
        if page:
            agent_args += ["--human", "127.0.0.1:0", "--answers", str(Path(scratch) / "answers.jsonl")]
        agent, alines = start_fedzo(*agent_args)
        if page:
            _wait_for(lambda: page_url(alines), agent, alines)
            answer_until_exit(agent, page_url(alines), lambda comparison: "left")
        if agent.wait(RUN_SECONDS) or coordinator.wait(RUN_SECONDS):
            raise RuntimeError("the run failed: " + "".join(clines + alines)[-2000:])
        summary = json.loads((out / "summary.json").read_text())
        return int(summary["per_agent"][0]["peak_rss_bytes"])


def answer_times(path) -> dict:
    """How long a person took, from an answers file: count, total, median and slowest seconds."""
    from fedzo.edge.human.answers import read_answers
    seconds = [float(record["seconds"]) for _, record in read_answers(path)]
    if not seconds:
        raise ValueError(f"{path} holds no answers")
    return {"answers": len(seconds), "total_seconds": round(sum(seconds), 1),
            "median_seconds": round(statistics.median(seconds), 1), "slowest_seconds": round(max(seconds), 1),
            "seconds_per_20": round(20 * sum(seconds) / len(seconds), 1)}


def run(task_name="hopper", repeats=3, log=print) -> dict:
    """Every figure of the module docstring, as one record. The peak RSS of separate processes
    varies by about a megabyte from run to run, so each is the median of `repeats` runs, off and on
    alternating (their spread is in the record)."""
    record = page_and_comparison_bytes(task_name)
    log(f"measuring the agent's peak RSS with the page off and on ({repeats} short runs each) ...")
    peaks = {False: [], True: []}
    for _ in range(repeats):
        for page in (False, True):
            peaks[page].append(agent_peak_rss(page, task_name))
    for page, name in ((False, "off"), (True, "on")):
        record[f"rss_{name}_bytes"] = int(statistics.median(peaks[page]))
        record[f"rss_{name}_runs"] = sorted(peaks[page])
    return record


def format_record(r) -> str:
    mib = 2 ** 20
    return "\n".join([
        f"comparison page on {r['task']} (D = {r['batch']} episodes a side)",
        f"  page load (GET / and /page.js, with HTTP headers): {r['page_load_bytes']} B",
        f"  one comparison: clips {r['clip_bytes']} B of float32 poses ({r['frames']} frames for "
        f"{r['steps']} env steps); GET /api/next {r['comparison_bytes']} B on the wire",
        f"  agent peak RSS (median of {len(r['rss_on_runs'])} runs each): page off {r['rss_off_bytes'] / mib:.1f} "
        f"MiB, on {r['rss_on_bytes'] / mib:.1f} MiB ({(r['rss_on_bytes'] - r['rss_off_bytes']) / mib:+.1f} MiB); "
        f"runs off {_span(r['rss_off_runs'])}, on {_span(r['rss_on_runs'])} MiB",
    ])


def _span(values) -> str:
    return f"{min(values) / 2**20:.1f}-{max(values) / 2**20:.1f}"


def format_times(t) -> str:
    return (f"{t['answers']} answers in {t['total_seconds']} s of looking (median {t['median_seconds']} s, "
            f"slowest {t['slowest_seconds']} s): {t['seconds_per_20']} s per 20 comparisons")
