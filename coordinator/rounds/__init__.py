"""The coordinator's round state machine: messages in, messages out, no I/O."""
