"""A run's start beside its fine-tuned theta, as one HTML file drawn by the comparison page's code.

`fedzo eval --run RUN_DIR --html FILE` writes it: the same evaluation episodes
(the same reset seeds) under the run's starting theta on the left and its
trained theta on the right, recorded as clips (edge/human/clips.py) and drawn by
the human-preference page's own script (edge/human/static/page.js), not a copy
of it. The page asks its agent for the comparison to show (`fetch("api/next")`);
here a few lines placed before it answer from the clips embedded in the file,
so it opens from disk with no server and fetches nothing. The answer buttons
and the round's status are hidden: nobody is asked anything.
"""
from pathlib import Path
from types import SimpleNamespace

from fedzo.edge import human
from fedzo.edge.human.clips import ClipRecorder
from fedzo.edge.human.payload import comparison_json
from fedzo.edge.policy.rollout import run_episode_recorded

STATIC = Path(human.__file__).resolve().parent / "static"      # the page's own files

# Answers what page.js asks its agent: the one comparison, and after that only that it has it.
_FETCH_STUB = """
const REPLAY = %s;
window.fetch = async (url) => ({ ok: true, json: async () => ({ waiting: 0, answered: 0, id: REPLAY.id,
  seconds_left: null, comparison: String(url).includes("have=") ? null : REPLAY }) });
"""
_HIDE = "#answers, #status, #message { display: none; }"


def record(task, policy, seeds) -> tuple:
    """(clips, returns) of one episode per seed under `policy`, and the recorder's scene."""
    recorder = ClipRecorder(task)
    clips, returns = [], []
    for seed in seeds:
        total, _, clip = run_episode_recorded(task, policy, seed, recorder)
        clips.append(clip)
        returns.append(total)
    return clips, returns, recorder.scene


def replay_html(title: str, captions: tuple, scene: dict, left: list, right: list) -> str:
    """The page with both sides' clips embedded (captions: the left and the right side's)."""
    ask = SimpleNamespace(id=1, where=SimpleNamespace(agent=0, round=0, comparison=0), scene=scene,
                          left=left, right=right, encoded=None)
    data = comparison_json(ask).decode("ascii")
    page = (STATIC / "page.html").read_text()
    script = (STATIC / "page.js").read_text()
    for old, new in (("<h1>Which side moves better?</h1>", f"<h1>{_escape(title)}</h1>"),
                     ("<figcaption>left</figcaption>", f"<figcaption>{_escape(captions[0])}</figcaption>"),
                     ("<figcaption>right</figcaption>", f"<figcaption>{_escape(captions[1])}</figcaption>"),
                     ("</style>", f"  {_HIDE}\n</style>"),
                     ('<script src="page.js"></script>',
                      f"<script>{_FETCH_STUB % data}</script>\n<script>\n{_script_text(script)}</script>")):
        if old not in page:
            raise ValueError(f"{STATIC / 'page.html'} no longer holds {old!r}; replay_page.py needs it")
        page = page.replace(old, new, 1)
    return page


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _script_text(script: str) -> str:
    """Script text that cannot end its <script> element early."""
    return script.replace("</", "<\\/")


def write_replay(path, title, captions, scene, left, right) -> None:
    """replay_html, written to `path`."""
    Path(path).write_text(replay_html(title, captions, scene, left, right), encoding="utf-8")

