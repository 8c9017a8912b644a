"""Baseline recommenders behind the same interface as rbmrec's RBMs and ``implicit``.

Every class here follows one protocol, so :func:`rbmrec.evaluation.evaluate` drives them
and the RBM models alike:

``fit(user_items)``
    ``user_items`` is a CSR matrix (n_users, n_items) of RAW ratings (e.g. 1..5). It is
    never modified. A matrix with no stored rating is refused (``DataError``, "user_items has
    no ratings") by every baseline: fitted on nothing, a model would score every item alike.
    Wrappers of ``implicit`` models turn it into confidences themselves (see
    :func:`confidence_matrix`).
``recommend(userid, user_items, N=10, filter_already_liked_items=True, filter_items=None,
recalculate_user=False)``
    Same signature and conventions as ``implicit`` 0.7.3. ``user_items`` holds the rows of
    the requested users (``train[userid]`` for one user, ``train[userids]`` for a batch); its
    stored entries are the items filtered by ``filter_already_liked_items``.

    - single user (``userid`` an int): 1-D ``int32`` ids and ``float32`` scores of length
      ``min(N, number of candidate items)``, best first, no padding;
    - batch (``userid`` array-like): 2-D arrays ``(n_users, N)``; rows with fewer than ``N``
      candidates are padded with id ``-1`` and score ``-np.finfo(np.float32).max``, exactly
      as ``implicit.utils._batch_call`` pads, so ``implicit.evaluation`` works unchanged.

    Ties in score are broken by the lower item id, so results are deterministic and a batch
    row equals the single-user result.
``predict(userids, itemids)`` (rating models only)
    float64 predicted ratings, same length as the inputs.
``save(path)`` / :func:`rbmrec.load`
    Through :mod:`rbmrec.models.persistence` (npz + JSON, no pickle).

``implicit`` is imported lazily, inside the wrappers, with BLAS limited to one thread
(``threadpoolctl``), which is what ``implicit`` asks for; its models get ``num_threads``
(default 1, for reproducible results) and an ``int`` seed (``implicit`` 0.7.3 crashes on a
``RandomState``).
"""

from rbmrec.engine.topn import PAD_SCORE
from rbmrec.evaluation.baselines._base import top_n
from rbmrec.evaluation.baselines.ease import EASE
from rbmrec.evaluation.baselines.implicit_wrappers import (
    ImplicitALS,
    ImplicitBPR,
    ImplicitItemKNN,
    _ImplicitWrapper,  # noqa: F401
    _import_implicit,  # noqa: F401 - the harness warms implicit's import through these
    confidence_matrix,
)
from rbmrec.evaluation.baselines.popularity import Popularity
from rbmrec.evaluation.baselines.rating import BiasBaseline, GlobalMean

__all__ = [
    "EASE",
    "PAD_SCORE",
    "BiasBaseline",
    "GlobalMean",
    "ImplicitALS",
    "ImplicitBPR",
    "ImplicitItemKNN",
    "Popularity",
    "confidence_matrix",
    "top_n",
]
