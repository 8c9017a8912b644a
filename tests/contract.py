"""The recommender contract: one pytest mixin every rbmrec recommender must pass.

Usage (in a test module)::

    from contract import RecommenderContract

    class TestMyModel(RecommenderContract):
        supports_predict = True          # model has predict(userids, itemids)
        def make_model(self):
            return MyModel(n_hidden=8, n_epochs=3, random_state=0)

The mixin fits the model once per class on :func:`contract_data` (a small synthetic rating
matrix with planted structure: two user groups that like two disjoint item groups, one user
with no ratings, one item nobody rated) and checks the conventions documented in
:mod:`rbmrec.evaluation.baselines`:

- single ``recommend``: 1-D ``int32`` ids / ``float32`` scores, length
  ``min(N, candidates)``, unique ids, descending scores, no padding;
- batch ``recommend``: 2-D ``(n, N)``, row ``r`` equals the single-user result for
  ``userid[r]`` followed by padding (id ``-1``, score ``<= -finfo(float32).max``);
- already-liked items excluded (and returned when ``filter_already_liked_items=False``),
  ``filter_items`` excluded;
- a user with no ratings gets a full list of finite scores;
- ``fit`` and ``recommend`` do not modify their input matrices;
- same seed, same recommendations (``deterministic``);
- ``save``/``rbmrec.load`` round trip reproduces recommendations and predictions exactly;
- ``predict`` returns finite float64 of the input length (``supports_predict``);
- every fault raises the class :mod:`rbmrec.models.base` documents, the same in every
  model: a user index out of range ``rbmrec.errors.UnknownUserError``, ``N < 1``
  ``ValueError``, ``user_items`` of the wrong shape ``ValueError``, an unfitted model
  ``rbmrec.errors.NotFittedError``.

Override ``fit_model(model, data)`` when ``fit`` needs more than the ratings. Class
attributes to override: ``supports_predict`` (False), ``supports_save`` (True),
``deterministic`` (True), ``score_rtol`` (1e-5: tolerance between single and batch scores).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import rbmrec
from rbmrec.errors import NotFittedError, UnknownUserError

N_USERS = 36
N_ITEMS = 24
EMPTY_USER = N_USERS - 1
COLD_ITEM = N_ITEMS - 1
PAD_LIMIT = -np.finfo(np.float32).max


def contract_data(seed: int = 7) -> sp.csr_matrix:
    """Synthetic ratings with planted structure, CSR float32 (36 users x 24 items).

    Users ``0..17`` rate items ``0..11`` 4-5 and a few of ``12..22`` 1-2; users ``18..34``
    the opposite. User 35 has no ratings and item 23 is never rated. Each user rates about
    half of their group's items, so every user keeps unrated candidates.
    """
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    half = N_ITEMS // 2
    for u in range(N_USERS - 1):
        liked = np.arange(half) if u < N_USERS // 2 else np.arange(half, N_ITEMS - 1)
        other = np.arange(half, N_ITEMS - 1) if u < N_USERS // 2 else np.arange(half)
        chosen = rng.choice(liked, size=rng.integers(4, 8), replace=False)
        noise = rng.choice(other, size=rng.integers(1, 3), replace=False)
        for i in chosen:
            rows.append(u), cols.append(i), vals.append(rng.integers(4, 6))
        for i in noise:
            rows.append(u), cols.append(i), vals.append(rng.integers(1, 3))
    m = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows), np.asarray(cols))),
        shape=(N_USERS, N_ITEMS),
    )
    m.indices = m.indices.astype(np.int32)
    m.indptr = m.indptr.astype(np.int32)
    m.sort_indices()
    return m


def _snapshot(m: sp.csr_matrix) -> tuple[np.ndarray, ...]:
    return m.data.copy(), m.indices.copy(), m.indptr.copy()


def _assert_same(m: sp.csr_matrix, snap: tuple[np.ndarray, ...]) -> None:
    for now, before in zip((m.data, m.indices, m.indptr), snap, strict=True):
        assert now.dtype == before.dtype
        np.testing.assert_array_equal(now, before)


class RecommenderContract:
    """Mixin of contract tests; subclasses define ``make_model()`` (an unfitted model)."""

    supports_predict: bool = False
    supports_save: bool = True
    deterministic: bool = True
    score_rtol: float = 1e-5

    def make_model(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError("RecommenderContract subclasses must define make_model()")

    def fit_model(self, model: Any, data: sp.csr_matrix) -> Any:
        """Fit ``model`` on ``data``; override for models whose ``fit`` needs more (e.g. a
        blend's validation ratings)."""
        return model.fit(data)

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> sp.csr_matrix:
        return contract_data()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data: sp.csr_matrix) -> Any:
        # Fit once per class: RBM models are slow to train compared with these checks.
        case = cls()
        model = case.make_model()
        case.fit_model(model, data.copy())
        return model

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _check_single(ids: np.ndarray, scores: np.ndarray, n_max: int) -> None:
        assert isinstance(ids, np.ndarray) and isinstance(scores, np.ndarray)
        assert ids.dtype == np.int32, f"ids dtype {ids.dtype}, expected int32"
        assert scores.dtype == np.float32, f"scores dtype {scores.dtype}, expected float32"
        assert ids.ndim == 1 and ids.shape == scores.shape
        assert ids.size <= n_max
        assert np.all((ids >= 0) & (ids < N_ITEMS)), "single-user lists carry no padding"
        assert np.unique(ids).size == ids.size, "an item is recommended twice"
        assert np.all(np.isfinite(scores))
        assert np.all(np.diff(scores) <= 0), "scores must be sorted descending"

    # -- tests ----------------------------------------------------------------------------

    def test_single_user_types_and_order(self, fitted, data):
        for u in (0, 5, 20):
            ids, scores = fitted.recommend(u, data[u], N=5)
            self._check_single(ids, scores, 5)
            assert ids.size == 5

    def test_numpy_integer_userid_is_single(self, fitted, data):
        ids, _ = fitted.recommend(np.int64(3), data[3], N=4)
        ref, _ = fitted.recommend(3, data[3], N=4)
        assert ids.ndim == 1
        np.testing.assert_array_equal(ids, ref)

    def test_batch_equals_single(self, fitted, data):
        users = np.array([0, 7, 19, 30, EMPTY_USER, 7], dtype=np.int32)
        N = 6
        ids, scores = fitted.recommend(users, data[users], N=N)
        assert ids.shape == (users.size, N) and scores.shape == (users.size, N)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        for r, u in enumerate(users):
            s_ids, s_scores = fitted.recommend(int(u), data[u], N=N)
            k = s_ids.size
            np.testing.assert_allclose(scores[r, :k], s_scores, rtol=self.score_rtol, atol=1e-6)
            # Same items; order may differ only among near-tied scores.
            assert set(ids[r, :k].tolist()) == set(s_ids.tolist())
            assert np.all(ids[r, k:] == -1)

    def test_already_liked_items_filtered(self, fitted, data):
        for u in range(0, N_USERS - 1, 5):
            liked = set(data[u].indices.tolist())
            ids, _ = fitted.recommend(u, data[u], N=N_ITEMS)
            assert liked.isdisjoint(ids.tolist())
            assert ids.size == N_ITEMS - len(liked), "every unrated item is a candidate"

    def test_liked_items_returned_when_not_filtered(self, fitted, data):
        u = 2
        ids, scores = fitted.recommend(u, data[u], N=N_ITEMS, filter_already_liked_items=False)
        self._check_single(ids, scores, N_ITEMS)
        assert set(ids.tolist()) == set(range(N_ITEMS))

    def test_filter_items(self, fitted, data):
        u = 4
        ids, _ = fitted.recommend(u, data[u], N=N_ITEMS)
        banned = ids[:3]
        ids2, scores2 = fitted.recommend(u, data[u], N=N_ITEMS, filter_items=banned)
        self._check_single(ids2, scores2, N_ITEMS)
        assert set(banned.tolist()).isdisjoint(ids2.tolist())
        assert set(ids2.tolist()) == set(ids[3:].tolist())
        b_ids, _ = fitted.recommend(np.array([u, 30]), data[[u, 30]], N=5, filter_items=banned)
        assert set(banned.tolist()).isdisjoint(b_ids.ravel().tolist())

    def test_n_larger_than_candidates(self, fitted, data):
        u = 1
        n_cand = N_ITEMS - data[u].nnz
        ids, scores = fitted.recommend(u, data[u], N=N_ITEMS + 5)
        self._check_single(ids, scores, n_cand)
        assert ids.size == n_cand
        users = np.array([u, 2])
        b_ids, b_scores = fitted.recommend(users, data[users], N=N_ITEMS + 5)
        assert b_ids.shape == (2, N_ITEMS + 5)
        np.testing.assert_array_equal(b_ids[0, n_cand:], -1)
        assert np.all(b_scores[0, n_cand:] <= PAD_LIMIT)
        assert np.all(b_ids[0, :n_cand] >= 0)

    def test_user_without_ratings(self, fitted, data):
        assert data[EMPTY_USER].nnz == 0
        ids, scores = fitted.recommend(EMPTY_USER, data[EMPTY_USER], N=10)
        self._check_single(ids, scores, 10)
        assert ids.size == 10

    def test_inputs_not_mutated(self, data):
        train = data.copy()
        snap = _snapshot(train)
        model = self.make_model()
        self.fit_model(model, train)
        _assert_same(train, snap)
        users = np.array([0, 20])
        rows = train[users]
        rows_snap = _snapshot(rows)
        model.recommend(users, rows, N=5)
        model.recommend(0, rows[0], N=5, filter_already_liked_items=False)
        _assert_same(rows, rows_snap)
        _assert_same(train, snap)

    def test_same_seed_same_recommendations(self, fitted, data):
        if not self.deterministic:
            pytest.skip("model declared non-deterministic")
        other = self.make_model()
        self.fit_model(other, data.copy())
        users = np.arange(N_USERS)
        a, sa = fitted.recommend(users, data[users], N=5)
        b, sb = other.recommend(users, data[users], N=5)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)

    def test_save_load_round_trip(self, fitted, data, tmp_path):
        if not self.supports_save:
            pytest.skip("model declared without save")
        path = fitted.save(tmp_path / "model")
        path = tmp_path / "model.npz" if path is None else path
        loaded = rbmrec.load(path)
        assert type(loaded) is type(fitted)
        users = np.arange(N_USERS)
        a, sa = fitted.recommend(users, data[users], N=8)
        b, sb = loaded.recommend(users, data[users], N=8)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)
        if self.supports_predict:
            coo = data.tocoo()
            np.testing.assert_array_equal(
                fitted.predict(coo.row, coo.col), loaded.predict(coo.row, coo.col)
            )

    def test_predict(self, fitted, data):
        if not self.supports_predict:
            pytest.skip("not a rating model")
        coo = data.tocoo()
        users = np.concatenate([coo.row, [EMPTY_USER, 0]]).astype(np.int32)
        items = np.concatenate([coo.col, [0, COLD_ITEM]]).astype(np.int32)
        pred = fitted.predict(users, items)
        assert isinstance(pred, np.ndarray) and pred.dtype == np.float64
        assert pred.shape == users.shape
        assert np.all(np.isfinite(pred))
        assert fitted.predict(np.array([], np.int32), np.array([], np.int32)).shape == (0,)
        with pytest.raises((ValueError, IndexError)):
            fitted.predict(users[:3], items[:2])
        with pytest.raises((ValueError, IndexError)):
            fitted.predict(np.array([N_USERS]), np.array([0]))

    @pytest.mark.parametrize("bad", [N_USERS, -1, 10**6])
    def test_bad_userid_raises(self, fitted, data, bad):
        with pytest.raises(UnknownUserError, match=f"userid contains {bad}"):
            fitted.recommend(bad, data[0], N=5)
        with pytest.raises(UnknownUserError):
            fitted.recommend(np.array([0, bad]), data[[0, 0]], N=5)

    def test_non_integer_userid_raises(self, fitted, data):
        with pytest.raises(TypeError, match="userid must be integers"):
            fitted.recommend(1.5, data[1], N=5)

    @pytest.mark.parametrize("bad", [0, -1])
    def test_n_below_one_raises(self, fitted, data, bad):
        with pytest.raises(ValueError, match="N must be an int >= 1"):
            fitted.recommend(0, data[0], N=bad)
        with pytest.raises(TypeError, match="N must be an int"):
            fitted.recommend(0, data[0], N=2.0)

    def test_user_items_row_count_checked(self, fitted, data):
        with pytest.raises(ValueError, match="one row per requested user"):
            fitted.recommend(np.array([0, 1]), data[[0]], N=5)

    def test_user_items_wrong_width_raises(self, fitted, data):
        wrong = sp.csr_matrix((1, N_ITEMS + 3), dtype=np.float32)
        with pytest.raises(ValueError, match="columns"):
            fitted.recommend(0, wrong, N=5)

    def test_unfitted_raises(self, data):
        with pytest.raises(NotFittedError):
            self.make_model().recommend(0, data[0], N=5)
