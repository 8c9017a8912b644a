"""Rating scales beyond 1..5: real values with 0 and negatives (gaussian visibles), integer
scales that include 0 (softmax visibles), and the softmax model's level limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from rbmrec.bundle import ModelBundle
from rbmrec.data import Ratings, load_table, make_ratings, random_split
from rbmrec.errors import DataError
from rbmrec.evaluation import BiasBaseline
from rbmrec.models._sparse import stored_entries
from rbmrec.models.rating import RatingRBM

GAUSS = dict(visible="gaussian", orientation="user", n_hidden=20, n_epochs=15, batch_size=20,
             learning_rate=0.01, lr_decay=1.0, random_state=0, num_threads=1)  # fmt: skip


def real_scale_with_zeros() -> Ratings:
    """-10..10 in steps of 0.01, with a dead zone: every |rating| < 0.25 is a rating of 0."""
    d = make_ratings(300, 60, density=0.25, scale=(-10, 10, 0.01), affinity=0.5, noise=0.2)
    frame = d.to_frame()
    r = frame["rating"].to_numpy().copy()
    r[np.abs(r) < 0.25] = 0.0
    return Ratings.from_arrays(frame["user_id"], frame["item_id"], r)


def rmse(model, test: sp.csr_matrix) -> float:
    u, i, y = stored_entries(test)
    return float(np.sqrt(np.mean((model.predict(u, i) - y) ** 2)))


def test_real_valued_scale_with_zeros_beats_the_bias_baseline():
    data = real_scale_with_zeros()
    n_zero = int(np.count_nonzero(data.user_items.data == 0))
    assert n_zero > 30 and data.user_items.data.min() < 0
    split = random_split(data, 0.2, seed=0)
    assert np.count_nonzero(split.test.data == 0) > 0
    rbm = RatingRBM(**GAUSS).fit(split.train)
    bias = BiasBaseline().fit(split.train)
    assert rmse(rbm, split.test) < 0.95 * rmse(bias, split.test)
    lo, hi = split.train.data.min(), split.train.data.max()
    pred = rbm.predict(*stored_entries(split.test)[:2])
    assert lo <= pred.min() and pred.max() <= hi


def test_bias_baseline_reads_zero_and_negative_ratings():
    X = sp.csr_matrix(
        (np.array([0.0, -4.0, 0.0, 2.0]), (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))),
        shape=(2, 2),
    )
    b = BiasBaseline(reg_user=0.0, reg_item=0.0, n_iter=50).fit(X)
    assert b.mean_ == pytest.approx(-0.5) and b.rating_range_ == (-4.0, 2.0)
    dropped = X.copy()
    dropped.eliminate_zeros()
    assert BiasBaseline().fit(dropped).mean_ == pytest.approx(-1.0)


def test_real_valued_scale_through_a_table_and_the_bundle(tmp_path: Path):
    data = real_scale_with_zeros()
    csv = tmp_path / "r.csv"
    data.to_frame().write_csv(csv)
    table = load_table(csv)
    assert table.n_ratings == data.n_ratings
    np.testing.assert_array_equal(table.user_items.data, data.user_items.data)
    split = random_split(table, 0.2, seed=0)
    train = Ratings(split.train, table.user_ids, table.item_ids)
    bundle = ModelBundle.fit(RatingRBM(**GAUSS), train)
    again = ModelBundle.load(bundle.save(tmp_path / "model"))
    seen = again.seen
    assert seen.nnz == split.train.nnz
    assert np.count_nonzero(seen.data == 0) == np.count_nonzero(split.train.data == 0) > 0
    u, i, _ = stored_entries(split.test)
    users, items = table.user_ids.raw[u], table.item_ids.raw[i]
    np.testing.assert_allclose(again.predict(users, items), bundle.predict(users, items))
    assert rmse(bundle.model, split.test) < rmse(BiasBaseline().fit(split.train), split.test)
    # A new user's 0 rating is a rating: folded in, that item is seen and left out.
    item0 = table.item_ids.raw[0].item()
    row = again.new_user_row({item0: 0.0})
    assert row.nnz == 1 and row.data.tolist() == [0.0]
    got, _ = again.fold_in({item0: 0.0}, N=5)
    assert item0 not in got.tolist()


def test_zero_based_integer_scale_trains_softmax_visibles():
    data = make_ratings(200, 40, density=0.3, levels=range(5), seed=1)
    assert np.count_nonzero(data.user_items.data == 0) > 0
    split = random_split(data, 0.2, seed=0)
    m = RatingRBM(orientation="user", n_hidden=10, n_epochs=5, batch_size=20, random_state=0,
                  num_threads=1).fit(split.train)  # fmt: skip
    assert m.values_.tolist() == [0, 1, 2, 3, 4]
    u, i, _ = stored_entries(split.test)
    pred = m.predict(u, i)
    assert pred.min() >= 0 and pred.max() <= 4 and np.all(np.isfinite(pred))
    proba = m.predict_proba(u, i)
    assert proba.shape == (u.size, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # A user's explicit 0 ratings fold in as level 0.
    row = sp.csr_matrix((np.array([0.0, 4.0]), (np.array([0, 0]), np.array([1, 2]))),
                        shape=(1, data.n_items))  # fmt: skip
    folded = m.predict_user(row, np.arange(3, 8))
    assert folded.min() >= 0 and folded.max() <= 4


def test_softmax_refuses_thousands_of_levels_and_names_gaussian():
    data = real_scale_with_zeros()
    assert np.unique(data.user_items.data).size > 127
    with pytest.raises(DataError, match=r'at most 127 levels.*visible="gaussian"'):
        RatingRBM(orientation="user", n_epochs=1).fit(data.user_items)
