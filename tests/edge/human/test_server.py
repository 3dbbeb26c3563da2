"""The page's server: what it serves, and every request it refuses (named, counted, never fatal)."""
import http.client
import json

import numpy as np
import pytest

from fedzo.edge.human.clips import Clip
from fedzo.edge.human.desk import Desk
from fedzo.edge.human.server import PageServer
from fedzo.edge.learning.preference import Where

SCENE = {"task": "hopper", "view": "side", "fps": 30.0, "moving": [], "fixed": []}


@pytest.fixture
def page():
    desk = Desk()
    server = PageServer(desk, ("127.0.0.1", 0)).start()
    yield server
    server.stop()


def request(server, method, path, body=None, headers=None):
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, response


def _post(desk, n=0, deadline=None):
    clip = Clip(np.arange(2 * 3 * 7, dtype=np.float32).reshape(2, 3, 7), 30.0, 8)
    return desk.post(Where(1, 4, n), [clip], [clip], SCENE, deadline)


def test_the_page_its_script_and_the_next_comparison(page):
    status, html, response = request(page, "GET", "/")
    assert status == 200 and b'<script src="page.js">' in html
    assert "connect-src 'self'" in response.getheader("Content-Security-Policy")
    status, js, _ = request(page, "GET", "/page.js")
    assert status == 200 and b"api/answer" in js
    status, body, _ = request(page, "GET", "/api/next")
    assert json.loads(body) == {"waiting": 0, "answered": 0, "id": None, "seconds_left": None, "comparison": None}
    ask = _post(page.desk, deadline=page.clock() + 100)
    body = json.loads(request(page, "GET", "/api/next")[1])
    got = body["comparison"]
    assert (got["id"], got["agent"], got["round"], got["comparison"], body["waiting"]) == (ask.id, 1, 4, 0, 1)
    assert 0 < body["seconds_left"] <= 100 and body["id"] == ask.id and got["scene"] == SCENE
    # A page that has the comparison gets only the counts.
    again = json.loads(request(page, "GET", f"/api/next?have={ask.id}")[1])
    assert again["comparison"] is None and again["id"] == ask.id and again["waiting"] == 1
    import base64
    poses = np.frombuffer(base64.b64decode(got["left"][0]["poses"]), "<f4")
    np.testing.assert_array_equal(poses, ask.left[0].poses.ravel())
    assert not {"returns", "return", "candidate"} & (set(got) | set(body))


def test_an_answer_is_taken_once_and_every_bad_request_is_refused_and_counted(page):
    ask = _post(page.desk)
    answer = json.dumps({"id": ask.id, "answer": "right"})
    assert request(page, "POST", "/api/answer", answer)[0] == 200
    assert ask.answer == "right"
    status, body, _ = request(page, "POST", "/api/answer", answer)          # a second tab, the same answer
    assert status == 409 and "already answered" in json.loads(body)["error"]
    cases = [("{not json", 400), (json.dumps({"id": 99, "answer": "left"}), 409),
             (json.dumps({"id": ask.id + 1, "answer": "up"}), 400), (json.dumps([1, 2]), 400),
             (json.dumps({"id": "1", "answer": "left"}), 400), ("x" * 5000, 400)]
    for body, expected in cases:
        status, reply, _ = request(page, "POST", "/api/answer", body)
        assert status == expected and json.loads(reply)["error"]
    assert request(page, "GET", "/etc/passwd")[0] == 404
    assert request(page, "GET", "/", headers={"Host": "evil.example:80"})[0] == 403
    assert page.counters == {"bad_token": 0, "bad_host": 1, "malformed": 4, "not_found": 1}
    assert page.desk.counters == {"answered": 1, "repeated": 1, "unknown": 1, "bad_answer": 1}
    assert request(page, "GET", "/api/next")[0] == 200                     # still serving


def test_off_loopback_every_request_but_the_script_needs_the_token():
    server = PageServer(Desk(), ("0.0.0.0", 0)).start()
    try:
        assert server.token and f"?token={server.token}" in server.url
        assert request(server, "GET", "/")[0] == 403
        assert request(server, "GET", "/api/next", headers={"X-Fedzo-Token": "wrong"})[0] == 403
        assert request(server, "POST", "/api/answer", "{}")[0] == 403
        assert request(server, "GET", "/page.js")[0] == 200
        assert request(server, "GET", f"/?token={server.token}")[0] == 200
        assert request(server, "GET", "/api/next", headers={"X-Fedzo-Token": server.token})[0] == 200
        assert server.counters["bad_token"] == 3
    finally:
        server.stop()


def test_an_agent_serving_the_page_does_not_load_ssl():
    # ssl costs a board about 0.9 MiB, and the page is plain HTTP (docs/human.md).
    from isolated import in_fresh_interpreter
    report = in_fresh_interpreter(
        "import fedzo.edge.commands.agent, fedzo.edge.human.person\n"
        "from fedzo.edge.human.desk import Desk\n"
        "from fedzo.edge.human.server import PageServer\n"
        "server = PageServer(Desk(), ('127.0.0.1', 0)).start()\n"
        "import http.client\n"                       # already loaded by the server, without HTTPS
        "conn = http.client.HTTPConnection(*server.address, timeout=60)\n"
        "conn.request('GET', '/api/next')\n"
        "report['status'] = conn.getresponse().status\n"
        "server.stop()\n"
        "report['ssl'] = [m for m in sys.modules if m == 'ssl' or m.startswith('_ssl')]")
    assert report == {"status": 200, "ssl": []}
