"""cratelib.eval.stats: standard errors, paired differences, 2x2 effects, summaries across seeds."""
import numpy as np
import pytest

from cratelib.eval import stats


def test_mean_se_drops_nan_and_needs_two_values():
    mean, se = stats.mean_se([1.0, np.nan, 3.0])
    assert mean == 2.0 and se == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_se([1.0, np.nan])


def test_paired_differences():
    a = np.array([0.5, 0.6, 0.7, 0.8])
    mean, se = stats.paired(a, a - 0.1)
    assert mean == pytest.approx(0.1) and se == pytest.approx(0.0, abs=1e-12)
    mean, se = stats.paired(np.array([1.0, np.nan, 3.0]), np.zeros(3))  # nan dropped
    assert mean == 2.0 and se == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired(np.array([1.0]), np.array([0.0]))
    with pytest.raises(ValueError, match="same shape"):
        stats.paired(np.zeros(3), np.zeros(4))


def test_effects_2x2_of_table2():
    # Table 2's mIoU: CRATE 23.9, CRATE-MLP 22.0, CRATE-MHSA 18.4, ViT 14.1 (MSSA/MHSA x ISTA/MLP)
    eff = stats.effects_2x2(23.9, 22.0, 18.4, 14.1)
    assert eff["first"] == pytest.approx((23.9 - 18.4 + 22.0 - 14.1) / 2)
    assert eff["first"] - eff["second"] == pytest.approx(22.0 - 18.4)


def test_across_seeds():
    assert stats.across_seeds([0.8, 0.9, 1.0]) == (pytest.approx(0.9), pytest.approx(0.1))
    mean, spread = stats.across_seeds([0.7])
    assert mean == 0.7 and np.isnan(spread)
    with pytest.raises(ValueError, match="no values"):
        stats.across_seeds([])


def test_seed_bands_mean_and_range_over_seeds():
    bands = stats.seed_bands({"crate": {0: {1: 0.5, 2: 0.7}, 1: {1: 0.7, 2: 0.9}}, "vit": {0: {2: 0.6}}})
    crate, vit = bands["crate"], bands["vit"]
    assert crate.x == [1, 2] and crate.seeds == 2 and crate.values.shape == (2, 2)
    np.testing.assert_allclose(crate.mean, [0.6, 0.8])
    np.testing.assert_allclose(crate.low, [0.5, 0.7]) and np.testing.assert_allclose(crate.high, [0.7, 0.9])
    assert vit.x == [2] and vit.seeds == 1 and vit.mean[0] == vit.low[0] == vit.high[0] == 0.6
    mean, std = stats.mean_std(np.array([[1.0, np.nan], [3.0, 2.0]]))
    np.testing.assert_allclose(mean, [2.0, 2.0]) and np.testing.assert_allclose(std, [1.0, 0.0])
