"""A person gives the preferences: clips of both batches, a page on the agent, recorded answers.

    clips.py    what a person is shown of an episode (geom poses at ~30 fps) and the model's scene
    desk.py     comparisons waiting for a person, and their answers (no I/O)
    source.py   HumanPreference: the PreferenceSource that asks the desk
    answers.py  the answers file (JSON lines)
    replay.py   ReplayPreference: a recorded answers file, given again
    payload.py  the page's JSON: a comparison out, an answer in (no I/O)
    server.py   the page's HTTP server (standard library, in a thread)
    static/     the page: one HTML file and one script, shipped in the package
"""

# A person is slow: a human run's rounds wait this long for votes unless told otherwise.
HUMAN_ROUND_TIMEOUT = 600.0
DEFAULT_PAGE = "127.0.0.1:8080"      # where the page is served unless told otherwise
DEFAULT_ANSWERS = "answers.jsonl"


def add_person_arguments(parser, title: str, page_help: str):
    """The options that make a person answer (`fedzo agent` and `fedzo simulate`): --human, --replay.

    Here, not in person.py, so that a command's --help does not import http.server.
    """
    group = parser.add_argument_group(title)
    answer = group.add_mutually_exclusive_group()
    answer.add_argument("--human", nargs="?", const=DEFAULT_PAGE, metavar="HOST:PORT",
                        help=f"{page_help} (HOST:PORT default {DEFAULT_PAGE}; an address other than "
                             "loopback needs the token printed at start)")
    answer.add_argument("--replay", metavar="FILE", help="answer from a recorded answers file instead")
    return group
