"""Only here for cffi: the C kernel cannot be declared in pyproject.toml alone.

The build of the extension is optional: if no usable compiler is found, the
install still succeeds, fedzo runs on its NumPy fallback, and the reason is
recorded in the installed package (fedzo/edge/kernel/BUILD_FAILED.txt), which
`fedzo info` and `fedzo agent` print. pip hides a successful build's output
at its default verbosity, so set FEDZO_REQUIRE_KERNEL=1 to make a failed
kernel build fail the install instead. The helpers are in csrc/build_kernel.py.
"""
import importlib.util
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

# csrc/ is not a package: load the build helpers from their file (cffi runs
# the same file again for `cffi_modules`, which only costs a cdef parse).
_spec = importlib.util.spec_from_file_location("fedzo_build_kernel", os.path.join("csrc", "build_kernel.py"))
kernel_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kernel_build)


class OptionalBuildExt(build_ext):
    """build_ext that records a failed kernel build and goes on without it."""

    def run(self):
        # setuptools clears `inplace` while it builds; remember whether the
        # extension also goes into the source tree (editable installs).
        self._into_source = bool(self.inplace or getattr(self, "editable_mode", False))
        super().run()

    def build_extension(self, ext):
        require = kernel_build.kernel_required()
        # Optional, so an editable install does not try to copy a missing file.
        ext.optional = not require
        if kernel_build.probe_target_clones(self.compiler, ext.extra_compile_args):
            ext.define_macros.append((kernel_build.TARGET_CLONES_MACRO, "1"))
        built = self.get_ext_fullpath(ext.name)
        record_dirs, stale = [os.path.dirname(built)], [built]
        if getattr(self, "_into_source", False):
            package = ext.name.rpartition(".")[0]
            source_dir = self.get_finalized_command("build_py").get_package_dir(package)
            record_dirs.append(source_dir)
            stale.append(os.path.join(source_dir, os.path.basename(built)))
        kernel_build.build_optional(lambda: super(OptionalBuildExt, self).build_extension(ext),
                                    record_dirs, require=require, stale=stale)


setup(
    cffi_modules=["csrc/build_kernel.py:ffibuilder"],
    cmdclass={"build_ext": OptionalBuildExt},
)
