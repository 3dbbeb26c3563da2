"""cffi build script for fedzo's C kernel (API mode).

setup.py names `ffibuilder` in `cffi_modules`; running this file directly
builds the extension in place, which is handy while working on the C code.
"""
import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
# setuptools wants paths relative to setup.py's folder (the project root).
SRC = "csrc"

ffibuilder = FFI()
ffibuilder.cdef((HERE / "fedzo_kernel.h").read_text())
ffibuilder.set_source(
    "fedzo.edge.kernel._kernel_c",
    '#include "fedzo_kernel.h"',
    sources=[f"{SRC}/fedzo_kernel.c"],
    include_dirs=[SRC],
    libraries=["m"],
    # -O3 lets gcc/clang vectorise the per-word loops. FEDZO_CFLAGS adds flags
    # (for example -march=native when building on the board that runs it).
    extra_compile_args=["-O3", "-std=c99"] + os.environ.get("FEDZO_CFLAGS", "").split(),
)

if __name__ == "__main__":
    os.chdir(HERE.parent)  # the relative paths above start at the project root
    ffibuilder.compile(tmpdir=".", verbose=True)
