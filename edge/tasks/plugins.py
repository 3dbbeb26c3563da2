"""Where a task comes from: a task spec, as a run config's `task` and `--task` give it.

    hopper, halfcheetah, walker2d, swimmer    the built-in tasks
    package.module:Class                      a class (or any function of no arguments
                                              returning a task), imported with the
                                              current folder on sys.path
    NAME                                      a `fedzo.tasks` entry point of an installed package
    path/to/robot.xml                         an MJCF file with robot.task.json beside it

`spec_kind` tells them apart from the text alone (a run config is checked with
it); `resolve` finds the task without building it; `build` builds it and checks
the interface (interface.py). Every failure is a TaskError of one line.

An agent builds what the coordinator's Welcome names, but a Welcome can come
from any holder of the run key, so an agent imports a module or reads a file
only when it was told to itself (`fedzo agent --task SPEC`): `agent_spec`.
Built-in tasks and installed entry points are there to be built and need no
such word.
"""
import importlib
import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata

from . import TASK_NAMES as BUILTIN
from .interface import TaskError, check_task

ENTRY_POINT_GROUP = "fedzo.tasks"
MAX_SPEC_BYTES = 1024
_CLASS = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_ENTRY_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")
KINDS = ("built-in", "class", "entry point", "mjcf")
SPEC_FORMS = ("a built-in task (hopper, halfcheetah, walker2d, swimmer), package.module:Class, "
              "an installed fedzo.tasks entry point's name, or an MJCF file path ending in .xml")


@dataclass(frozen=True)
class TaskSource:
    """A resolved task spec: its kind, the name actor files record, and how to build it."""

    spec: str
    kind: str
    name: str
    factory: object        # called with no arguments, returns the task


def spec_kind(spec) -> str:
    """One of KINDS from the spec's text; ValueError naming the accepted forms."""
    if not isinstance(spec, str) or not spec or len(spec.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise ValueError(f"must be {SPEC_FORMS} (at most {MAX_SPEC_BYTES} bytes), got {spec!r}")
    if spec in BUILTIN:
        return "built-in"
    if spec.lower().endswith(".xml"):
        return "mjcf"
    if _CLASS.match(spec):
        return "class"
    if _ENTRY_NAME.match(spec):
        return "entry point"
    raise ValueError(f"must be {SPEC_FORMS}, got {spec!r}")


def resolve(spec: str) -> TaskSource:
    """Find the task `spec` names (importing a class's module); TaskError if it cannot be had."""
    try:
        kind = spec_kind(spec)
    except ValueError as exc:
        raise TaskError(f"task {exc}") from None
    if kind == "built-in":
        from . import task_class
        return TaskSource(spec, kind, spec, task_class(spec))
    if kind == "mjcf":
        from .description import read_description
        from .mjcf import MJCFTask
        if not os.path.isfile(spec):
            raise TaskError(f"no MJCF file at {spec}")
        description = read_description(spec)
        return TaskSource(spec, kind, description.name, lambda: MJCFTask(spec, description))
    factory = _load_class(spec) if kind == "class" else _load_entry_point(spec)
    name = getattr(factory, "name", None)
    return TaskSource(spec, kind, name if isinstance(name, str) and name else spec, factory)


def build(source: TaskSource):
    """A fresh task from `source`, checked against the interface (plug-ins only)."""
    if source.kind == "built-in":
        return source.factory()
    try:
        task = source.factory()
    except TaskError:
        raise
    except Exception as exc:   # noqa: BLE001 - a plug-in's own failure, said in one line
        raise TaskError(f"task {source.spec}: building it failed: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())}") from None
    return check_task(task, source.spec)


def task_name(spec: str) -> str:
    """The name actor files record for the task `spec` (a built-in's own name; a class's
    `name` attribute, else the spec; an MJCF description's `name`, else the file's stem)."""
    return resolve(spec).name


def file_label(spec: str) -> str:
    """A spec as part of a file name: a built-in's name, an MJCF file's stem, a class
    path with every character a file name should not hold replaced by '_'."""
    text = os.path.splitext(os.path.basename(spec))[0] if spec.lower().endswith(".xml") else spec
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "task"


def agent_spec(run_spec: str, local_spec: str | None) -> str:
    """What an agent builds for a run whose task is `run_spec`, given what it was told
    itself (`--task`, None if nothing): a module or a file only on its own word."""
    kind = spec_kind(run_spec)
    if kind in ("built-in", "entry point"):
        return run_spec
    if local_spec is None:
        raise TaskError(f"this run's task {run_spec} is {'a Python class' if kind == 'class' else 'an MJCF file'}; "
                        f"an agent loads one only when started with --task naming it (its own copy)")
    return local_spec


def _load_class(spec: str):
    module_name, _, path = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:          # `python -m` would have put it there; the console script does not
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TaskError(f"task {spec}: no module named {exc.name!r} (in {cwd} or the installed "
                            f"packages)") from None
        raise TaskError(f"task {spec}: importing {module_name} failed: {exc}") from None
    except Exception as exc:   # noqa: BLE001 - the module's own error, in one line
        raise TaskError(f"task {spec}: importing {module_name} failed: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())}") from None
    for part in path.split("."):
        if not hasattr(obj, part):
            raise TaskError(f"task {spec}: {module_name} has no {path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TaskError(f"task {spec}: {path} is not a class or a function")
    return obj


def _load_entry_point(spec: str):
    points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    match = [p for p in points if p.name == spec]
    if not match:
        installed = ", ".join(sorted(p.name for p in points)) or "none installed"
        raise TaskError(f"unknown task {spec!r}: not a built-in task ({', '.join(BUILTIN)}) nor an "
                        f"installed {ENTRY_POINT_GROUP} entry point ({installed})")
    try:
        obj = match[0].load()
    except Exception as exc:   # noqa: BLE001 - the package's own error, in one line
        raise TaskError(f"task {spec}: loading entry point {match[0].value} failed: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())}") from None
    if not callable(obj):
        raise TaskError(f"task {spec}: entry point {match[0].value} is not a class or a function")
    return obj
