"""Board profiles: what a simulated board has (RAM, link, CPU speed).

A profile's RAM is the memory the agent process may use for its data: the
board runs the agent with RLIMIT_DATA at that size (see boot.py), so an
allocation beyond it fails as it would on the board. The CPU factor is how
many times slower than this machine the board computes; it is approximated
by throttle.py (duty-cycle stopping), and 1 turns it off.

The numbers describe the kind of board, not a measured one: a Raspberry Pi
Zero 2 W has 512 MB and a 1 GHz Cortex-A53 (roughly six times slower than a
laptop core for this workload's single-threaded Python and MuJoCo); a
Raspberry Pi 4 has 1-8 GB, Gigabit Ethernet and a 1.5 GHz Cortex-A72.
"""
from dataclasses import asdict, dataclass, replace

LINKS = ("uart", "ethernet")


class ProfileError(ValueError):
    """An unknown profile or a bad override; the text lists what is accepted."""


@dataclass(frozen=True)
class BoardProfile:
    """One kind of board."""

    name: str
    description: str
    ram_mb: int                 # memory for the agent process (RLIMIT_DATA)
    link: str                   # "uart" (a serial line) or "ethernet" (TCP)
    baud: int = 0               # uart: line speed, 8N1
    ethernet_mbps: int = 0      # ethernet: nominal speed (loopback TCP is not paced)
    cpu_factor: float = 1.0     # times slower than this machine (1: no slow-down)

    def __post_init__(self):
        if self.link not in LINKS:
            raise ProfileError(f"link must be one of {', '.join(LINKS)}, got {self.link!r}")
        if not isinstance(self.ram_mb, int) or self.ram_mb < 8:
            raise ProfileError(f"ram_mb must be an integer of at least 8, got {self.ram_mb!r}")
        if self.link == "uart" and not 50 <= self.baud <= 20_000_000:
            raise ProfileError(f"a uart board needs a baud rate between 50 and 20000000, got {self.baud!r}")
        if not 1.0 <= self.cpu_factor <= 100.0:
            raise ProfileError(f"cpu_factor must be between 1 and 100, got {self.cpu_factor!r}")

    @property
    def serial(self) -> bool:
        """True when the board talks over a serial line."""
        return self.link == "uart"

    def link_text(self) -> str:
        """'UART 115200 baud 8N1' or 'Ethernet 1000 Mbit/s'."""
        return f"UART {self.baud} baud 8N1" if self.serial else f"Ethernet {self.ethernet_mbps} Mbit/s"

    def with_overrides(self, *, ram_mb=None, baud=None, cpu_factor=None) -> "BoardProfile":
        """The same board with some numbers changed (None keeps them)."""
        changes = {k: v for k, v in (("ram_mb", ram_mb), ("baud", baud), ("cpu_factor", cpu_factor))
                   if v is not None}
        if "baud" in changes and not self.serial:
            raise ProfileError(f"{self.name} is an Ethernet board: a baud rate does not apply")
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {p.name: p for p in (
    BoardProfile("pi-zero-2w", "Raspberry Pi Zero 2 W-like: 512 MB, quad Cortex-A53 1 GHz, UART",
                 ram_mb=512, link="uart", baud=115200, cpu_factor=6.0),
    BoardProfile("pi4", "Raspberry Pi 4-like: 2 GB, quad Cortex-A72 1.5 GHz, Gigabit Ethernet",
                 ram_mb=2048, link="ethernet", ethernet_mbps=1000, cpu_factor=3.0),
    BoardProfile("tight", "a tight board: 128 MB, slow CPU, a 9600-baud radio or cable",
                 ram_mb=128, link="uart", baud=9600, cpu_factor=10.0),
)}
DEFAULT_PROFILE = "pi-zero-2w"


def get_profile(name: str) -> BoardProfile:
    """The profile called name, or ProfileError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown board {name!r}; known boards: {', '.join(PROFILES)} "
                           "(`fedzo boards` describes them)") from None
