"""Splits: exact partitions, shapes, seeds, leave-k-out counts, temporal order (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mlfiles import ROWS, write_100k

from rbmrec.data import (
    Ratings,
    Split,
    carve_validation,
    kfold,
    load_movielens,
    movielens_folds,
    random_split,
    temporal_split,
    user_holdout,
)
from rbmrec.errors import DataError

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def ratings_data(draw, min_nnz: int = 1) -> Ratings:
    """Small random rating matrices with timestamps that often tie."""
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 10))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(0.05, 1.0))
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    flat = np.flatnonzero(mask)
    if flat.size < min_nnz:
        flat = np.arange(min(min_nnz, n_users * n_items))
    users, items = np.divmod(flat, n_items)
    # 0 and negative ratings included: every stored entry is a rating a split must keep.
    ratings = rng.integers(-1, 5, size=flat.size)
    ts = rng.integers(1, draw(st.integers(2, 30)), size=flat.size)
    r = Ratings.from_arrays(users, items, ratings, ts)
    # Keep the full shape even when a user or item has no rating.
    return Ratings(
        sp.csr_matrix(r.user_items, shape=r.shape),
        r.user_ids,
        r.item_ids,
        timestamps=r.timestamps,
    )


def _entries(m: sp.csr_matrix) -> dict[tuple[int, int], float]:
    c = m.tocoo()
    return {(int(i), int(j)): float(v) for i, j, v in zip(c.row, c.col, c.data, strict=True)}


def assert_partition(split: Split, data: Ratings) -> None:
    m = data.user_items
    parts = [split.train, split.test] + ([split.validation] if split.validation is not None else [])
    for p in parts:
        assert isinstance(p, sp.csr_matrix)
        assert p.shape == m.shape
        assert p.dtype == np.float32
        assert p.indices.dtype == np.int32 and p.indptr.dtype == np.int32
    assert split.shape == m.shape
    merged: dict[tuple[int, int], float] = {}
    for p in parts:
        e = _entries(p)
        assert not set(e) & set(merged), "parts overlap"
        merged.update(e)
    assert merged == _entries(m)
    assert split.info["n_train"] == split.train.nnz
    assert split.info["n_test"] == split.test.nnz


def assert_same(a: Split, b: Split) -> None:
    for x, y in ((a.train, b.train), (a.test, b.test)):
        assert (x != y).nnz == 0
    assert (a.validation is None) == (b.validation is None)
    if a.validation is not None:
        assert (a.validation != b.validation).nnz == 0


def _ts_of(data: Ratings, part: sp.csr_matrix) -> dict[int, list[int]]:
    """Timestamps of a part's entries, per user."""
    ts = data.timestamps.toarray()
    out: dict[int, list[int]] = {}
    c = part.tocoo()
    for i, j in zip(c.row, c.col, strict=True):
        out.setdefault(int(i), []).append(int(ts[i, j]))
    return out


fractions = st.floats(0.05, 0.95)
val_fractions = st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.5])
seeds = st.integers(0, 2**31 - 1)


@SETTINGS
@given(ratings_data(), fractions, val_fractions, seeds)
def test_random_split_partitions(data, f, vf, seed):
    s = random_split(data, test_fraction=f, seed=seed, validation_fraction=vf)
    assert_partition(s, data)
    assert s.test.nnz == int(np.floor(f * data.n_ratings + 0.5))
    n_train_before = data.n_ratings - s.test.nnz
    if vf:
        assert s.validation.nnz == int(np.floor(vf * n_train_before + 0.5))
    else:
        assert s.validation is None
    assert s.info["kind"] == "random" and s.info["seed"] == seed
    again = random_split(data.user_items, test_fraction=f, seed=seed, validation_fraction=vf)
    assert_same(s, again)


@SETTINGS
@given(ratings_data(), st.integers(1, 4), st.integers(0, 3), val_fractions, seeds)
def test_leave_k_out(data, k, min_train, vf, seed):
    s = user_holdout(data, k=k, min_train=min_train, seed=seed, validation_fraction=vf)
    assert_partition(s, data)
    counts = np.diff(data.user_items.indptr)
    test_counts = np.diff(s.test.indptr)
    for n_u, n_test in zip(counts, test_counts, strict=True):
        assert n_test == (k if n_u >= k + min_train else 0)
    assert s.info["n_eligible_users"] == int(np.sum(counts >= k + min_train))
    assert_same(s, user_holdout(data, k=k, min_train=min_train, seed=seed, validation_fraction=vf))


@SETTINGS
@given(ratings_data(), fractions, st.integers(0, 3), seeds)
def test_user_fraction_holdout(data, f, min_train, seed):
    s = user_holdout(data, test_fraction=f, min_train=min_train, seed=seed)
    assert_partition(s, data)
    counts = np.diff(data.user_items.indptr)
    train_counts = np.diff(s.train.indptr)
    test_counts = np.diff(s.test.indptr)
    expected = np.clip(np.minimum(np.floor(f * counts + 0.5), counts - min_train), 0, None)
    assert np.array_equal(test_counts, expected)
    assert np.all((train_counts >= min_train) | (test_counts == 0))


@SETTINGS
@given(ratings_data(), st.integers(1, 3), st.integers(0, 2), val_fractions, seeds)
def test_temporal_last_k_never_trains_on_the_future(data, k, min_train, vf, seed):
    s = temporal_split(data, last_k=k, min_train=min_train, validation_fraction=vf, seed=seed)
    assert_partition(s, data)
    train_ts, test_ts = _ts_of(data, s.train), _ts_of(data, s.test)
    if s.validation is not None:
        for u, ts in _ts_of(data, s.validation).items():
            train_ts.setdefault(u, []).extend(ts)
    counts = np.diff(data.user_items.indptr)
    for u, n_u in enumerate(counts):
        expected = k if n_u >= k + min_train else 0
        assert len(test_ts.get(u, [])) == expected
        if expected and train_ts.get(u):
            assert max(train_ts[u]) <= min(test_ts[u])
    again = temporal_split(data, last_k=k, min_train=min_train, validation_fraction=vf, seed=seed)
    assert_same(s, again)


@SETTINGS
@given(ratings_data(), fractions)
def test_temporal_global_fraction(data, f):
    s = temporal_split(data, test_fraction=f)
    assert_partition(s, data)
    assert s.test.nnz == int(np.floor(f * data.n_ratings + 0.5))
    train = [t for ts in _ts_of(data, s.train).values() for t in ts]
    test = [t for ts in _ts_of(data, s.test).values() for t in ts]
    if train and test:
        assert max(train) <= min(test)


@SETTINGS
@given(ratings_data(), st.integers(0, 32))
def test_temporal_global_cut(data, cut):
    s = temporal_split(data, cut=cut)
    assert_partition(s, data)
    assert all(t < cut for ts in _ts_of(data, s.train).values() for t in ts)
    assert all(t >= cut for ts in _ts_of(data, s.test).values() for t in ts)


@SETTINGS
@given(ratings_data(min_nnz=5), st.integers(2, 5), val_fractions, seeds)
def test_kfold_partitions(data, k, vf, seed):
    assume(data.n_ratings >= k)
    folds = kfold(data, k=k, seed=seed, validation_fraction=vf)
    assert len(folds) == k
    union: dict[tuple[int, int], float] = {}
    sizes = []
    for s in folds:
        assert_partition(s, data)
        e = _entries(s.test)
        assert not set(e) & set(union)
        union.update(e)
        sizes.append(s.test.nnz)
    assert union == _entries(data.user_items)
    assert max(sizes) - min(sizes) <= 1
    again = kfold(data, k=k, seed=seed, validation_fraction=vf)
    for a, b in zip(folds, again, strict=True):
        assert_same(a, b)


@SETTINGS
@given(ratings_data(), fractions, st.sampled_from([0.1, 0.3, 0.5]), seeds)
def test_carve_validation_matches_the_option(data, f, vf, seed):
    direct = random_split(data, test_fraction=f, seed=seed, validation_fraction=vf)
    carved = carve_validation(random_split(data, test_fraction=f, seed=seed), vf, seed)
    assert_partition(carved, data)
    assert_same(direct, carved)


def test_different_seeds_differ():
    m = sp.random(50, 40, density=0.3, format="csr", random_state=1)
    m.data = np.ceil(m.data * 5)
    data = Ratings(m)
    a = random_split(data, seed=0)
    b = random_split(data, seed=1)
    assert (a.test != b.test).nnz > 0


def test_split_names_and_info():
    data = Ratings.from_arrays(*zip(*[(u, i, r) for u, i, r, _ in ROWS], strict=True))
    s = random_split(data, test_fraction=0.2, seed=3)
    assert s.name == "random-0.2-seed3"
    assert s.info["test_fraction"] == 0.2 and s.info["seed"] == 3
    assert user_holdout(data, k=1).name == "leave-1-out-seed0"
    assert kfold(data, k=2)[1].name == "kfold-2of2-seed0"


def test_split_argument_errors():
    data = Ratings.from_arrays(*zip(*[(u, i, r) for u, i, r, _ in ROWS], strict=True))
    with pytest.raises(ValueError, match="test_fraction must be in"):
        random_split(data, test_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction must be in"):
        random_split(data, test_fraction=0)
    with pytest.raises(ValueError, match="validation_fraction"):
        random_split(data, validation_fraction=-0.1)
    with pytest.raises(ValueError, match="seed must be"):
        random_split(data, seed=-1)
    with pytest.raises(ValueError, match="not both"):
        user_holdout(data, test_fraction=0.2, k=1)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        user_holdout(data, k=0)
    with pytest.raises(ValueError, match="exactly one of"):
        temporal_split(data)
    with pytest.raises(DataError, match="needs timestamps"):
        temporal_split(data, last_k=1)
    with pytest.raises(ValueError, match="k must be an int >= 2"):
        kfold(data, k=1)
    with pytest.raises(DataError, match="without ratings"):
        random_split(sp.csr_matrix((3, 3)))
    s = random_split(data, validation_fraction=0.2)
    with pytest.raises(DataError, match="already has a validation part"):
        carve_validation(s, 0.1)


def test_temporal_cut_accepts_dates():
    data = Ratings.from_arrays([1, 1, 2], [1, 2, 1], [3, 4, 5], [0, 86_400 * 365, 86_400 * 400])
    s = temporal_split(data, cut="1971-01-01")
    assert s.test.nnz == 2 and s.info["cut"] == 86_400 * 365
    assert temporal_split(data, cut=np.datetime64("1971-02-01")).test.nnz == 1
    with pytest.raises(ValueError, match="ISO date"):
        temporal_split(data, cut="next tuesday")


def test_temporal_split_of_plain_matrix_with_timestamps():
    data = Ratings.from_arrays([1, 1, 2, 2], [1, 2, 1, 2], [3, 4, 5, 1], [5, 1, 2, 9])
    s = temporal_split(data.user_items, last_k=1, timestamps=data.timestamps)
    assert s.test.toarray().tolist() == [[3, 0], [0, 1]]


# --------------------------------------------------------------------------- ML-100K folds


def _write_folds(folder: Path) -> None:
    lines = (folder / "u.data").read_text().splitlines()
    (folder / "u1.base").write_text("\n".join(lines[:7]) + "\n")
    (folder / "u1.test").write_text("\n".join(lines[7:]) + "\n")
    (folder / "u2.base").write_text("\n".join(lines[3:]) + "\n")
    (folder / "u2.test").write_text("\n".join(lines[:3]) + "\n")


def test_movielens_folds_share_the_full_id_maps(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    _write_folds(folder)
    full = load_movielens(folder)
    folds = movielens_folds(folder, folds=("u1", "u2"), validation_fraction=0.25, seed=1)
    assert [s.name for s in folds] == ["u1", "u2"]
    for s in folds:
        assert_partition(s, full)
        assert s.info["kind"] == "movielens_fold"
    assert folds[0].test.nnz == 3 and folds[1].test.nnz == 3
    # The test of u1 is the last three lines of u.data.
    u, i = full.user_ids.to_index(7), full.item_ids.to_index(50)
    assert folds[0].test[u, i] == 1.0


def test_movielens_folds_errors(tmp_path):
    folder = write_100k(tmp_path / "ml-100k")
    _write_folds(folder)
    with pytest.raises(DataError, match=r"fold file\(s\) \['u3.base', 'u3.test'\] not found"):
        movielens_folds(folder, folds=("u3",))
    with pytest.raises(ValueError, match="unknown fold"):
        movielens_folds(folder, folds=("u9",))
    (folder / "u1.test").write_text("99\t10\t3\t1\n")
    with pytest.raises(DataError, match=r"u1.test, line 1: user id 99 is not in u.data"):
        movielens_folds(folder, folds=("u1",))
    (folder / "u1.test").write_text((folder / "u1.base").read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match="share 1 ratings"):
        movielens_folds(folder, folds=("u1",))


@pytest.mark.realdata
def test_real_ml100k_official_folds(ml100k_dir: Path):
    full = load_movielens(ml100k_dir, metadata=False)
    folds = movielens_folds(ml100k_dir, folds=("u1", "u2", "u3", "u4", "u5", "ua"))
    for s in folds[:5]:
        assert s.shape == (943, 1682)
        assert (s.train.nnz, s.test.nnz) == (80_000, 20_000)
        assert_partition(s, full)
    # u1..u5 tests are disjoint and cover u.data.
    total = sum(s.test for s in folds[:5])
    assert total.nnz == 100_000 and (total != full.user_items).nnz == 0
    assert folds[5].test.nnz == 9_430 and set(np.diff(folds[5].test.indptr)) == {10}


def test_temporal_last_k_with_the_smallest_int64_timestamp():
    # -INT64_MIN overflows to INT64_MIN: negating timestamps would rank the earliest rating as
    # the latest.
    r = Ratings.from_arrays([1, 1, 1], [1, 2, 3], [4, 5, 3], timestamp=[-(2**63), 5, 7])
    s = temporal_split(r, last_k=1)
    assert s.test.indices.tolist() == [2]
    assert s.train.indices.tolist() == [0, 1]


def test_temporal_split_refuses_repeated_timestamp_entries():
    m = sp.csr_matrix(np.array([[4.0, 3.0, 5.0, 2.0]]))
    ts = sp.coo_matrix(([1, 2, 3, 4, 9], ([0, 0, 0, 0, 0], [0, 1, 2, 3, 3])), shape=(1, 4))
    with pytest.raises(DataError, match="timestamps matrix stores"):
        temporal_split(m, timestamps=ts, test_fraction=0.5)


def test_temporal_cut_between_seconds_keeps_earlier_ratings_in_train():
    import datetime as dt

    r = Ratings.from_arrays([0, 0, 1, 1], [0, 1, 0, 1], [3.0, 4.0, 5.0, 2.0], [100, 101, 100, 102])
    for cut in (
        100.5,
        np.datetime64(100500, "ms"),
        dt.datetime(1970, 1, 1, 0, 1, 40, 500000),
        "1970-01-01T00:01:40.500",
    ):
        s = temporal_split(r, cut=cut)
        assert s.test.nnz == 2, cut  # only t = 101 and 102 are at or after the cut
        assert s.train.nnz == 2, cut
    assert temporal_split(r, cut=np.datetime64(100, "s")).test.nnz == 4  # a whole second
    with pytest.raises(ValueError, match="NaT"):
        temporal_split(r, cut=np.datetime64("NaT"))


def test_every_split_keeps_explicit_zero_ratings():
    rng = np.random.default_rng(0)
    users, items = np.divmod(rng.permutation(40 * 15)[:300], 15)
    values = rng.integers(-2, 3, size=300).astype(float)  # a third are 0
    data = Ratings.from_arrays(users, items, values, rng.integers(1, 50, size=300))
    n_zero = int(np.count_nonzero(data.user_items.data == 0))
    assert n_zero > 50 and data.n_ratings == 300
    splits = [
        random_split(data, 0.2, validation_fraction=0.1),
        user_holdout(data, k=2, validation_fraction=0.1),
        temporal_split(data, last_k=2),
        carve_validation(random_split(data, 0.2), 0.25),
        *kfold(data, 3, validation_fraction=0.1),
    ]
    for split in splits:
        assert_partition(split, data)
        parts = [split.train, split.test, split.validation]
        assert sum(int(np.count_nonzero(p.data == 0)) for p in parts if p is not None) == n_zero
