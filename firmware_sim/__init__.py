"""Simulated boards: a real `fedzo agent` process run as if on a small board.

    profiles.py   board profiles: RAM, link (UART baud rate or Ethernet), CPU slow-down
    faults.py     seeded fault injection on a serial line: drops, bit flips, bursts, stalls, cuts
    line.py       SerialLine: two pseudo-terminals and a pacer thread at the baud rate (8N1)
    throttle.py   CpuThrottle: duty-cycle SIGSTOP/SIGCONT and nice, sampling the agent's memory
    boot.py       `python -m fedzo.firmware_sim.boot`: runs `fedzo` under the board's RAM cap
    board.py      Board: one agent process under a profile, and what it used
    simulate.py   K boards against a coordinator's server (`fedzo simulate --link serial`)
    behaviour.py  simulated liars and sleepers for fleets (`fedzo simulate --behaviour`, experiments)
    commands/     `fedzo boards`: the profiles

Nothing here is imported by an agent or by fedzo.edge.
"""
