"""The agent: its protocol state machine, its TCP and serial loops, its memory figures."""
