"""cratelib.eval.stats: standard errors, paired differences, 2x2 effects, rank agreement, seeds."""
import numpy as np
import pytest

from cratelib.eval import stats


def test_mean_se_drops_nan_and_needs_two_values():
    mean, se = stats.mean_se([1.0, np.nan, 3.0])
    assert mean == 2.0 and se == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_se([1.0, np.nan])


def test_paired_and_compare():
    a = np.array([0.5, 0.6, 0.7, 0.8])
    mean, se = stats.paired(a, a - 0.1)
    assert mean == pytest.approx(0.1) and se == pytest.approx(0.0, abs=1e-12)
    assert stats.compare(a, a - 0.1) == 1 and stats.compare(a - 0.1, a) == -1
    noisy = a + np.array([0.3, -0.3, 0.3, -0.31])
    assert stats.compare(noisy, a) == 0
    mean, se = stats.paired(np.array([1.0, np.nan, 3.0]), np.zeros(3))  # nan dropped
    assert mean == 2.0 and se == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired(np.array([1.0]), np.array([0.0]))
    with pytest.raises(ValueError, match="same shape"):
        stats.paired(np.zeros(3), np.zeros(4))


def test_factorial_effects_recover_planted_effects():
    rng = np.random.default_rng(0)
    base = rng.normal(0.3, 0.05, 200)
    # factor A (level 1) adds 0.1, factor B (level 1) adds 0.04, no interaction
    eff = stats.factorial_effects(base + 0.14, base + 0.10, base + 0.04, base)
    assert eff["first"][0] == pytest.approx(0.10)
    assert eff["second"][0] == pytest.approx(0.04)
    assert eff["interaction"][0] == pytest.approx(0.0, abs=1e-12)
    assert all(se == pytest.approx(0.0, abs=1e-12) for _, se in eff.values())  # no noise left
    noisy = stats.factorial_effects(*(base + rng.normal(0, 0.1, 200) for _ in range(4)))
    assert all(se > 0 for _, se in noisy.values())


def test_effects_2x2_of_table2():
    # Table 2's mIoU: CRATE 23.9, CRATE-MLP 22.0, CRATE-MHSA 18.4, ViT 14.1 (MSSA/MHSA x ISTA/MLP)
    eff = stats.effects_2x2(23.9, 22.0, 18.4, 14.1)
    assert eff["first"] == pytest.approx((23.9 - 18.4 + 22.0 - 14.1) / 2)
    assert eff["first"] - eff["second"] == pytest.approx(22.0 - 18.4)


def test_order_agreement():
    paper = {"a": 4.0, "b": 3.0, "c": 2.0}
    assert stats.order_agreement({"a": 1.0, "b": 0.5, "c": 0.1}, paper) == (3, 3)
    assert stats.order_agreement({"a": 0.1, "b": 0.5, "c": 1.0}, paper) == (0, 3)
    assert stats.order_agreement({"a": 1.0, "b": 1.0, "x": 0.0}, paper) == (0, 1)


def test_across_seeds():
    assert stats.across_seeds([0.8, 0.9, 1.0]) == (pytest.approx(0.9), pytest.approx(0.1))
    mean, spread = stats.across_seeds([0.7])
    assert mean == 0.7 and np.isnan(spread)
    with pytest.raises(ValueError, match="no values"):
        stats.across_seeds([])
