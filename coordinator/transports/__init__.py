"""How messages reach the round state machine: the server loop (TCP, serial) and in-process agents."""
