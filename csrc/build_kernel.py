"""cffi build script for fedzo's C kernel (API mode), and the helpers setup.py's build uses.

setup.py names `ffibuilder` in `cffi_modules`; its build_ext then calls
`probe_target_clones` and `build_optional` from here. Running this file directly
(`python csrc/build_kernel.py`) builds the extension into edge/kernel/, which is
handy while working on the C code.

What happens when the kernel cannot be built (no compiler, a broken one, no
Python headers): the install still succeeds and fedzo runs on its NumPy
fallback, but the build writes the reason to FAILURE_RECORD next to the
extension, so the installed package carries it and `fedzo info` / `fedzo agent`
show it. pip cannot show it at install time: at its default verbosity pip
hides everything a build backend prints unless the build fails (only `pip -v`
shows it). FEDZO_REQUIRE_KERNEL=1 is the way to hear about it at install time:
the build then fails, and pip prints the reason.
"""
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from cffi import FFI
from setuptools.errors import CompileError, ExecError, LinkError, PlatformError

HERE = pathlib.Path(__file__).resolve().parent
HEADER = HERE / "fedzo_kernel.h"
# setuptools wants paths relative to setup.py's folder (the project root).
SRC = "csrc"
MODULE = "fedzo.edge.kernel._kernel_c"

# -O3 lets gcc/clang vectorise the per-word loops; -Wall -Wextra because the
# kernel is kept warning-free (tests/edge/kernel/test_build.py compiles it with
# -Werror). FEDZO_CFLAGS adds flags (for example -march=native when building on
# the board that runs it). -ffp-contract=off: no fused multiply-adds, which
# would change the policy forward's bits from one CPU to another
# (csrc/fedzo_forward.c).
CFLAGS = ["-O3", "-std=c99", "-Wall", "-Wextra", "-ffp-contract=off"]

# Defined for the kernel only when probe_target_clones succeeds (see fedzo_kernel.c).
TARGET_CLONES_MACRO = "FEDZO_HAVE_TARGET_CLONES"

# Written next to the extension when its build fails, removed when it succeeds;
# fedzo.edge.kernel reads it (and names the same file).
FAILURE_RECORD = "BUILD_FAILED.txt"

# The errors that mean "no usable compiler here": a compiler or linker that
# fails or cannot run, or a platform setuptools cannot compile on. Anything
# else (a bad setup, a cffi error in the declarations) is a bug and must raise.
NO_COMPILER_ERRORS = (CompileError, LinkError, ExecError, PlatformError, OSError)

_CDEF_BEGIN, _CDEF_END = "/* cdef begin */", "/* cdef end */"

_PROBE_SOURCE = """\
__attribute__((target_clones("avx2", "default")))
static int fz_probe_twice(int x) { return 2 * x; }
int main(void) { return fz_probe_twice(1) == 2 ? 0 : 1; }
"""


def cdef_text(header=HEADER) -> str:
    """The declarations cffi must see: the header's text between its cdef markers.

    cffi's parser cannot read preprocessor lines, so the header keeps its
    include guard and #include outside the markers; a `#` line between them
    is an error here rather than a puzzling one from cffi.
    """
    text = pathlib.Path(header).read_text()
    begin, end = text.find(_CDEF_BEGIN), text.find(_CDEF_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{header}: no {_CDEF_BEGIN!r} ... {_CDEF_END!r} section")
    body = text[begin + len(_CDEF_BEGIN):end]
    if any(line.lstrip().startswith("#") for line in body.splitlines()):
        raise ValueError(f"{header}: a preprocessor line between the cdef markers; cffi cannot parse it")
    return body


def compile_args() -> list:
    """CFLAGS plus what FEDZO_CFLAGS adds."""
    return CFLAGS + os.environ.get("FEDZO_CFLAGS", "").split()


def make_builder(define_macros=(), src=SRC) -> FFI:
    """The cffi builder of the kernel module, with extra (name, value) C macros.

    `src` is the csrc folder as the build will see it: relative to the project
    root for setuptools, absolute for `build_in_place`.
    """
    builder = FFI()
    builder.cdef(cdef_text())
    builder.set_source(
        MODULE,
        '#include "fedzo_kernel.h"',
        sources=[f"{src}/fedzo_kernel.c", f"{src}/fedzo_forward.c"],
        include_dirs=[str(src)],
        libraries=["m"],
        define_macros=list(define_macros),
        extra_compile_args=compile_args(),
    )
    return builder


# Built without the target_clones macro: cffi reads this at setup time, when
# no compiler has been chosen yet; setup.py's build_ext adds the macro.
ffibuilder = make_builder()


class _Captured:
    text = ""


@contextlib.contextmanager
def captured_stderr(echo=True):
    """Collect what is written to file descriptor 2 during the block (into `.text`).

    The compiler is a child process writing to fd 2, so swapping sys.stderr
    would not catch it. With `echo`, the text is written back to stderr
    afterwards (also when the block raises), so nothing is lost from the log.
    """
    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace")
            if echo and captured.text:
                sys.stderr.write(captured.text)
                sys.stderr.flush()


def probe_target_clones(compiler, extra_args=()) -> bool:
    """True if `compiler` (a setuptools CCompiler) compiles and links a program using target_clones.

    The attribute needs ifunc support from the compiler, the linker and the C
    library (glibc has it; musl, macOS and Windows do not); only trying it
    tells. The probe's own compiler messages are kept out of the build log.
    """
    with tempfile.TemporaryDirectory(prefix="fedzo-probe-") as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(_PROBE_SOURCE)
        try:
            with captured_stderr(echo=False):
                objects = compiler.compile([source], output_dir=tmp, extra_postargs=list(extra_args))
                compiler.link_executable(objects, "probe", output_dir=tmp)
        except NO_COMPILER_ERRORS:
            return False
    return True


def kernel_required() -> bool:
    """True when FEDZO_REQUIRE_KERNEL asks for the build to fail rather than fall back to NumPy."""
    return os.environ.get("FEDZO_REQUIRE_KERNEL", "").strip() not in ("", "0")


def failure_summary(exc, compiler_output="", max_lines=2) -> str:
    """A short account of a failed build: the exception, then up to `max_lines` compiler lines.

    The compiler's first error lines name the cause (for example a missing
    Python.h); without any, its last lines are the best there is.
    """
    lines = [line.strip() for line in compiler_output.splitlines() if line.strip()]
    chosen = [line for line in lines if "error" in line.lower()][:max_lines] or lines[-max_lines:]
    return "\n".join(_shorten(line) for line in [f"{type(exc).__name__}: {_describe(exc)}"] + chosen)


def _describe(exc) -> str:
    """The exception's message, without the full compiler command line setuptools may put in it."""
    cause, seen = exc, set()
    while cause is not None and id(cause) not in seen and not isinstance(cause, subprocess.CalledProcessError):
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if id(cause) in seen:
        cause = None
    if cause is not None:
        program = cause.cmd[0] if isinstance(cause.cmd, (list, tuple)) else str(cause.cmd).split()[0]
        return f"command {str(program)!r} failed with exit code {cause.returncode}"
    return str(exc)


def _shorten(line, limit=300) -> str:
    """`line` cut in the middle to at most `limit` characters (its end often says the most)."""
    return line if len(line) <= limit else f"{line[:limit // 2 - 3]} ... {line[-(limit // 2 - 2):]}"


def build_optional(build, record_dirs, *, require=False, stale=()):
    """Run `build()`; if it fails for want of a usable compiler, record why and carry on.

    On success any old FAILURE_RECORD in `record_dirs` is removed and None is
    returned. On a NO_COMPILER_ERRORS failure the summary is written to
    FAILURE_RECORD in each of `record_dirs`, the files in `stale` (an old
    build of the extension that would otherwise go on loading) are deleted,
    and the summary is returned; with `require` the failure is raised instead.
    Any other exception is a bug and propagates.
    """
    with captured_stderr() as captured:
        try:
            build()
            failure = None
        except NO_COMPILER_ERRORS as exc:
            failure = exc
    if failure is None:
        for folder in record_dirs:
            pathlib.Path(folder, FAILURE_RECORD).unlink(missing_ok=True)
        return None
    summary = failure_summary(failure, captured.text)
    if require:
        raise CompileError("fedzo's C kernel failed to build and FEDZO_REQUIRE_KERNEL is set "
                           "(unset it to install with the NumPy fallback):\n" + summary) from failure
    for folder in record_dirs:
        os.makedirs(folder, exist_ok=True)
        pathlib.Path(folder, FAILURE_RECORD).write_text(summary + "\n")
    for path in stale:
        pathlib.Path(path).unlink(missing_ok=True)
    print(f"WARNING: fedzo's C kernel was not built; fedzo will run on its NumPy fallback.\n{summary}",
          file=sys.stderr)
    return summary


def build_in_place() -> pathlib.Path:
    """Build the extension into edge/kernel/ of this checkout, as an editable install would.

    A developer's shortcut while working on the C code (no pip, no isolated
    build environment); the intermediate files go to build/cffi-in-place/.
    Returns the extension's path.
    """
    # setuptools, imported above, makes `distutils` its own copy (Python 3.12 has none).
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    found = probe_target_clones(compiler, compile_args())
    print(f"target_clones probe: {'yes' if found else 'no'}")
    builder = make_builder([(TARGET_CLONES_MACRO, "1")] if found else [], src=HERE)
    tmpdir = HERE.parent / "build" / "cffi-in-place"
    built = pathlib.Path(builder.compile(tmpdir=str(tmpdir), verbose=True))
    package_dir = HERE.parent / "edge" / "kernel"
    target = package_dir / built.name
    shutil.copyfile(built, target)
    (package_dir / FAILURE_RECORD).unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    print(build_in_place())
