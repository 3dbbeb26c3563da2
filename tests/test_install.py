"""Installing fedzo where no C compiler works: the install succeeds and the fallback runs."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_install_without_a_compiler_falls_back_to_numpy(tmp_path):
    # Install from a clean copy: pip builds in the source tree, and a checkout
    # may hold build leftovers (build/, *.egg-info, the built extension).
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "*.so", "__pycache__", "runs", ".hypothesis"))
    target = tmp_path / "site"
    env = dict(os.environ, CC="/bin/false", CXX="/bin/false")
    env.pop("FEDZO_KERNEL", None)
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--target", str(target), str(source)], env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert not list((target / "edge").glob("_kernel_c*"))      # no extension was produced
    # -S and a plain path entry for site-packages: NumPy is importable, but no
    # .pth file runs, so this checkout's editable install cannot lend its extension.
    code = ("import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]); "
            "from edge import kernel; assert kernel.__file__.startswith(sys.argv[1]), kernel.__file__; "
            "print(kernel.backend()); print(kernel.backend_reason())")
    site = sysconfig.get_paths()["purelib"]
    result = subprocess.run([sys.executable, "-S", "-c", code, str(target), site], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    backend, reason = result.stdout.splitlines()
    assert backend == "numpy" and "not built" in reason
