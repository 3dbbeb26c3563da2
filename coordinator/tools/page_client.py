"""A scripted person at the comparison page, over HTTP: for `fedzo bench human` and the tests.

It starts `fedzo` commands as processes, finds the page's URL in what they
print, and answers every comparison the page offers with a rule until the
process exits. It reads only what the page's own script reads.
"""
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request

URL = re.compile(r"the comparison page is at (http://\S+)")
REQUEST_SECONDS = 120.0


def start_fedzo(*argv, cwd=None):
    """`fedzo ARGV` as a process whose output lines are collected as they come: (process, lines)."""
    process = subprocess.Popen([sys.executable, "-m", "fedzo.cli", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=cwd)
    lines = []

    def read():
        for line in process.stdout:
            lines.append(line)
    threading.Thread(target=read, daemon=True).start()
    return process, lines


def page_url(lines) -> str:
    """The page's URL, once a process has printed it ("" before)."""
    for line in list(lines):
        match = URL.search(line)
        if match:
            return match.group(1)
    return ""


def api(url: str, path: str, body=None) -> tuple:
    """(status, JSON) of a request to the page's API at `url` (whose ?token= is sent as the header)."""
    base, _, query = url.partition("?")
    headers = {"Content-Type": "application/json"}
    if query.startswith("token="):
        headers["X-Fedzo-Token"] = query[len("token="):]
    request = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answer_until_exit(process, url, rule, poll=0.02, ready=None) -> list:
    """Answer every comparison with rule(comparison) until `process` exits: [(agent, round, answer)].

    ready(comparison), if given, returns when the person is ready to answer it (a slow person)."""
    given, pause = [], threading.Event()
    while process.poll() is None:
        try:
            _, body = api(url, "api/next")
        except OSError:                  # the page closed as the run ended
            break
        comparison = body.get("comparison")
        if comparison is None:
            pause.wait(poll)
            continue
        if ready is not None:
            ready(comparison)
        status, _ = api(url, "api/answer", {"id": comparison["id"], "answer": rule(comparison)})
        if status == 200:
            given.append((comparison["agent"], comparison["round"], rule(comparison)))
    process.wait()
    return given
