"""Telling an allocation failure from other errors, in an exception or in a log.

Under a RAM cap (a small board, or firmware_sim's limit) an allocation can
fail in Python (MemoryError), in MuJoCo (its FatalError, "could not allocate
memory"), in the C library ("Cannot allocate memory") or in OpenBLAS ("memory
allocation", "failed to map segment"). `fedzo agent` and firmware_sim's boot
wrapper then print an "out of memory" line, and a board reads its log back.
Standard library only, like exit_codes.py, for the same reason.
"""

# Lower-case texts of an allocation failure's message.
ALLOCATION_FAILURE_TEXTS = ("allocate memory", "memory allocation", "failed to map segment")
# ... and in a log also our own "out of memory" lines and a MemoryError traceback.
LOG_TEXTS = ("out of memory", "memoryerror") + ALLOCATION_FAILURE_TEXTS


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocation failure: MemoryError, or MuJoCo's or a C library's own."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(marker in text for marker in ALLOCATION_FAILURE_TEXTS)


def log_says_out_of_memory(lines) -> bool:
    """True if any of these log lines reports an allocation failure."""
    return any(marker in line.lower() for line in lines for marker in LOG_TEXTS)


def describe(exc: BaseException) -> str:
    """'Type: message', or the type alone when the exception has no message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
