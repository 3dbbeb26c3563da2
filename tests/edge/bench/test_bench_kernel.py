"""`fedzo bench kernel`: the records' fields and ratios (never timing assertions)."""
import contextlib
import io
import json

import pytest

from fedzo.edge import kernel
from fedzo.edge.bench import kernel as bench_kernel

FIELDS = {"op", "d", "c_params_per_s", "numpy_params_per_s", "memcpy_params_per_s",
          "c_over_numpy", "c_over_memcpy"}


def test_records_have_the_spec_fields_and_consistent_ratios():
    records = bench_kernel.measure(1000, min_seconds=0.001)
    assert [r["op"] for r in records] == list(bench_kernel.OPS)
    for r in records:
        assert set(r) == FIELDS and r["d"] == 1000
        assert r["numpy_params_per_s"] > 0 and r["memcpy_params_per_s"] > 0
        if "c" in kernel.implementations():
            assert r["c_over_numpy"] == pytest.approx(r["c_params_per_s"] / r["numpy_params_per_s"])
            assert r["c_over_memcpy"] == pytest.approx(r["c_params_per_s"] / r["memcpy_params_per_s"])
        else:
            assert r["c_params_per_s"] is None and r["c_over_numpy"] is None


def test_cli_prints_one_json_list(monkeypatch):
    monkeypatch.setattr(bench_kernel, "DEFAULT_SIZES", (700,))
    from fedzo import cli
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["bench", "kernel", "--json"]) == 0
    records = json.loads(out.getvalue())
    assert isinstance(records, list) and {r["d"] for r in records} == {700}
