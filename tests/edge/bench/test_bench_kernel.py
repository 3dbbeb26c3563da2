"""`fedzo bench kernel`: the records' fields, and which timing each figure comes from (never timing assertions)."""
import contextlib
import io
import json

import numpy as np
import pytest

from fedzo.edge import kernel
from fedzo.edge.bench import kernel as bench_kernel

FIELDS = {"op", "d", "c_params_per_s", "numpy_params_per_s", "memcpy_params_per_s",
          "c_over_numpy", "c_over_memcpy"}


def test_records_have_the_spec_fields():
    records = bench_kernel.measure(1000, min_seconds=0.001)
    assert [r["op"] for r in records] == list(bench_kernel.OPS)
    for r in records:
        assert set(r) == FIELDS and r["d"] == 1000
        assert r["numpy_params_per_s"] > 0 and r["memcpy_params_per_s"] > 0
        if "c" in kernel.implementations():
            assert r["c_params_per_s"] > 0 and r["c_over_numpy"] > 0 and r["c_over_memcpy"] > 0
        else:
            assert r["c_params_per_s"] is None and r["c_over_numpy"] is None


# Stand-ins for the implementations, fake seconds per call of each operation on
# each of them, and of a copy per byte.
FAKE_IMPLS = {"c": "C", "numpy": "NP"}
OP_SECONDS = {("generate", "C"): 1e-6, ("generate", "NP"): 8e-6, ("perturb", "C"): 2e-6,
              ("perturb", "NP"): 3e-6, ("restore", "C"): 5e-7, ("restore", "NP"): 5e-6,
              ("update", "C"): 4e-6, ("update", "NP"): 6e-6}
COPY_SECONDS_PER_BYTE = 1e-9


@pytest.mark.parametrize("impls", [("c", "numpy"), ("numpy",)])
def test_each_figure_is_d_over_the_time_of_what_it_names(monkeypatch, impls):
    """A fake clock that times whatever the timed callable did: each rate must come from its
    own operation on its own implementation, and memcpy must copy what the operation streams
    over (the packed sign words for generate, the int16 slice for the others)."""
    done = []                                        # what the callable being timed did
    for op, name in (("generate", "stream_words"), ("perturb", "perturb"), ("restore", "restore"),
                     ("update", "update")):
        monkeypatch.setattr(kernel, name, lambda *args, impl, op=op, **kwargs: done.append((op, impl)))
    monkeypatch.setattr(np, "copyto", lambda dst, src: done.append(("copy", dst.nbytes)))
    monkeypatch.setattr(kernel, "implementations", lambda: {name: FAKE_IMPLS[name] for name in impls})

    def fake_best_seconds(fn, min_seconds=None, repeats=None):
        done.clear()
        fn()
        (what,) = done
        return what[1] * COPY_SECONDS_PER_BYTE if what[0] == "copy" else OP_SECONDS[what]

    monkeypatch.setattr(bench_kernel, "best_seconds", fake_best_seconds)
    d = 6400
    copy_seconds = {"generate": (d // 64) * 8 * COPY_SECONDS_PER_BYTE, "store": 2 * d * COPY_SECONDS_PER_BYTE}
    for r in bench_kernel.measure(d):
        op = r["op"]
        memcpy = copy_seconds["generate" if op == "generate" else "store"]
        assert r["numpy_params_per_s"] == pytest.approx(d / OP_SECONDS[op, "NP"])
        assert r["memcpy_params_per_s"] == pytest.approx(d / memcpy)
        if "c" in impls:
            assert r["c_params_per_s"] == pytest.approx(d / OP_SECONDS[op, "C"])
            assert r["c_over_numpy"] == pytest.approx(OP_SECONDS[op, "NP"] / OP_SECONDS[op, "C"])
            assert r["c_over_memcpy"] == pytest.approx(memcpy / OP_SECONDS[op, "C"])
        else:
            assert r["c_params_per_s"] is r["c_over_numpy"] is r["c_over_memcpy"] is None


def test_cli_prints_one_json_list(monkeypatch):
    monkeypatch.setattr(bench_kernel, "DEFAULT_SIZES", (700,))
    from fedzo import cli
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["bench", "kernel", "--json"]) == 0
    records = json.loads(out.getvalue())
    assert isinstance(records, list) and {r["d"] for r in records} == {700}
