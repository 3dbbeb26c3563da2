"""Run a `fedzo` command under a simulated board's RAM cap.

    python -m fedzo.firmware_sim.boot --ram-mb 128 --board tight -- agent --serial /dev/pts/5 ...

Sets RLIMIT_DATA (soft and hard) to the board's RAM before anything heavy is
imported, then runs `fedzo` with the arguments after `--`. RLIMIT_DATA
bounds the process's data: heap, and private writable mappings (what
malloc, NumPy and MuJoCo allocate), which is what a board's RAM must hold;
shared library code is not counted (a board pages it from storage too).
RLIMIT_AS would also count address space reserved but never used (thread
stacks, allocator arenas), which is several times the real use.

An allocation beyond the cap fails: Python raises MemoryError, MuJoCo its
FatalError, and this wrapper or `fedzo agent` prints a plain "out of memory"
line and exits with code 4. (OpenBLAS, when it cannot get its buffers while
NumPy is imported, prints its own error and exits with 1; the simulation
reads that from the log and reports it as out of memory too.)
"""
import argparse
import resource
import sys

from fedzo.edge.agent.exit_codes import EXIT_OUT_OF_MEMORY
from fedzo.edge.agent.out_of_memory import describe, is_out_of_memory


def main(argv=None) -> int:
    """Parse the board options, cap the memory, run fedzo; the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m fedzo.firmware_sim.boot --ram-mb MB [--board NAME] -- FEDZO-ARGS...",
              file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="fedzo.firmware_sim.boot")
    parser.add_argument("--ram-mb", type=int, required=True, help="the board's RAM (RLIMIT_DATA)")
    parser.add_argument("--board", default="board", help="the board's name, for messages")
    args = parser.parse_args(argv[:split])
    if args.ram_mb < 8:
        print(f"fedzo.firmware_sim.boot: --ram-mb must be at least 8, got {args.ram_mb}", file=sys.stderr)
        return 2
    limit = args.ram_mb * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    print(f"board {args.board}: RAM cap {args.ram_mb} MiB (RLIMIT_DATA)", flush=True)
    try:
        from fedzo.cli import main as fedzo_main
        return fedzo_main(argv[split + 1:])
    except Exception as exc:   # noqa: BLE001 - only to name an allocation failure
        if not is_out_of_memory(exc):
            raise
        print(f"board {args.board}: out of memory under its {args.ram_mb} MiB RAM cap ({describe(exc)})",
              file=sys.stderr, flush=True)
        return EXIT_OUT_OF_MEMORY


if __name__ == "__main__":
    sys.exit(main())
