"""Taking a folder for a new run: never over another run unless asked, nothing left if setting up fails.

`new_run_folder(out, overwrite)` is a context manager around a command's
set-up (config, key, the Run's first files and evaluation, the bound
address). It refuses a folder that already holds a run (any of RUN_FILES)
unless `overwrite`, which first removes that run's files. If the set-up
raises (an address in use, a missing actor, Ctrl-C), whatever it made goes:
a folder it created is removed, a folder that existed gets its run files
removed, and so do the extra files it names in the yielded list (a new
--key-file). Once the run is serving, the folder is the run's: a later
failure leaves it as it is, resumable.
"""
import shutil
from contextlib import contextmanager
from pathlib import Path

from fedzo.coordinator.run.folder import RUN_FILES, RUN_KEY, holds_run

NULL_CONTROL = "null-control"           # `fedzo simulate --with-null` writes its run here
PATTERNS = ("*.tmp", "agent-*.log", "*-return-vs-*.png")   # also a run's, besides RUN_FILES


class FolderHoldsRun(ValueError):
    """--out names a folder that already holds a run."""


def clear_run(path: Path) -> None:
    """Remove a run's files from the folder at path (nothing else in it)."""
    for name in (*RUN_FILES, RUN_KEY):
        (path / name).unlink(missing_ok=True)
    for pattern in PATTERNS:
        for file in path.glob(pattern):
            file.unlink(missing_ok=True)
    if holds_run(path / NULL_CONTROL):
        shutil.rmtree(path / NULL_CONTROL)


@contextmanager
def new_run_folder(out, overwrite=False, command="fedzo coordinator"):
    """Yield a list for extra files the set-up creates; see the module docstring."""
    out = Path(out)
    if holds_run(out) and not overwrite:
        raise FolderHoldsRun(f"--out {out} already holds a run; `fedzo coordinator --resume {out}` "
                             f"continues it, `{command} --overwrite` replaces it")
    existed = out.exists()
    top = out.resolve()                 # the topmost folder the set-up will create
    while not top.parent.exists():
        top = top.parent
    if existed and overwrite:
        clear_run(out)
    made = []
    try:
        yield made
    except BaseException:
        if existed:
            clear_run(out)
        else:
            shutil.rmtree(top, ignore_errors=True)
        for path in made:
            Path(path).unlink(missing_ok=True)
        raise
