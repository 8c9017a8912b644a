"""Shared input checks: malformed sparse index arrays, duplicate ratings and item id lists.

Malformed CSR index arrays used to reach the Numba kernels and scipy's C++ conversions
unchecked (a column index past the end crashed the interpreter); duplicate stored ratings
were summed into a fake rating level; float or negative item ids were truncated or wrapped.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from test_rating_rbm import planted

import rbmrec
from rbmrec.errors import DataError
from rbmrec.models.blend import BlendedRatingModel
from rbmrec.models.implicit import ImplicitRBM
from rbmrec.models.rating import RatingRBM
from rbmrec.models.validation import check_csr, check_sparse_structure

N_USERS, N_ITEMS = 30, 12


def _raw_csr(data, indices, indptr, shape):
    """A CSR built from raw arrays: scipy does not check index values or monotonicity."""
    return sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices), np.asarray(indptr)), shape=shape
    )


def _malformed(n_cols=N_ITEMS):
    """(label, one-row matrix, message pattern) for each kind of broken index array."""
    far = _raw_csr([4.0], [10**6], [0, 1], (1, n_cols))
    negative = _raw_csr([4.0], [-3], [0, 1], (1, n_cols))
    decreasing = _raw_csr([4.0, 2.0], [0, 1], [0, 2, 1, 2], (3, n_cols))
    float_idx = _raw_csr([4.0], [1], [0, 1], (1, n_cols))
    float_idx.indices = float_idx.indices.astype(np.float64)
    coo = sp.coo_matrix((np.array([4.0]), (np.array([0]), np.array([1]))), shape=(1, n_cols))
    coo.col[0] = n_cols + 5  # changed after construction, where scipy checked it
    csc = sp.csc_matrix(np.eye(1, n_cols))
    csc.indices[0] = 7  # row 7 of a one-row matrix
    return [
        ("index past the end", far, r"column index 1000000 >= " + str(n_cols)),
        ("negative index", negative, "negative column index -3"),
        ("decreasing indptr", decreasing, "decreasing index pointer at row 1"),
        ("float indices", float_idx, "non-integer column indices"),
        ("coo column past the end", coo, r"column index \d+ >= " + str(n_cols)),
        ("csc row past the end", csc, "row index 7 >= 1"),
    ]


MALFORMED = _malformed()


@pytest.mark.parametrize(("label", "X", "match"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_check_sparse_structure_names_the_problem(label, X, match):
    before = (X.indices.copy(), X.indptr.copy()) if X.format != "coo" else None
    with pytest.raises(DataError, match=match):
        check_sparse_structure("X", X)
    with pytest.raises(DataError, match=match):
        check_csr("X", X)
    if before is not None:  # the input is never modified
        np.testing.assert_array_equal(X.indices, before[0])
        np.testing.assert_array_equal(X.indptr, before[1])


def test_check_sparse_structure_accepts_valid_matrices():
    X, _, _ = planted(n_users=N_USERS, n_items=N_ITEMS)
    for fmt in ("csr", "csc", "coo", "lil", "dok", "bsr"):
        check_sparse_structure("X", X.asformat(fmt))
    check_sparse_structure("X", sp.csr_array(X))
    check_sparse_structure("X", sp.csr_matrix((3, 4)))


def test_index_pointer_past_the_stored_entries_is_rejected():
    X = _raw_csr([4.0, 2.0], [0, 1], [0, 1, 2], (2, N_ITEMS))
    X.indptr[-1] = 5  # points past the two stored entries
    with pytest.raises(DataError, match="ending at 5"):
        check_sparse_structure("X", X)


@pytest.fixture(scope="module")
def data():
    X, _, _ = planted(n_users=N_USERS, n_items=N_ITEMS)
    return X


@pytest.fixture(scope="module")
def rating_model(data):
    return RatingRBM(n_hidden=3, n_epochs=1, orientation="user", random_state=0).fit(data)


@pytest.fixture(scope="module")
def implicit_model(data):
    return ImplicitRBM(n_hidden=3, n_epochs=1, n_models=1, random_state=0).fit(data)


def _malformed_full(kind):
    """A (N_USERS, N_ITEMS) matrix with broken index arrays, and the expected message."""
    tail = [2] * (N_USERS - 1)
    if kind == "far":
        return _raw_csr([4.0, 2.0], [10**6, 1], [0, 1, *tail], (N_USERS, N_ITEMS)), "1000000 >="
    if kind == "negative":
        return _raw_csr([4.0, 2.0], [-3, 1], [0, 1, *tail], (N_USERS, N_ITEMS)), "negative"
    bad = _raw_csr([4.0, 2.0], [0, 1], [0, 2, 1, *tail[1:]], (N_USERS, N_ITEMS))
    return bad, "decreasing index pointer at row 1"


@pytest.mark.parametrize("kind", ["far", "negative", "decreasing"])
def test_every_model_rejects_malformed_input(rating_model, implicit_model, data, kind):
    bad, match = _malformed_full(kind)
    users = np.arange(N_USERS)
    calls = [
        lambda: RatingRBM(n_hidden=3, n_epochs=1, orientation="user").fit(bad),
        lambda: RatingRBM(n_hidden=3, n_epochs=1).fit(data, validation=bad),
        lambda: rating_model.predict_user(bad, [0, 1]),
        lambda: rating_model.score_items(0, bad),
        lambda: rating_model.recommend(users, bad, N=3),
        lambda: rating_model.recommend(users, bad, N=3, recalculate_user=True),
        lambda: ImplicitRBM(n_hidden=3, n_epochs=1, n_models=1).fit(bad),
        lambda: ImplicitRBM(n_hidden=3, n_epochs=1, n_models=1).fit(data, validation=bad),
        lambda: implicit_model.recommend(users, bad, N=3, recalculate_user=True),
        lambda: implicit_model.score_items(bad),
        lambda: implicit_model.hidden_probs(bad),
        lambda: rbmrec.RBM(n_hidden=3, n_epochs=1).fit(bad),
        lambda: BlendedRatingModel([("a", RatingRBM())]).fit(bad, validation=data),
    ]
    for call in calls:
        with pytest.raises(DataError, match=match):
            call()


def test_rbm_transform_rejects_malformed_input():
    X = (np.random.default_rng(0).random((20, 8)) < 0.3).astype(np.float32)
    rbm = rbmrec.RBM(n_hidden=3, n_epochs=1, random_state=0).fit(X)
    bad = _raw_csr([1.0], [10**7], [0, 1], (1, 8))
    for method in (rbm.transform, rbm.free_energy, rbm.reconstruct, rbm.partial_fit):
        with pytest.raises(DataError, match="column index 10000000 >= 8"):
            method(bad)


def test_known_pairs_structure_is_checked(data):
    bad = _raw_csr([1.0], [10**6], [0] + [1] * N_USERS, (N_USERS, N_ITEMS))
    with pytest.raises(DataError, match="known_pairs has column index"):
        RatingRBM(n_hidden=3, n_epochs=1, orientation="item").fit(data, known_pairs=bad)


# ----------------------------------------------------------------------------- duplicates


def _with_duplicate(X, value=5.0):
    """``X`` with its first stored entry stored a second time (with ``value``)."""
    X = X.tocsr()
    r0 = int(np.flatnonzero(np.diff(X.indptr))[0])
    c0 = int(X.indices[X.indptr[r0]])
    coo = X.tocoo()
    rows = np.r_[coo.row, r0]
    cols = np.r_[coo.col, c0]
    vals = np.r_[coo.data, value]
    order = np.lexsort((cols, rows))
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=X.shape[0]))]
    dup = sp.csr_matrix((vals[order], cols[order], indptr), shape=X.shape)
    assert dup.nnz == X.nnz + 1
    return dup, (r0, c0)


def test_duplicate_ratings_are_rejected_not_summed(data):
    dup, (r, c) = _with_duplicate(data)
    pair = rf"\(row {r}, column {c}\)"
    with pytest.raises(DataError, match=pair):
        RatingRBM(n_hidden=3, n_epochs=1, orientation="user").fit(dup)
    # (0, 0) stored as 4 and as 5 must not be summed into a sixth level, 9.
    tiny = _raw_csr([4, 5, 3, 1, 2, 5, 4, 1, 3], [0, 0, 1, 2, 0, 2, 1, 0, 2],
                    [0, 2, 4, 6, 8, 9], (5, 3))  # fmt: skip
    with pytest.raises(DataError, match=r"duplicate.*\(row 0, column 0\)"):
        RatingRBM(n_hidden=3, n_epochs=1, orientation="user").fit(tiny)
    # COO input: converting it to CSR would sum the duplicates before any check.
    coo = sp.coo_matrix(
        (np.r_[data.tocoo().data, 5.0], (np.r_[data.tocoo().row, r], np.r_[data.tocoo().col, c])),
        shape=data.shape,
    )
    with pytest.raises(DataError, match=pair):
        RatingRBM(n_hidden=3, n_epochs=1, orientation="item").fit(coo)
    with pytest.raises(DataError, match="duplicate"):
        RatingRBM(n_hidden=3, n_epochs=1).fit(data, validation=dup)


def test_duplicate_ratings_rejected_at_inference_and_by_the_blend(rating_model, data):
    dup, _ = _with_duplicate(data[:1])
    with pytest.raises(DataError, match="duplicate"):
        rating_model.predict_user(dup, [0, 1])
    with pytest.raises(DataError, match="duplicate"):
        rating_model.recommend(0, dup, N=3, recalculate_user=True)
    full_dup, _ = _with_duplicate(data)
    blend = BlendedRatingModel([("a", RatingRBM(n_hidden=3, n_epochs=1))], cv_folds=0)
    with pytest.raises(DataError, match="duplicate"):
        blend.fit(full_dup, validation=data)
    with pytest.raises(DataError, match="duplicate"):
        blend.fit(data, validation=full_dup)


def test_summing_duplicates_stays_the_default_for_interactions(data):
    """Implicit feedback keeps scipy's convention (clicks add up)."""
    dup, _ = _with_duplicate(data)
    check_csr("X", dup)  # default duplicates="sum"
    ImplicitRBM(n_hidden=3, n_epochs=1, n_models=1, random_state=0).fit(dup)


# ------------------------------------------------------------------------- item id lists


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"items": [-1, 5]}, IndexError, "items contains -1"),
        ({"items": [1.7, 5.2]}, TypeError, "items must be integers"),
        ({"filter_items": [N_ITEMS]}, IndexError, f"filter_items contains {N_ITEMS}, outside"),
        ({"filter_items": [-1]}, IndexError, "filter_items contains -1"),
        ({"filter_items": [1.9]}, TypeError, "filter_items must be integers"),
        ({"filter_items": [np.nan]}, TypeError, "filter_items must be integers"),
    ],
)
def test_implicit_item_lists_are_checked(implicit_model, data, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        implicit_model.similar_items(0, N=3, **kwargs)
    with pytest.raises(exc, match=match):
        implicit_model.recommend(0, data[0], N=3, **kwargs)


def test_repeated_entry_matches_brute_force_in_every_layout():
    """The one duplicate finder (models, data layer, softmax RBM) against counting pairs."""
    from collections import Counter
    from itertools import pairwise

    from rbmrec.models._sparse import repeated_entry

    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m, k = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(0, 12))
        r, c = rng.integers(0, n, k), rng.integers(0, m, k)
        counts = Counter(zip(r.tolist(), c.tolist(), strict=True))
        reps = sorted(p for p, v in counts.items() if v > 1)
        want = None
        if reps:
            extra = sum(v - 1 for v in counts.values())
            want = (reps[0][0], reps[0][1], counts[reps[0]], extra)
        coo = sp.coo_matrix((np.ones(k), (r, c)), shape=(n, m))
        order = np.lexsort((c, r))
        indptr = np.r_[0, np.cumsum(np.bincount(r, minlength=n))]
        sorted_csr = sp.csr_matrix((np.ones(k), c[order], indptr), shape=(n, m))
        backwards = np.concatenate([c[order][a:b][::-1] for a, b in pairwise(indptr)])
        unsorted_csr = sp.csr_matrix((np.ones(k), backwards.astype(np.int64), indptr), (n, m))
        for X in (coo, sorted_csr, unsorted_csr):
            got = repeated_entry(X)
            assert (None if got is None else tuple(got)) == want, X.format
