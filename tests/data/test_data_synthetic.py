"""Synthetic ratings: exact counts, valid CSR, reproducibility and the planted structure."""

from __future__ import annotations

import contextlib
import signal
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec.data import demo_ratings, make_ratings, temporal_split, user_holdout
from rbmrec.data.synthetic import PlantedTruth


def _assert_valid_csr(m: sp.csr_matrix) -> None:
    assert m.dtype == np.float32
    assert m.indices.dtype == np.int32 and m.indptr.dtype == np.int32
    c = m.copy()
    c.has_sorted_indices = False
    c.sort_indices()
    assert np.array_equal(c.indices, m.indices), "indices not sorted within rows"
    c.has_canonical_format = False
    c.sum_duplicates()
    assert c.nnz == m.nnz, "duplicate entries"
    assert np.all(m.data != 0)


def test_counts_shape_and_levels():
    r = make_ratings(300, 120, density=0.07, seed=3)
    assert r.shape == (300, 120)
    assert r.n_ratings == round(0.07 * 300 * 120)
    _assert_valid_csr(r.user_items)
    assert set(np.unique(r.user_items.data).tolist()) <= {1, 2, 3, 4, 5}
    assert r.values.tolist() == [1, 2, 3, 4, 5]
    assert np.diff(r.user_items.indptr).min() >= 1
    assert r.user_ids.to_raw(5) == 5 and r.item_ids.to_index(7) == 7


def test_reproducible_and_seed_dependent():
    a = make_ratings(200, 80, density=0.1, seed=11, timestamps=True)
    b = make_ratings(200, 80, density=0.1, seed=11, timestamps=True)
    c = make_ratings(200, 80, density=0.1, seed=12, timestamps=True)
    assert (a.user_items != b.user_items).nnz == 0
    assert np.array_equal(a.timestamps.data, b.timestamps.data)
    assert np.array_equal(a.truth.user_group, b.truth.user_group)
    assert (a.user_items != c.user_items).nnz > 0


def test_many_chunks_and_dense_rows():
    r = make_ratings(400, 60, density=0.3, activity=1.5, chunk_ratings=500, seed=2)
    _assert_valid_csr(r.user_items)
    assert r.n_ratings == round(0.3 * 400 * 60)
    counts = np.diff(r.user_items.indptr)
    assert counts.max() > 60 // 4  # some users take the dense-row path
    full = make_ratings(10, 8, density=1.0, seed=0)
    assert full.n_ratings == 80 and np.all(np.diff(full.user_items.indptr) == 8)


def test_planted_groups_drive_ratings():
    r = make_ratings(600, 200, density=0.1, n_groups=4, noise=0.25, seed=5)
    t = r.truth
    assert isinstance(t, PlantedTruth)
    assert r.info["user_group"] is t.user_group and r.info["expected"] == t.expected
    assert t.user_group.shape == (600,) and t.item_group.shape == (200,)
    assert set(np.unique(t.user_group).tolist()) == {0, 1, 2, 3}
    m = r.user_items.tocoo()
    liked = t.liked(m.row, m.col)
    assert m.data[liked].mean() > 4.0 > 2.0 > m.data[~liked].mean()
    # The noiseless expectation explains most of the observed variance.
    expected = t.expected(m.row, m.col)
    assert np.corrcoef(expected, m.data)[0, 1] > 0.9
    dense = t.expected_matrix()
    assert dense.shape == (600, 200)
    assert np.allclose(dense[m.row, m.col], expected)
    assert np.all(t.item_group[t.group_items(2)] == 2)


def test_exposure_enriches_observed_items_in_the_users_group():
    fractions = []
    for exposure in (1.0, 8.0):
        r = make_ratings(500, 200, density=0.05, n_groups=5, exposure=exposure, seed=1)
        m = r.user_items.tocoo()
        fractions.append(r.truth.liked(m.row, m.col).mean())
    assert fractions[0] == pytest.approx(0.2, abs=0.05)
    assert fractions[1] > 0.55


def test_power_law_popularity_and_activity():
    skewed = make_ratings(2000, 500, density=0.02, popularity=1.0, activity=1.0, seed=4)
    flat = make_ratings(2000, 500, density=0.02, popularity=0.0, activity=0.0, seed=4)

    def top_share(counts):
        c = np.sort(counts)[::-1]
        return c[: c.size // 10].sum() / c.sum()

    item_skewed = top_share(np.bincount(skewed.user_items.indices, minlength=500))
    item_flat = top_share(np.bincount(flat.user_items.indices, minlength=500))
    user_skewed = top_share(np.diff(skewed.user_items.indptr))
    user_flat = top_share(np.diff(flat.user_items.indptr))
    assert item_skewed > 2 * item_flat
    assert user_skewed > 2 * user_flat
    assert np.ptp(np.diff(flat.user_items.indptr)) <= 1


def test_continuous_scale_and_custom_levels():
    r = make_ratings(100, 50, density=0.2, scale=(0.5, 10.0), seed=0)
    d = r.user_items.data
    assert d.min() >= 0.5 and d.max() <= 10.0
    assert np.unique(d).size > 50
    h = make_ratings(100, 50, density=0.2, levels=(0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5))
    assert set(np.unique(h.user_items.data).tolist()) <= {v / 2 for v in range(1, 11)}
    b = make_ratings(100, 50, density=0.2, levels=2)
    assert b.values.tolist() == [1.0, 2.0]
    ten = make_ratings(100, 50, density=0.2, n_levels=10)
    assert ten.values.tolist() == list(range(1, 11))
    assert ten.user_items.data.max() <= 10


def test_zero_based_integer_scale_stores_zero_ratings():
    r = make_ratings(100, 50, density=0.2, levels=range(5), seed=1)
    assert r.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    counts = np.bincount(r.user_items.data.astype(int), minlength=5)
    assert counts[0] > 0 and r.user_items.nnz == r.n_ratings == counts.sum()
    assert r.info["levels"] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_real_valued_scale_with_a_step_and_zeros():
    r = make_ratings(300, 100, density=0.2, scale=(-10, 10, 0.01), noise=0.5, seed=2)
    lv = r.values
    assert lv.size == 2001 and lv[0] == -10 and lv[-1] == 10 and 0.0 in lv
    d = r.user_items.data
    assert d.min() >= -10 and d.max() <= 10 and np.all(np.isin(d, lv))
    assert (d < 0).any() and np.unique(d).size > 500
    assert r.info["scale"] is None and len(r.info["levels"]) == 2001
    cont = make_ratings(50, 40, density=0.3, scale=(-1, 1), seed=3)
    assert cont.user_items.data.min() < 0 and cont.info["scale"] == (-1.0, 1.0)
    zeros = make_ratings(200, 50, density=0.3, levels=(-1, 0, 1), seed=4)
    assert np.count_nonzero(zeros.user_items.data == 0) > 0
    assert zeros.user_items.nnz == zeros.n_ratings


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": (1, float("nan"))}, "at least two finite values"),
        ({"scale": (5, 0)}, "low < high"),
        ({"scale": (1, 2, 3, 4)}, r"\(low, high\) or \(low, high, step\)"),
        ({"scale": (0, 5, 0)}, r"step must be in \(0, high - low\]"),
        ({"scale": (1, 5), "levels": 5}, "not both"),
        ({"density": 0}, "density must be in"),
        ({"density": 1.5}, "density must be in"),
        ({"n_groups": 0}, "n_groups must be a positive int"),
        ({"noise": -1}, "noise must be"),
        ({"exposure": 0}, "exposure must be a finite number > 0"),
        ({"exposure": float("inf")}, r"exposure must be a finite number > 0, got inf"),
        ({"affinity": float("nan")}, "affinity must be a finite number >= 0, got nan"),
        ({"affinity": float("inf")}, "affinity must be a finite number >= 0"),
        ({"affinity": -0.5}, "affinity must be a finite number >= 0"),
        ({"chunk_ratings": 0}, "chunk_ratings must be a positive int"),
        ({"chunk_ratings": 2.5}, "chunk_ratings must be a positive int"),
        ({"levels": 1}, "levels must be >= 2"),
        ({"levels": 5, "n_levels": 5}, "not both"),
        ({"min_per_user": 500}, "min_per_user"),
        ({"min_per_user": 2.5}, "min_per_user must be an int"),
        ({"min_per_user": True}, "min_per_user must be an int"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ratings(20, 10, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"density": True}, "density"),
        ({"noise": "a"}, "noise"),
        ({"affinity": None}, "affinity"),
        ({"bias": "0.1"}, "bias"),
        ({"popularity": [1.0]}, "popularity"),
        ({"activity": False}, "activity"),
        ({"exposure": "4"}, "exposure"),
        ({"noise": 1j}, "noise"),
    ],
)
def test_non_numeric_arguments_are_type_errors_naming_them(kwargs, name):
    """Before: density=True passed as 1.0, noise="a" failed inside a numpy ufunc."""
    with pytest.raises(TypeError, match=rf"^{name} must be a real number"):
        make_ratings(20, 10, **kwargs)


def test_affinity_nan_no_longer_gives_every_rating_the_top_level():
    with pytest.raises(ValueError, match="affinity"):
        make_ratings(50, 40, density=0.1, affinity=float("nan"), seed=0)
    # affinity 0 is valid: no taste signal, ratings around the centre
    flat = make_ratings(50, 40, density=0.1, affinity=0.0, noise=0.0, bias=0.0, seed=0)
    assert np.unique(flat.user_items.data).tolist() == [3.0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_users": 120, "n_items": 50, "density": 0.1, "seed": 4},
        {"n_users": 120, "n_items": 50, "n_levels": 10, "timestamps": True, "seed": 1},
        {"n_users": 90, "n_items": 40, "levels": (0.5, 1, 1.5), "chunk_ratings": 50},
        {"n_users": 90, "n_items": 40, "scale": (0.5, 10.0), "min_per_user": 3, "titles": True},
        {"n_users": 90, "n_items": 40, "affinity": 0.2, "exposure": 1.0, "n_groups": 2},
    ],
)
def test_info_holds_every_argument_that_affects_the_data(kwargs):
    """``info`` holds every argument that affects the data (n_users, n_items, levels/scale,
    min_per_user, timestamps, chunk_ratings, ...), so it reproduces the data."""
    import inspect

    from rbmrec.data.synthetic import MAKE_RATINGS_ARGS

    names = set(inspect.signature(make_ratings).parameters)
    # name is a label and n_levels an alias of levels (stored resolved)
    assert set(MAKE_RATINGS_ARGS) == names - {"name", "n_levels"}
    r = make_ratings(**kwargs)
    assert set(MAKE_RATINGS_ARGS) <= set(r.info)
    again = make_ratings(**{k: r.info[k] for k in MAKE_RATINGS_ARGS})
    assert (again.user_items != r.user_items).nnz == 0
    assert np.array_equal(again.user_items.data, r.user_items.data)
    assert (again.timestamps is None) == (r.timestamps is None)
    if r.timestamps is not None:
        assert np.array_equal(again.timestamps.data, r.timestamps.data)
    assert (again.items is None) == (r.items is None)


def test_chunk_ratings_changes_the_draws_as_documented():
    a = make_ratings(300, 120, density=0.05, seed=3)
    assert a.info["chunk_ratings"] == 4_000_000
    small = make_ratings(300, 120, density=0.05, seed=3, chunk_ratings=100)
    assert (a.user_items != small.user_items).nnz > 0  # different draws, same distribution
    assert small.n_ratings == a.n_ratings
    # Any chunk_ratings holding every rating in one chunk gives the default's data.
    one_chunk = make_ratings(300, 120, density=0.05, seed=3, chunk_ratings=a.n_ratings)
    assert (a.user_items != one_chunk.user_items).nnz == 0
    doc = " ".join(make_ratings.__doc__.split())
    assert "a different ``chunk_ratings`` gives different data" in doc


def test_documented_zipf_weights_are_the_ones_used():
    import rbmrec.data.synthetic as S

    doc = " ".join(S.__doc__.split())
    assert "``(rank + 1 + n / 100) ** -exponent``" in doc
    n, exponent = 250, 0.8
    w = S._zipf_weights(n, exponent, np.random.default_rng(0))
    rank = np.random.default_rng(0).permutation(n)
    np.testing.assert_allclose(w, (rank + 1 + n / 100) ** -exponent)


def test_demo_ratings():
    d = demo_ratings()
    assert d.shape == (1000, 500)
    assert d.n_ratings == 25_000
    assert d.name == "demo"
    assert d.timestamps is not None
    assert d.items is not None and d.items.height == 500
    g = int(d.truth.item_group[3])
    assert d.item_titles([3]) == [f"Film 3 (taste group {g})"]
    _assert_valid_csr(d.user_items)
    assert (demo_ratings().user_items != d.user_items).nnz == 0
    # Every split kind works on it.
    assert temporal_split(d, last_k=1).test.nnz == int(np.sum(np.diff(d.user_items.indptr) >= 2))
    assert user_holdout(d, k=2).test.nnz > 0


# --------------------------------------------------------------------------- extreme parameters


@contextlib.contextmanager
def _deadline(seconds: float):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expire(*_):
        raise TimeoutError(f"did not finish within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _assert_valid_ratings(r, min_per_user=1):
    _assert_valid_csr(r.user_items)
    per_user = np.diff(r.user_items.indptr)
    assert per_user.min() >= min_per_user
    assert np.isin(r.user_items.data, r.values).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_users": 1000, "n_items": 100, "n_groups": 20, "exposure": 1e6, "density": 0.15},
        {"n_users": 200, "n_items": 50, "exposure": 1e300},
    ],
)
def test_huge_exposure_terminates_with_every_own_group_item_first(kwargs):
    with _deadline(30), warnings.catch_warnings():
        warnings.simplefilter("error")
        r = make_ratings(**kwargs, seed=0)
    _assert_valid_ratings(r)
    n_ratings = round(kwargs.get("density", 0.05) * kwargs["n_users"] * kwargs["n_items"])
    assert r.n_ratings == max(n_ratings, kwargs["n_users"])
    # Own-group items are ~exposure times likelier: a user rating at least as many items as
    # their group holds has rated all of them.
    truth = r.truth
    m = r.user_items
    for u in range(r.n_users):
        own = truth.group_items(truth.user_group[u])
        rated = m.indices[m.indptr[u] : m.indptr[u + 1]]
        if rated.size >= own.size:
            assert np.isin(own, rated).all()


@pytest.mark.parametrize("param", ["activity", "popularity"])
def test_extreme_power_law_gives_real_ratings(param):
    with _deadline(30), warnings.catch_warnings():
        warnings.simplefilter("error")  # no underflow/invalid-value warnings either
        r = make_ratings(200, 50, **{param: 700.0}, seed=0)
    _assert_valid_ratings(r)
    assert r.n_ratings == round(0.05 * 200 * 50)
    if param == "activity":
        # A handful of users take the head of the power law (up to every item); most users
        # get the minimum.
        counts = np.diff(r.user_items.indptr)
        assert counts.max() == 50 and np.median(counts) == 1
    else:
        # Nearly all ratings go to the single most popular item.
        per_item = np.bincount(r.user_items.indices, minlength=50)
        assert per_item.max() == 200
