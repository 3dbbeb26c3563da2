"""Byte links used by both sides: serial ports (pyserial + ARQ) and TCP socket figures."""
