"""`fedzo info`: what is installed and which kernel runs, and why."""
import os
import platform


def add_arguments(parser):
    pass


def run(args) -> int:
    import numpy

    import fedzo
    from fedzo.edge import kernel
    print(f"fedzo {fedzo.__version__}")
    print(f"kernel backend: {kernel.backend()} ({kernel.backend_reason()})")
    print(f"kernels available: {', '.join(sorted(kernel.implementations()))}")
    print(f"python {platform.python_version()} on {platform.machine()} {platform.system()}, "
          f"{os.cpu_count()} cores")
    print(f"numpy {numpy.__version__}")
    for module in ("mujoco", "cffi", "serial"):
        try:
            version = getattr(__import__(module), "__version__", "?")
        except ImportError:
            version = "not installed"
        print(f"{module} {version}")
    return 0
