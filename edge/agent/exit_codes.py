"""The exit codes of `fedzo agent`, which firmware_sim's boards read back.

    0  the run ended and this agent took part to its end
    2  bad arguments or an unusable key file (a hex key that lost a digit,
       mode 0644, ...): nothing was sent
    3  refused: the coordinator does not accept this key (wrong key or
       another run's), speaks another protocol version, is full, or has no
       such agent id; or it revoked this agent's own key (at a join, or
       by excluding the connected agent); or this agent's memory budget cannot hold the run
       (decided before it takes a slot). The line before says which.
    4  out of memory: an allocation failed (a board with too little RAM)
    5  gave up: no answer from the coordinator for --reconnect-seconds
       (nothing listens at the address, or it went away and did not return)

Light on purpose: fedzo.firmware_sim.boot needs them before it caps the
memory, so nothing here imports more than the standard library.
"""

EXIT_BAD_INPUT = 2       # bad arguments or key file
EXIT_REFUSED = 3         # refused by the coordinator, or the memory budget is too small
EXIT_OUT_OF_MEMORY = 4   # an allocation failed (a board with too little RAM)
EXIT_GAVE_UP = 5         # no answer from the coordinator within --reconnect-seconds
