"""Installing fedzo as a user would: from its source distribution, into fresh virtual environments.

Every test here is marked slow: they create virtual environments, fetch
packages from the package index (build, numpy, cffi, and setuptools, wheel
and cffi for each isolated build environment pip sets up) and compile the
kernel three times. With a warm pip cache they took 45 to 75 s together on a
2-core machine, longer with a cold one, and without the index they cannot run.
Run them with `pytest -m slow`.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ("edge/tasks/models/*.xml", "edge/policy/actors/*.npz", "edge/human/static/*.html",
                "edge/human/static/*.js")
# The runtime dependencies `fedzo info` needs; the simulator's (mujoco) are
# left out to keep the download small.
RUNTIME = ("numpy", "cffi")

pytestmark = pytest.mark.slow


def _run(args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _clean_env(**extra):
    """os.environ without fedzo's own switches, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("FEDZO_KERNEL", "FEDZO_REQUIRE_KERNEL")}
    return {**env, **extra}


def _venv(path, *packages):
    """A new virtual environment at `path` with `packages` installed; its bin folder."""
    _run([sys.executable, "-m", "venv", path])
    bin_dir = Path(path) / ("Scripts" if os.name == "nt" else "bin")
    if packages:
        _run([bin_dir / "python", "-m", "pip", "install", "--quiet", *packages])
    return bin_dir


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(sdist, wheel, tools): `python -m build` run on a clean copy of the sources.

    build makes the sdist, then the wheel from the unpacked sdist, so a file
    the sdist lacks fails the wheel. `tools` is the bin folder of a scratch
    venv holding build (not one of the project's dependencies).
    """
    root = tmp_path_factory.mktemp("dists")
    # A clean copy: a checkout may hold build leftovers (build/, *.egg-info,
    # the in-place extension, a failure record).
    source = root / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "*.so", "BUILD_FAILED.txt", "__pycache__",
        "runs", "experiments", ".hypothesis", ".pytest_cache"))
    tools = _venv(root / "tools", "build")
    _run([tools / "python", "-m", "build", "--outdir", root / "dist", source], env=_clean_env())
    (sdist,), (wheel,) = (root / "dist").glob("*.tar.gz"), (root / "dist").glob("*.whl")
    return sdist, wheel, tools


def _installed(bin_dir, cwd):
    """(the package folder, `fedzo info`'s output) in the venv of `bin_dir`, run from `cwd`.

    `cwd` is outside the checkout, so its folders cannot stand in for the
    installed package.
    """
    code = "import os, fedzo; print(os.path.dirname(fedzo.__file__))"
    package = Path(_run([bin_dir / "python", "-c", code], cwd=cwd, env=_clean_env()).stdout.strip())
    info = _run([bin_dir / "fedzo", "info"], cwd=cwd, env=_clean_env()).stdout
    return package, info


def test_sdist_carries_what_the_build_reads(dists):
    sdist, _, _ = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"setup.py", "pyproject.toml", "csrc/fedzo_kernel.c", "csrc/fedzo_forward.c", "csrc/fedzo_kernel.h",
            "csrc/build_kernel.py"} <= names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".o", "BUILD_FAILED.txt"))]


def test_wheel_from_the_sdist_is_fedzo_alone_with_the_kernel(dists):
    _, wheel, _ = dists
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert whl.read(top_level).decode().split() == ["fedzo"]
    dist_info = top_level.split("/")[0]
    assert not [n for n in names if not n.startswith(("fedzo/", dist_info + "/"))]
    assert [n for n in names if n.startswith("fedzo/edge/kernel/_kernel_c")]   # the compiled kernel
    assert "fedzo/edge/kernel/BUILD_FAILED.txt" not in names
    for pattern in PACKAGE_DATA:
        expected = {f"fedzo/{p.relative_to(ROOT).as_posix()}" for p in ROOT.glob(pattern)}
        assert expected and expected <= set(names), pattern


def test_install_from_the_sdist_runs_the_c_kernel(dists, tmp_path):
    sdist, _, _ = dists
    bin_dir = _venv(tmp_path / "env", *RUNTIME)
    # pip builds its own wheel from the sdist (in an isolated build environment).
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-deps", sdist], env=_clean_env())
    package, info = _installed(bin_dir, tmp_path)
    assert package.is_relative_to(tmp_path / "env"), package
    assert "kernel backend: c (" in info, info
    assert not (package / "edge" / "kernel" / "BUILD_FAILED.txt").exists()
    for pattern in PACKAGE_DATA:
        expected = {p.name for p in ROOT.glob(pattern)}
        assert expected and expected == {p.name for p in package.glob(pattern)}, pattern


def test_install_without_a_compiler_falls_back_to_numpy_and_says_why(dists, tmp_path):
    sdist, _, _ = dists
    bin_dir = _venv(tmp_path / "env", *RUNTIME)
    env = _clean_env(CC="/bin/false", CXX="/bin/false")
    # pip hides a successful build's output at its default verbosity, so the
    # fallback is not announced here (see csrc/build_kernel.py); the record is.
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-deps", sdist], env=env)
    package, info = _installed(bin_dir, tmp_path)
    assert package.is_relative_to(tmp_path / "env"), package
    assert not list((package / "edge" / "kernel").glob("_kernel_c*"))   # no extension was produced
    record = (package / "edge" / "kernel" / "BUILD_FAILED.txt").read_text()
    assert "/bin/false" in record
    assert ("kernel backend: numpy (the C kernel failed to build: CompileError: "
            "command '/bin/false' failed with exit code 1") in info, info


def test_required_kernel_fails_the_install_loudly(dists, tmp_path):
    sdist, _, tools = dists
    env = _clean_env(CC="/bin/false", CXX="/bin/false", FEDZO_REQUIRE_KERNEL="1")
    result = subprocess.run([tools / "python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", tmp_path, sdist],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "FEDZO_REQUIRE_KERNEL is set" in result.stdout + result.stderr
    assert not list(tmp_path.glob("*.whl"))
