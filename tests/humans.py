"""A person at the page, played by HTTP requests (for the command tests; the browser tests use a browser)."""
import json
import re
import subprocess
import sys
import threading
import urllib.request

from waiting import PATIENCE

URL = re.compile(r"the comparison page is at (http://\S+)")


def start_command(*argv, cwd=None):
    """`fedzo ARGV` as a process whose output lines are collected; (process, lines)."""
    process = subprocess.Popen([sys.executable, "-m", "fedzo.cli", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=cwd)
    lines = []

    def read():
        for line in process.stdout:
            lines.append(line)
    threading.Thread(target=read, daemon=True).start()
    return process, lines


def page_url(lines) -> str:
    for line in list(lines):
        match = URL.search(line)
        if match:
            return match.group(1)
    return ""


def api(url: str, path: str, body=None):
    """(status, JSON) of a request to the page's API at `url` (which may carry ?token=)."""
    base, _, query = url.partition("?")
    headers = {"Content-Type": "application/json"}
    if query.startswith("token="):
        headers["X-Fedzo-Token"] = query[len("token="):]
    request = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answer_until_exit(process, url, rule) -> list:
    """Answer every comparison the page offers with rule(comparison) until `process` exits; the answers."""
    given = []
    while process.poll() is None:
        try:
            status, body = api(url, "api/next")
        except OSError:          # the page closed as the run ended
            break
        comparison = body.get("comparison")
        if comparison is None:
            threading.Event().wait(0.02)
            continue
        answer = rule(comparison)
        status, _ = api(url, "api/answer", {"id": comparison["id"], "answer": answer})
        if status == 200:
            given.append((comparison["agent"], comparison["round"], answer))
    process.wait(PATIENCE)
    return given
