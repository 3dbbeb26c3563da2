"""Who answers at an agent: a person at the page, or their recorded answers (the commands' glue).

`start_person(...)` builds the preference source one or more agents share and,
for a live person, starts the page's server and says where it is.
"""
from dataclasses import dataclass

from fedzo.edge.human import DEFAULT_ANSWERS, DEFAULT_PAGE
from fedzo.edge.human.answers import AnswerLog
from fedzo.edge.human.desk import Desk
from fedzo.edge.human.replay import ReplayPreference
from fedzo.edge.human.server import DEFAULT_ADDRESS, PageServer
from fedzo.edge.human.source import HumanPreference
from fedzo.edge.links.address import parse_address



@dataclass
class Person:
    """The sources (one per agent), and the page and desk they share (None for a replay)."""

    sources: list
    server: PageServer = None
    desk: Desk = None
    log: object = print

    def stop(self) -> None:
        """Close the desk (a waiting agent gets DeskClosed) and the page; say what it refused."""
        if self.desk is not None:
            self.desk.close()
        if self.server is not None:
            self.server.stop()
            counts = {**self.desk.counters, **self.server.counters}
            refused = {what.replace("_", " "): n for what, n in counts.items() if n and what != "answered"}
            self.log(f"fedzo: the page took {counts['answered']} answers"
                     + (f" and refused {sum(refused.values())} requests ("
                        + ", ".join(f"{what}: {n}" for what, n in refused.items()) + ")" if refused else ""))


def page_address(text: str) -> tuple:
    """'HOST:PORT' -> (host, port); port 0 takes any free port (the URL printed says which)."""
    host, sep, port = text.rpartition(":")
    if sep and port == "0":
        return host.strip("[]") or DEFAULT_ADDRESS[0], 0
    return parse_address(text)


def start_person(agents: int, page=None, answers=DEFAULT_ANSWERS, replay=None, round_timeout=None,
                 log=print) -> Person:
    """`agents` sources answered at the page on `page` (HOST:PORT), or from the file `replay`."""
    if replay is not None:
        return Person([ReplayPreference(replay) for _ in range(agents)])
    desk = Desk()
    server = PageServer(desk, page_address(page or DEFAULT_PAGE)).start()
    log_file = AnswerLog(answers)
    sources = [HumanPreference(desk, log_file, round_timeout) for _ in range(agents)]
    log(f"fedzo: the comparison page is at {server.url} (answers go to {answers})")
    return Person(sources, server, desk, log)
