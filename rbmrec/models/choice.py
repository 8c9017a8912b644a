"""ChooseAndLike: top-N lists from a rating model that rank what a user will both choose and
like, combining it with an implicit-feedback model of which items a user picks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.topn import top_n
from rbmrec.errors import DataError, ModelFileError, NotFittedError
from rbmrec.models import persistence
from rbmrec.models._estimator import side_generator
from rbmrec.models._ranking import ndcg_sum
from rbmrec.models.base import Recommender
from rbmrec.models.ensemble import combine
from rbmrec.models.implicit import ImplicitRBM
from rbmrec.models.mixture import finite_floats, spawn_seeds
from rbmrec.models.rating import RatingRBM
from rbmrec.models.rating_train import own_validation
from rbmrec.models.validation import (
    as_index_array,
    check_float,
    check_ratings,
    check_user_rows,
)

__all__ = ["ChooseAndLike", "default_choose_and_like", "log_softmax", "seeded"]

#: Default grid of ``beta``, the weight of the rating model's score.
BETAS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0)
#: The list length ``beta`` is chosen for (NDCG@10).
_K = 10


@persistence.register
class ChooseAndLike(Recommender):
    """Top-N lists of a rating model weighted by how likely a user is to choose each item.

    A rating model answers "how would this user rate the item if made to rate it"; ranked by
    that alone, lists favour items few people rate that are predicted near the top rating.
    ``ChooseAndLike`` ranks by::

        score(u, i) = log P_choose(i | u) + beta * s_rate(u, i)

    where ``P_choose(i | u)`` is the softmax over the catalogue of the chooser's ranking
    scores (an :class:`~rbmrec.models.implicit.ImplicitRBM`: with its replicated-softmax
    default these are the logits of its distribution over items, the visible biases
    weighted by ``1 + popularity_weight``; with ``visible="bernoulli"`` they are log-odds,
    and the softmax is a normalisation, not the model's own distribution) and ``s_rate``
    the rating model's
    ranking score (``recommend_score``; the expected rating by default). The two terms are
    combined with :func:`rbmrec.models.ensemble.combine`. ``beta`` is chosen from ``betas``
    by NDCG@10 on a held-out part of the ratings (relevant: held-out ratings at or above
    the rating model's :meth:`~rbmrec.models.rating.RatingRBM.high_threshold`; training
    items excluded). Validation evidence is in docs/performance.md ("Choosing times
    liking").

    ``fit`` holds out ``validation_fraction`` of the ratings once (the rule of
    ``RatingRBM``'s own validation part) and fits both members on the rest: the chooser
    sees every remaining entry as an interaction, the rating model gets the held-out part
    as its validation ratings (early stopping, mixing weights), and, when conditional, the
    held-out pairs as known pairs. Neither member is refitted on the held-out part.

    Parameters
    ----------
    rating_model : RatingRBM, optional
        Unfitted rating model (softmax visibles). None: ``RatingRBM()``.
    chooser : ImplicitRBM, optional
        Unfitted implicit model of which items a user picks. None: ``ImplicitRBM()``.
    betas : sequence of float, default (0, 0.25, 0.5, 1, 2, 3)
        Candidate weights of the rating score, each finite and >= 0.
    validation_fraction : float, default 0.1
        Part of the ratings held out to choose ``beta``, in (0, 1).
    random_state : int, SeedSequence, Generator or None
        Seeds the held-out draw and the default members (two independent children).

    Attributes
    ----------
    rating_model_ : RatingRBM
    chooser_ : ImplicitRBM
    beta_ : float
        The chosen weight.
    validation_ndcg_ : ndarray of float64, shape (len(betas),)
        NDCG@10 on the held-out part for each candidate of ``betas``.
    n_users_, n_items_ : int
    """

    #: Users scored per block (the rating model's own block: bounds its temporaries).
    _SCORE_BLOCK = 256
    #: With ``recalculate_user``, both members fold the rows in.
    _FOLDS_IN_NEW_USERS = True
    #: Spawn key of the stream that draws the held-out part.
    _VALIDATION_STREAM = 0x63686F

    def __init__(
        self,
        rating_model: RatingRBM | None = None,
        chooser: ImplicitRBM | None = None,
        *,
        betas: Sequence[float] = BETAS,
        validation_fraction: float = 0.1,
        random_state: Any = None,
    ) -> None:
        self.rating_model = rating_model
        self.chooser = chooser
        self.betas = betas
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.beta_: float | None = None

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> tuple[float, ...]:
        """The checked ``betas``; TypeError/ValueError naming the faulty parameter."""
        if isinstance(self.betas, str) or not isinstance(self.betas, Sequence | np.ndarray):
            raise TypeError(f"betas must be a sequence of numbers, got {self.betas!r:.60}")
        if not len(self.betas):
            raise ValueError("betas must hold at least one candidate weight")
        betas = tuple(check_float("betas[]", b, 0.0) for b in self.betas)
        fraction = check_float("validation_fraction", self.validation_fraction, 0.0, strict=True)
        if fraction >= 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {fraction}")
        for name, value, cls in (
            ("rating_model", self.rating_model, RatingRBM),
            ("chooser", self.chooser, ImplicitRBM),
        ):
            if value is not None and not isinstance(value, cls):
                raise TypeError(
                    f"{name} must be a {cls.__name__} instance, got {type(value).__name__}"
                )
        if self.rating_model is not None and self.rating_model.visible != "softmax":
            raise ValueError(
                "rating_model needs visible='softmax': the held-out part's relevant items are "
                "those rated at or above its high-rating level"
            )
        return betas

    def fit(self, user_items: sp.spmatrix) -> ChooseAndLike:
        """Fit the chooser and the rating model, then choose ``beta``.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Explicit ratings (see :meth:`RatingRBM.fit`); a pair stored twice is an error.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            A parameter fails its checks.
        DataError
            Malformed ratings, or too few to hold any out.
        """
        betas = self._check_params()
        X = check_ratings("user_items", user_items)
        seeds = spawn_seeds(self.random_state, 2)  # the default members' (also :func:`seeded`)
        rating, chooser = self.rating_model, self.chooser
        if rating is None:
            rating = RatingRBM(random_state=seeds[0])
        if chooser is None:
            chooser = ImplicitRBM(random_state=seeds[1])
        rng = side_generator(self.random_state, self._VALIDATION_STREAM)
        train, V, known = own_validation(
            X, None, self.validation_fraction, rng,
            keep_levels=True, conditional=rating.conditional,
        )  # fmt: skip
        if V.nnz == 0:
            raise DataError(
                f"user_items has {X.nnz} ratings: too few to hold out a validation part "
                f"(validation_fraction={self.validation_fraction})"
            )
        chooser.fit(train)
        rating.fit(train, validation=V, known_pairs=known)
        relevant = V.copy()
        relevant.data = (relevant.data >= rating.high_threshold()).astype(np.float32)
        relevant.eliminate_zeros()
        self.rating_model_, self.chooser_ = rating, chooser
        self.n_users_, self.n_items_ = X.shape
        ndcg = self._validation_ndcg(train, relevant, betas)
        self.validation_ndcg_ = ndcg
        self.beta_ = betas[int(np.argmax(ndcg))]
        return self

    def _parts(
        self, users: np.ndarray, rows: sp.csr_matrix | None = None, recalculate_user: bool = False
    ) -> list[np.ndarray]:
        """The two scored terms, ``[log P_choose, s_rate]``, float64 (len(users), n_items)."""
        choose = self.chooser_._score_block(users, rows, recalculate_user)
        rate = self.rating_model_._score_block(users, rows, recalculate_user)
        return [log_softmax(choose), np.asarray(rate, dtype=np.float64)]

    def _validation_ndcg(
        self, train: sp.csr_matrix, relevant: sp.csr_matrix, betas: tuple[float, ...]
    ) -> np.ndarray:
        """Mean NDCG@10 of every candidate weight over the users with a relevant held-out
        item (their ``train`` items excluded), float64 shape (len(betas),)."""
        users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int64)
        totals = np.zeros(len(betas))
        for lo in range(0, users.size, self._SCORE_BLOCK):
            block = users[lo : lo + self._SCORE_BLOCK]
            parts = self._parts(block)
            seen, rel = train[block], relevant[block]
            for k, beta in enumerate(betas):
                ids, _ = top_n(combine([1.0, beta], parts), _K, seen.indptr, seen.indices)
                totals[k] += ndcg_sum(ids, rel.indptr, rel.indices)
        return totals / max(users.size, 1)

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if self.beta_ is None:
            raise NotFittedError("this ChooseAndLike is not fitted yet; call fit() first")
        self.rating_model_._check_fitted()
        self.chooser_._check_fitted()

    def _check_rows(self, user_items: Any, recalculate_user: bool) -> None:
        """Rows folded in are ratings: the rating model's checks apply."""
        self.rating_model_._check_rows(user_items, recalculate_user)

    def _score_block(
        self, users: np.ndarray, rows: sp.csr_matrix | None, recalculate_user: bool
    ) -> np.ndarray:
        """``log P_choose + beta_ * s_rate`` of every item, float64 (len(users), n_items);
        with ``recalculate_user`` both members fold in ``rows``."""
        return combine([1.0, self.beta_], self._parts(users, rows, recalculate_user))

    def score_items(self, userid: int, user_items: sp.spmatrix | None = None) -> np.ndarray:
        """Ranking score of every item for one user, float64 shape (n_items,); with
        ``user_items`` (1, n_items) given, those ratings are folded in instead."""
        self._check_fitted()
        if np.ndim(userid) != 0:
            raise ValueError(f"score_items scores one user: got userid of shape {np.shape(userid)}")
        if user_items is None:
            users = as_index_array("userid", [userid], self.n_users_)
            return self._score_block(users, None, False)[0]
        self._check_rows(user_items, True)
        row = check_user_rows("user_items", user_items, 1, self.n_items_)
        return self._score_block(np.zeros(1, dtype=np.int64), row, True)[0]

    def predict(self, userids: Any, itemids: Any) -> np.ndarray:
        """The rating model's expected ratings of (user, item) pairs, float64 (n_pairs,)."""
        self._check_fitted()
        return self.rating_model_.predict(userids, itemids)

    # ------------------------------------------------------------------ files
    _MEMBERS = (("rating", "rating_model_", RatingRBM), ("chooser", "chooser_", ImplicitRBM))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Each member's arrays under ``"<member>__<name>"``; its metadata under
        ``"members"``, with ``beta``, the grid and its validation NDCG."""
        arrays: dict[str, np.ndarray] = {}
        members = {}
        for name, attr, _ in self._MEMBERS:
            a, mm = getattr(self, attr)._get_state()
            arrays.update({f"{name}__{k}": v for k, v in a.items()})
            members[name] = mm
        meta = {
            "members": members,
            "beta": self.beta_,
            "betas": [float(b) for b in self.betas],
            "validation_ndcg": [float(x) for x in self.validation_ndcg_],
            "validation_fraction": float(self.validation_fraction),
            "random_state": persistence.seed_to_json(self.random_state),
            "n_users": int(self.n_users_),
            "n_items": int(self.n_items_),
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ChooseAndLike:
        betas = finite_floats("betas", meta["betas"], len(meta["betas"]))
        model = cls(
            betas=betas,
            validation_fraction=float(meta["validation_fraction"]),
            random_state=persistence.seed_from_json(meta.get("random_state")),
        )
        shape = (int(meta["n_users"]), int(meta["n_items"]))
        for name, attr, member_cls in cls._MEMBERS:
            prefix = f"{name}__"
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            member = member_cls._from_state(sub, meta["members"][name])
            if (member.n_users, member.n_items) != shape:
                raise ModelFileError(
                    f"member {name!r} has {member.n_users} users and {member.n_items} items, "
                    f"the model {shape[0]} and {shape[1]}"
                )
            setattr(model, attr, member)
        (model.beta_,) = finite_floats("beta", [meta["beta"]], 1)
        model.validation_ndcg_ = np.asarray(
            finite_floats("validation_ndcg", meta["validation_ndcg"], len(betas))
        )
        model.n_users_, model.n_items_ = shape
        return model


def seeded(
    rating_model: RatingRBM, chooser: ImplicitRBM, random_state: Any = None, **params: Any
) -> ChooseAndLike:
    """``ChooseAndLike`` of unfitted members that keep their settings but take the seeds
    ``ChooseAndLike(random_state=random_state)`` gives its default members (an int or
    SeedSequence: the default settings then fit identically).

    Parameters
    ----------
    rating_model : RatingRBM
        Unfitted; its ``random_state`` is replaced.
    chooser : ImplicitRBM
        Unfitted; its ``random_state`` is replaced.
    random_state : int, SeedSequence, Generator or None
        Seeds the held-out draw and the two members.
    **params
        Other ``ChooseAndLike`` arguments (``betas``, ``validation_fraction``).

    Returns
    -------
    ChooseAndLike
        Unfitted.
    """
    rating_model.random_state, chooser.random_state = spawn_seeds(random_state, 2)
    return ChooseAndLike(rating_model, chooser, random_state=random_state, **params)


def default_choose_and_like(*, random_state: Any = None, num_threads: int = 0) -> ChooseAndLike:
    """``ChooseAndLike()`` with ``num_threads`` passed to both default members
    (:func:`seeded`); the model registry's ``rating-rbm-choice``.

    Parameters
    ----------
    random_state : int, SeedSequence, Generator or None
        Seeds the held-out draw and the two members.
    num_threads : int, default 0
        Numba threads of both members (0: Numba's default).

    Returns
    -------
    ChooseAndLike
        Unfitted.
    """
    return seeded(
        RatingRBM(num_threads=num_threads), ImplicitRBM(num_threads=num_threads), random_state
    )


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, float64 of the shape of ``scores`` (n_rows, n_items); ``-inf``
    entries stay ``-inf`` (probability 0)."""
    s = np.asarray(scores, dtype=np.float64)
    top = s.max(axis=1, keepdims=True)
    shifted = s - top
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
