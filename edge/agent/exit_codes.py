"""The exit codes of `fedzo agent`, which firmware_sim's boards read back.

Light on purpose: fedzo.firmware_sim.boot needs them before it caps the
memory, so nothing here imports more than the standard library.
"""

EXIT_BAD_INPUT = 2       # bad arguments or key file, or no coordinator within the time allowed
EXIT_REFUSED = 3         # the agent cannot take part (e.g. its memory budget is too small)
EXIT_OUT_OF_MEMORY = 4   # an allocation failed (a board with too little RAM)
