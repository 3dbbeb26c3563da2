"""Building the C kernel: the header on its own, warnings, the cdef, the target_clones probe,
and a failed build that is recorded and shown (csrc/build_kernel.py, setup.py)."""
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cffi import FFI

# The build helpers need setuptools, as the build itself does (venvs on
# Python 3.12+ come without it).
pytest.importorskip("setuptools")
from setuptools.errors import CompileError

from fedzo.edge import kernel
from fedzo.edge.kernel import numpy_backend as kernel_numpy

ROOT = Path(__file__).resolve().parents[3]
CSRC = ROOT / "csrc"
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler on this machine")


def _load_build_kernel():
    spec = importlib.util.spec_from_file_location("fedzo_build_kernel_under_test", CSRC / "build_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bk = _load_build_kernel()


def _compile(args, cwd):
    return subprocess.run([CC, *args], cwd=cwd, capture_output=True, text=True, check=False)


def _distutils_compiler(cc=None):
    """A setuptools C compiler as build_ext would make it, with CC replaced if given."""
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler
    old = os.environ.get("CC")
    if cc is not None:
        os.environ["CC"] = cc
    try:
        compiler = new_compiler()
        customize_compiler(compiler)
    finally:
        if cc is not None:
            if old is None:
                del os.environ["CC"]
            else:
                os.environ["CC"] = old
    return compiler


def _source_copy(tmp_path):
    """The project's sources without a checkout's build products."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "*.so", "BUILD_FAILED.txt", "__pycache__",
        "runs", "experiments", ".hypothesis", ".pytest_cache"))
    return source


@pytest.fixture(params=[False, True], ids=["plain", "target_clones"])
def clone_flags(request):
    """Compiler flags for the kernel without, then with, its target_clones macro."""
    if request.param and not bk.probe_target_clones(_distutils_compiler()):
        pytest.skip("target_clones does not work with this toolchain")
    return [f"-D{bk.TARGET_CLONES_MACRO}"] if request.param else []


# ---- the header and the C file ----

@needs_cc
def test_header_stands_on_its_own(tmp_path):
    # Included first (it brings its own <stdint.h>) and twice, behind its guard.
    (tmp_path / "use.c").write_text(
        '#include "fedzo_kernel.h"\n#include "fedzo_kernel.h"\n'
        "#ifndef FEDZO_KERNEL_H\n#error no include guard\n#endif\n"
        "uint64_t first_word(void) { uint64_t w; fz_stream_words(1, 2, 3, 0, 1, &w); return w; }\n")
    result = _compile(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(CSRC), "-c", "use.c"], tmp_path)
    assert result.returncode == 0, result.stderr


@needs_cc
def test_kernel_compiles_without_warnings(tmp_path, clone_flags):
    for opt in ("-O2", "-O3"):
        result = _compile(["-std=c99", opt, "-Wall", "-Wextra", "-Werror", *clone_flags, "-c",
                           str(CSRC / "fedzo_kernel.c"), "-o", "kernel.o"], tmp_path)
        assert result.returncode == 0, result.stderr
        # the policy forward (csrc/fedzo_forward.c), with the flags its bits rest on
        result = _compile(["-std=c99", opt, "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-c",
                           str(CSRC / "fedzo_forward.c"), "-o", "forward.o"], tmp_path)
        assert result.returncode == 0, result.stderr


def test_build_flags_ask_for_warnings():
    assert {"-Wall", "-Wextra"} <= set(bk.CFLAGS)
    assert {"-Wall", "-Wextra"} <= set(bk.ffibuilder._assigned_source[3]["extra_compile_args"])


# ---- the cdef ----

def test_cdef_is_the_declarations_only():
    cdef = bk.cdef_text()
    assert not [line for line in cdef.splitlines() if line.lstrip().startswith("#")]
    ffi = FFI()
    ffi.cdef(cdef)   # cffi parses it
    declared = set(re.findall(r"\b(fz_\w+)\s*\(", cdef))
    assert declared == {"fz_stream_words", "fz_isa_available", "fz_isa_best"} | {
        f"fz_{op}_{t}" for op in ("perturb", "restore", "update", "signed_add", "quantize", "dequantize")
        for t in ("i16", "i32")} | {"fz_mlp_available", "fz_mlp_act", "fz_tanh", "fz_mlp_observe_act"}   # csrc/fedzo_forward.c


def test_cdef_refuses_a_header_it_cannot_use(tmp_path):
    header = tmp_path / "h.h"
    header.write_text("void f(void);\n")
    with pytest.raises(ValueError, match="cdef begin"):
        bk.cdef_text(header)
    header.write_text("/* cdef begin */\n#define N 3\nvoid f(void);\n/* cdef end */\n")
    with pytest.raises(ValueError, match="preprocessor"):
        bk.cdef_text(header)


# ---- the target_clones probe ----

def _glibc_x86_64_gcc():
    return (platform.system() == "Linux" and platform.machine() == "x86_64"
            and platform.libc_ver()[0] == "glibc" and CC is not None
            and "Free Software Foundation" in subprocess.run([CC, "--version"], capture_output=True,
                                                             text=True, check=False).stdout)


@pytest.mark.skipif(not _glibc_x86_64_gcc(), reason="needs gcc on x86-64 glibc Linux, where ifunc works")
def test_probe_finds_target_clones_where_ifunc_works():
    assert bk.probe_target_clones(_distutils_compiler(), bk.CFLAGS)


@needs_cc
def test_probe_says_no_where_the_toolchain_refuses(tmp_path, capfd):
    # A stand-in for musl's gcc: it compiles everything but target_clones,
    # failing with the message musl's toolchain gives.
    fake = tmp_path / "musl-like-cc"
    fake.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in *.c) if grep -q target_clones "$arg"; then\n'
        "  echo \"$arg: error: the call requires 'ifunc', which is not supported by this target\" >&2; exit 1\n"
        "fi;; esac; done\n"
        f'exec "{CC}" "$@"\n')
    fake.chmod(0o755)
    assert not bk.probe_target_clones(_distutils_compiler(str(fake)))
    assert not bk.probe_target_clones(_distutils_compiler("/bin/false"))
    assert "ifunc" not in capfd.readouterr().err   # the probe keeps its failures out of the log


@needs_cc
def test_kernel_is_bit_identical_to_numpy_with_and_without_clones(tmp_path, clone_flags):
    lib_path = tmp_path / "libfz.so"
    result = _compile([*bk.CFLAGS, "-fPIC", "-shared", *clone_flags, str(CSRC / "fedzo_kernel.c"),
                       "-o", str(lib_path), "-lm"], tmp_path)
    assert result.returncode == 0, result.stderr
    ffi = FFI()
    ffi.cdef(bk.cdef_text())
    lib = ffi.dlopen(str(lib_path))
    rng = np.random.default_rng(7)
    isas = [isa for isa in range(4) if lib.fz_isa_available(isa)]   # portable, SSE2, AVX2, NEON
    assert isas[0] == lib.FZ_ISA_PORTABLE and lib.fz_isa_best() == isas[-1]
    # A path this build or CPU lacks (and a code that names none) runs the portable loop.
    isas += [isa for isa in (*range(4), 99) if not lib.fz_isa_available(isa)]
    for dtype, fn, limit in ((np.int16, lib.fz_signed_add_i16, 2**15), (np.int32, lib.fz_signed_add_i32, 2**31)):
        ctype = "int16_t[]" if dtype == np.int16 else "int32_t[]"
        # Whole words (the cloned loop), a mid-word start, and steps that saturate
        # or leave the fast path (|delta| above the type's maximum).
        for n, offset, delta in ((4096, 0, 41), (1000, 37, -300), (777, 5, 2**20), (300, 64, -(2**31 - 1))):
            theta = rng.integers(-limit, limit, n, dtype=np.int64).astype(dtype)
            np_theta, np_saved = theta.copy(), np.empty_like(theta)
            np_sat = kernel_numpy.perturb(np_theta, 11, 3, 5, offset, delta, np_saved)
            for isa in isas:
                c_theta, c_saved = theta.copy(), np.empty_like(theta)
                sat = fn(ffi.from_buffer(ctype, c_theta), n, 11, 3, 5, offset, delta,
                         ffi.from_buffer(ctype, c_saved), isa)
                assert np.array_equal(c_theta, np_theta) and np.array_equal(c_saved, theta), isa
                assert sat == np_sat, isa


# ---- the SIMD paths on other machines: cross compilers and qemu-user ----

BATTERY = Path(__file__).with_name("isa_battery.c")
# (compiler, extra flags, emulator, the paths it has): NEON is part of aarch64; Debian's
# armhf compiler targets VFP only unless told -mfpu=neon (a Raspberry Pi 2 or later has
# it); s390x is big-endian and has only the portable loop (the byte order is the test).
CROSS = {
    "aarch64": ("aarch64-linux-gnu-gcc", [], "qemu-aarch64", "portable neon"),
    "armv7-neon": ("arm-linux-gnueabihf-gcc", ["-mfpu=neon"], "qemu-arm", "portable neon"),
    "armhf": ("arm-linux-gnueabihf-gcc", [], "qemu-arm", "portable"),         # Debian's default: no NEON
    "s390x": ("s390x-linux-gnu-gcc", [], "qemu-s390x", "portable"),
}
NEON_TARGETS = sorted(t for t, (_, _, _, paths) in CROSS.items() if "neon" in paths)
BATTERY_FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(CSRC)]


def _battery(cc, extra, out):
    result = subprocess.run([cc, *BATTERY_FLAGS, *extra, str(BATTERY), str(CSRC / "fedzo_kernel.c"),
                             "-o", str(out), "-lm"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return out


@needs_cc
def test_isa_battery_agrees_on_every_path_of_this_machine(tmp_path):
    """The C battery: every path this CPU has gives the portable path's bits and counts."""
    run = subprocess.run([str(_battery(CC, [], tmp_path / "battery"))], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith("paths: portable")
    if _glibc_x86_64_gcc():
        assert " sse2" in run.stderr
    assert len(run.stdout.splitlines()) == 600


@pytest.mark.parametrize("target", NEON_TARGETS)
def test_neon_paths_compile_without_warnings(tmp_path, target):
    cc, extra, _, _ = CROSS[target]
    if shutil.which(cc) is None:
        pytest.skip(f"no {cc} (Debian: apt-get install gcc-{cc.rsplit('-', 1)[0]})")
    result = subprocess.run([cc, *BATTERY_FLAGS, *extra, "-O3", "-dM", "-E", str(CSRC / "fedzo_kernel.c")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "#define FZ_HAVE_NEON 1" in result.stdout        # the NEON path is the one compiled
    result = subprocess.run([cc, *BATTERY_FLAGS, *extra, "-O3", "-c", str(CSRC / "fedzo_kernel.c"),
                             "-o", str(tmp_path / "k.o")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _native_battery_output(tmp_path, extra=(), name="native") -> str:
    run = subprocess.run([str(_battery(CC, list(extra), tmp_path / name))], capture_output=True, text=True,
                         check=False, timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.slow
@needs_cc
@pytest.mark.parametrize("target", sorted(CROSS))
def test_the_battery_is_bit_identical_under_qemu(tmp_path, target):
    """The battery built for another machine and run under qemu-user: there, every path agrees
    with the portable one (NEON on ARM), and they print the same lines as this machine's build
    (element-wise hashes), big-endian s390x included."""
    cc, extra, emulator, paths = CROSS[target]
    missing = [tool for tool in (cc, emulator) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (Debian: qemu-user, gcc-aarch64-linux-gnu, "
                    "gcc-arm-linux-gnueabihf, gcc-s390x-linux-gnu)")
    native = _native_battery_output(tmp_path)
    cross = _battery(cc, [*extra, "-static"], tmp_path / f"battery-{target}")
    run = subprocess.run([emulator, str(cross)], capture_output=True, text=True, check=False, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[0] == f"paths: {paths}"
    assert run.stdout == native


@needs_cc
def test_the_portable_multiply_gives_the_int128_bits(tmp_path):
    """Compilers without a 128-bit type take the schoolbook 64x64 product: built that way
    (-DFZ_NO_INT128), the battery prints what the usual build does."""
    defines = subprocess.run([CC, *BATTERY_FLAGS, "-DFZ_NO_INT128", "-dM", "-E", str(CSRC / "fedzo_kernel.c")],
                             capture_output=True, text=True, check=False)
    assert "#define FZ_WIDE_MULTIPLY 0" in defines.stdout              # the other product is the one built
    assert _native_battery_output(tmp_path, ["-DFZ_NO_INT128"], "portable-multiply") == \
        _native_battery_output(tmp_path)


@pytest.mark.slow
@needs_cc
def test_the_battery_is_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    """Every path, built with ASan and UBSan (any report aborts), prints the usual lines."""
    sanitized = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    probe = subprocess.run([CC, *sanitized, "-x", "c", "-", "-o", str(tmp_path / "probe")],
                           input="int main(void){return 0;}", capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"{CC} cannot build with the sanitizers here: {probe.stderr.strip()[:200]}")
    assert _native_battery_output(tmp_path, sanitized, "sanitized") == _native_battery_output(tmp_path)


# ---- a failed build: summary, record, fallback ----

def test_failure_summary_names_the_compiler_error():
    output = ("gcc -c build/x.c -o build/x.o\n"
              "build/x.c:57:10: fatal error: Python.h: No such file or directory\n"
              "   57 | #include <Python.h>\ncompilation terminated.\n")
    try:
        try:
            subprocess.run(["/bin/false", "-c", "x.c"], check=True)
        except subprocess.CalledProcessError as exc:
            raise CompileError(str(exc)) from exc   # what recent setuptools raises
    except CompileError as exc:
        summary = bk.failure_summary(exc, output)
    assert summary.splitlines() == ["CompileError: command '/bin/false' failed with exit code 1",
                                    "build/x.c:57:10: fatal error: Python.h: No such file or directory"]
    # No "error" line: the compiler's last lines; long lines are cut in the middle.
    summary = bk.failure_summary(OSError("x" * 1000), "first\nsecond\nthird\n")
    head, *rest = summary.splitlines()
    assert len(head) <= 300 and head.endswith("xxx") and rest == ["second", "third"]


def test_build_optional_records_a_missing_compiler_and_clears_it_after(tmp_path):
    out, stale = tmp_path / "out", tmp_path / "_kernel_c.so"
    stale.write_bytes(b"old build")

    def broken():   # a compiler, a child process, complains on its stderr and fails
        subprocess.run(["sh", "-c", "echo 'x.c:1: error: no compiler worth the name' >&2"], check=False)
        raise CompileError("command 'cc' failed with exit code 1")

    summary = bk.build_optional(broken, [out], stale=[stale])
    assert "no compiler worth the name" in summary
    assert (out / bk.FAILURE_RECORD).read_text() == summary + "\n"
    assert not stale.exists()      # an old build would go on loading
    assert bk.build_optional(lambda: None, [out]) is None
    assert not (out / bk.FAILURE_RECORD).exists()


def test_build_optional_lets_real_bugs_raise(tmp_path):
    def buggy():
        raise KeyError("a bug in the build, not a missing compiler")

    with pytest.raises(KeyError):
        bk.build_optional(buggy, [tmp_path])
    assert not (tmp_path / bk.FAILURE_RECORD).exists()


def test_require_kernel_turns_the_fallback_into_an_error(tmp_path, monkeypatch):
    def broken():
        raise CompileError("command 'cc' failed with exit code 1")

    monkeypatch.setenv("FEDZO_REQUIRE_KERNEL", "1")
    assert bk.kernel_required()
    with pytest.raises(CompileError, match="FEDZO_REQUIRE_KERNEL"):
        bk.build_optional(broken, [tmp_path], require=bk.kernel_required())
    assert not (tmp_path / bk.FAILURE_RECORD).exists()
    monkeypatch.setenv("FEDZO_REQUIRE_KERNEL", "0")
    assert not bk.kernel_required()


def test_the_kernel_reads_the_file_the_build_writes():
    assert kernel.BUILD_FAILURE_FILE.name == bk.FAILURE_RECORD


def test_failed_build_is_shown_by_info_and_agent(tmp_path):
    # setup.py's own build_ext with a compiler that always fails, then the
    # built package (pure Python plus the record) run from outside the checkout.
    source = _source_copy(tmp_path)
    env = dict(os.environ, CC="/bin/false")
    for name in ("FEDZO_KERNEL", "FEDZO_REQUIRE_KERNEL"):
        env.pop(name, None)
    build = subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", str(tmp_path / "build"),
                            "--build-lib", str(tmp_path / "lib")], cwd=source, env=env,
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    record = tmp_path / "lib" / "fedzo" / "edge" / "kernel" / bk.FAILURE_RECORD
    assert "/bin/false" in record.read_text()
    assert not list(record.parent.glob("_kernel_c*"))

    def fedzo(*args):
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import fedzo; "
                "assert fedzo.__file__.startswith(sys.argv[1]), fedzo.__file__; "
                "from fedzo.cli import main; sys.exit(main(sys.argv[2:]))")
        return subprocess.run([sys.executable, "-c", code, str(tmp_path / "lib"), *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, check=False)

    info = fedzo("info")
    assert info.returncode == 0, info.stderr
    assert ("kernel backend: numpy (the C kernel failed to build: CompileError: "
            "command '/bin/false' failed with exit code 1") in info.stdout
    agent = fedzo("agent", "--connect", "127.0.0.1:9", "--key-file", str(tmp_path / "no.key"))
    first = agent.stderr.splitlines()[0]
    assert first.startswith("fedzo agent: warning: running on the NumPy fallback: the C kernel failed to build: ")


def test_failed_in_place_build_removes_the_stale_extension(tmp_path):
    # `pip install -e` builds in place: an old extension left in edge/kernel/
    # would go on loading while the record says the build failed.
    source = _source_copy(tmp_path)
    stale = source / "edge" / "kernel" / "_kernel_c.abi3.so"
    stale.write_bytes(b"an old build")
    env = dict(os.environ, CC="/bin/false")
    env.pop("FEDZO_REQUIRE_KERNEL", None)
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=source, env=env,
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    assert not stale.exists()
    assert "/bin/false" in (source / "edge" / "kernel" / bk.FAILURE_RECORD).read_text()
