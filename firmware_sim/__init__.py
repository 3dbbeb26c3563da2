"""Simulated boards: a real `fedzo agent` process run as if on a small board.

    profiles.py   board profiles: RAM, link (UART baud rate or Ethernet), CPU slow-down
    faults.py     seeded fault injection on a serial line: drops, bit flips, bursts, stalls, cuts
    line.py       SerialLine: two pseudo-terminals and a pacer thread at the baud rate (8N1)
    throttle.py   CpuThrottle: duty-cycle SIGSTOP/SIGCONT and nice, sampling the agent's memory
    boot.py       `python -m firmware_sim.boot`: runs `fedzo` under the board's RAM cap
    board.py      Board: one agent process under a profile, and what it used
    cmd_boards.py `fedzo boards`: the profiles

`fedzo simulate --link serial --board NAME` (coordinator/sim_boards.py)
puts K boards against a coordinator. Nothing here is imported by an agent.
"""
