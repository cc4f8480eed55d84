"""bench/token_scaling.py: its fits and crossing points on known curves, and one tiny sweep."""
import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("token_scaling", ROOT / "bench" / "token_scaling.py")
ts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ts)


def test_fit_recovers_power_laws_above_the_fit_start():
    ns = [64, 128, 256, 512, 1024]
    quad = [3e-6 * n**2 for n in ns]
    bent = [1.0] * 3 + [2e-3 * n for n in ns[3:]]  # flat, then linear from 512
    assert ts.fit_exponent(ns, quad, 64) == pytest.approx(2.0)
    assert ts.fit_exponent(ns, bent, 512) == pytest.approx(1.0)
    assert ts.fit_exponent(ns, bent, 1024) is None  # one point fits no line


def test_overtakes_interpolates_the_crossing_on_the_log_log_line():
    ns = [64, 128, 256, 512]
    linear = [1e-3 * n for n in ns]
    quad = [1e-3 * n**2 / 200 for n in ns]  # equal at N = 200
    assert ts.overtakes(ns, linear, quad) == pytest.approx(200.0)
    assert ts.overtakes(ns, quad, linear) is None  # slower at the largest N
    assert ts.overtakes(ns, [0.5 * v for v in quad], quad) == 64.0  # faster everywhere
    # faster only after a bump: the crossing is the last one
    assert ts.overtakes(ns, [1, 3, 5, 1], [2, 2, 2, 2]) == pytest.approx(
        math.exp(math.log(256) + math.log(5 / 2) / math.log(5) * math.log(2)))


def test_a_tiny_sweep_counts_the_quadratic_memory_of_explicit_attention():
    dim, heads, ns = 16, 2, [8, 32, 128]
    rows = ts.time_sweep(ns, dim, heads, batch=1, repeats=1, device="cpu", max_step_s=60.0)
    for op, r in rows.items():
        assert [x["tokens"] for x in r] == ns and all(x["time_s"] > 0 and x["saved_mib"] > 0 for x in r), op
        for x, peak in zip(r, ts.peak_sweep(op, ns, dim, heads, batch=1, device="cpu")):
            x["peak_mib"] = peak
    # the explicit path keeps the (B, H, N, N) softmax for backward
    extra = (rows["mssa_explicit"][1]["saved_mib"] - rows["mssa_sdpa"][1]["saved_mib"]) * 2**20
    assert extra >= heads * 32 * 32 * 4 - heads * 32 * 8  # SDPA keeps its own (B, H, N) log-sum-exp

    def increments(op):  # saved bytes added from 8 to 32 tokens and from 32 to 128 tokens
        saved = [x["saved_mib"] for x in rows[op]]
        return (saved[2] - saved[1]) / (saved[1] - saved[0])

    # 4x as many added tokens: 4x the bytes if linear in N, about 16x if quadratic
    assert increments("tssa") == pytest.approx(4.0, rel=0.05)
    assert increments("mssa_sdpa") == pytest.approx(4.0, rel=0.05)
    assert increments("mssa_explicit") > 8
    stopped = ts.time_sweep(ns, dim, heads, batch=1, repeats=1, device="cpu", max_step_s=0.0)
    assert all(len(r) == 1 for r in stopped.values())  # every step is slower than 0 s: one N each
    summary = ts.summarise(rows, fit_from=8)
    assert set(summary["exponents"]) == set(ts.OPERATORS)
    assert set(summary["tssa_overtakes"]) == {"mssa_sdpa", "mssa_explicit"}
