"""BlendedRatingModel: weights from validation never do worse there than any member."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from test_rating_rbm import holdout, planted

from rbmrec.errors import DataError, NotFittedError
from rbmrec.models.blend import BlendedRatingModel
from rbmrec.models.rating import RatingRBM


def _rmse(pred, truth):
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def test_blend_beats_members_on_validation_and_predicts():
    X, _, _ = planted(n_users=150, n_items=40)
    train, valid = holdout(X, seed=2)
    members = [
        ("user", RatingRBM(n_hidden=8, n_epochs=6, batch_size=20, random_state=0)),
        ("item", RatingRBM(n_hidden=8, n_epochs=6, batch_size=20, orientation="item",
                           random_state=0)),
    ]  # fmt: skip
    blend = BlendedRatingModel(members, ridge=1e-6).fit(train, validation=valid)
    vu, vi = valid.nonzero()
    vr = np.asarray(valid[vu, vi]).ravel()
    member_rmse = [_rmse(m.predict(vu, vi), vr) for _, m in members]
    assert blend.valid_rmse_ <= min(member_rmse) + 1e-9
    assert blend.valid_rmse_ == pytest.approx(_rmse(blend.predict(vu, vi), vr))
    ids, scores = blend.recommend(0, train[0], N=5)
    assert ids.dtype == np.int32 and np.all(np.diff(scores) <= 0)
    assert not set(ids) & set(train[0].indices)


def test_blend_errors():
    X, _, _ = planted(n_users=30, n_items=10)
    with pytest.raises(ValueError, match="validation"):
        BlendedRatingModel([("a", RatingRBM(n_epochs=1))]).fit(X)
    with pytest.raises(ValueError, match="at least one"):
        BlendedRatingModel([]).fit(X, validation=X)
    with pytest.raises(ValueError, match="unique"):
        BlendedRatingModel([("a", RatingRBM()), ("a", RatingRBM())]).fit(X, validation=X)
    with pytest.raises(NotFittedError):
        BlendedRatingModel([("a", RatingRBM())]).predict([0], [0])
    with pytest.raises(DataError, match="no stored ratings"):
        BlendedRatingModel([("a", RatingRBM())]).fit(X, validation=sp.csr_matrix((2, 2)))
    with pytest.raises(DataError, match="shape"):
        BlendedRatingModel([("a", RatingRBM())]).fit(X, validation=X[:5])
