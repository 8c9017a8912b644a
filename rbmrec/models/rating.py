"""RatingRBM: the collaborative-filtering RBM of Salakhutdinov, Mnih & Hinton (2007)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine import conditional as CR
from rbmrec.engine import gaussian as G
from rbmrec.engine import softmax as K
from rbmrec.engine import softmax_batches as KB
from rbmrec.engine._random import row_states
from rbmrec.errors import DataError, ModelFileError
from rbmrec.models import persistence
from rbmrec.models._estimator import (
    ParamsMixin,
    epoch_batch,
    num_threads,
    one_blas_thread,
    seed_generator,
)
from rbmrec.models.base import Recommender
from rbmrec.models.trainer import TrainerConfig, cd_schedule_json, is_interrupt, train
from rbmrec.models.validation import (
    as_index_array,
    check_choice,
    check_csr,
    check_fitted,
    check_high_rating,
    check_high_threshold,
    check_int,
    check_ratings,
    check_sparse_structure,
    check_unchanged,
)

log = logging.getLogger(__name__)

_MAX_LEVELS = 127  # levels are stored as int8
_SCORES = ("expected", "p_high")
_ORIENTATIONS = ("both", "item", "user")
#: Members of ``orientation="both"``, in fitting order (the first one is kept alone when
#: training is interrupted before the second starts).
_MEMBERS = ("item", "user")
#: Public parameter arrays of a single RBM; a "both" model has two sets (``members_``).
_PARAM_ATTRS = ("weights_", "visible_bias_", "hidden_bias_", "conditional_weights_")


@persistence.register
class RatingRBM(Recommender, ParamsMixin):
    """Softmax RBM for rating prediction with weights shared across users.

    Each user (or item, with ``orientation="item"``) has its own RBM whose visible units are
    K-way softmax units for the items that user rated, all RBMs sharing the weights
    ``W[item, level, hidden]``, visible biases ``b[item, level]`` and hidden biases ``c``
    (Salakhutdinov, Mnih & Hinton, "Restricted Boltzmann Machines for Collaborative
    Filtering", ICML 2007). Trained with contrastive divergence (Hinton 2002) and a CD-T
    schedule, optionally persistent CD (Tieleman 2008); the RBM itself is Smolensky's (1986)
    harmonium.

    With ``orientation="both"`` (the default) the model is two such RBMs with identical
    hyperparameters, an item-based one (I-RBM) and a user-based one (U-RBM), fitted one after
    the other (item first) and combined through their predictive distributions::

        P(r_ui = k) = w * P_item(r_ui = k) + (1 - w) * P_user(r_ui = k)       (predict_proba)
        predict(u, i) = clip(a + s * sum_k P(r_ui = k) * values_[k])            (predict)

    ``predict_proba`` is a proper distribution; the ranking scores of :meth:`score_items` and
    :meth:`recommend` (both ``recommend_score`` choices) are those of ``P``, i.e. the same
    mixture of the members' scores; ``predict`` is an affine calibration of ``P``'s mean
    (``s >= 0``, so it ranks items as ``P``'s expected rating does), clipped to the rating
    range. ``(w, a, s)``, with ``w`` in [0, 1], are the least squares of the validation
    ratings given to ``fit`` (closed form; the same fit as an unconstrained least-squares
    blend with intercept of the two members, :class:`~rbmrec.models.blend.BlendedRatingModel`,
    whenever its coefficients are non-negative). Without validation ratings (or an empty
    set) ``w = 0.5, a = 0, s = 1``. The calibration matters because mean-field expected
    ratings are shrunk towards the mean: on ML-1M (seed-0 split) the plain convex mixture
    (``a = 0, s = 1``) had validation RMSE 0.8517, the calibrated one 0.8486 (``s`` about
    1.1); on ML-100K u1 0.8927 and 0.8911.

    Why the default mixes both orientations: the item-based RBM is the better single model
    on MovieLens (it was the default until 2026-11-26), but a user-based RBM errs
    differently, and combining the two gains more than any single-model setting.
    Validation RMSE (5% carved from each training part, never the test ratings;
    ``benchmarks/README.md``), conditional I-RBM alone -> ``RatingRBM()``: ML-1M
    0.8546 -> 0.8411 (mean over 5 90/10 splits); ML-100K u1..u5 0.9012 ->
    0.8907 (0.8914 when the three mixing parameters are cross-validated instead of fitted
    on the same ratings). The hyperparameters shared by
    the members (conditional RBM, 500 hidden units, learning rate decaying by 5% per epoch,
    weight decay 0.004) were chosen for the item-based RBM on ML-1M and ML-100K u1 and
    checked on all five ML-100K folds, where no neighbouring setting (more hidden units, a
    CD-T schedule, other decay, weight decay, learning rate, momentum or batch size) was
    better by more than 0.001 RMSE. ``orientation="item"`` saves the U-RBM's fit (about a
    third of the total on ML-1M, half on ML-100K) at a cost of 0.012 (ML-100K) and 0.014
    (ML-1M) test RMSE.

    Fold-in of users unseen in ``fit`` (:meth:`predict_user`, :meth:`score_items` with
    ``user_items``, :meth:`recommend` with ``recalculate_user=True``) uses the user-based
    member alone: an item-based RBM has no hidden state for a new user. A pure
    ``orientation="item"`` model cannot fold users in.

    Parameters
    ----------
    n_hidden : int, default 500
        Number of binary hidden units.
    orientation : {"both", "item", "user"}, default "both"
        "user": one RBM per user over the items they rated (U-RBM). "item": one RBM per item
        over the users who rated it (I-RBM); the API stays users x items. "both": an I-RBM
        and a U-RBM with these hyperparameters, mixed as described above; their random
        states are spawned from ``random_state`` (``numpy.random.SeedSequence``), so a seed
        gives reproducible results.
    conditional : bool, default True
        Conditional RBM: the binary vector ``r`` of which items a row rated (training pairs,
        plus ``known_pairs`` given to ``fit``) feeds the hidden units through a learned matrix
        ``D`` (n_items, n_hidden).
    n_factors : int or None, default None
        Factored RBM: ``W = A @ B`` with ``A`` (n_items, n_levels, n_factors) and ``B``
        (n_factors, n_hidden); smaller than ``n_hidden`` (else ``fit`` raises ValueError: the
        factorisation would restrict nothing). Each factor's gradient is scaled so that a step
        moves ``W`` about as far as a step on the full ``W``, and never more than 4 times as
        far along any direction.
    visible : {"softmax", "gaussian"}, default "softmax"
        "softmax": one K-way unit per rated item over the distinct rating values (the
        paper's model). "gaussian": one real-valued unit per rated item (energy in
        ``docs/architecture.md``) for ratings on a continuous or very fine scale (any
        non-zero real values, e.g. -10..10); values are standardised by the training mean
        and standard deviation, each unit has unit variance in that scale, and predictions
        are the mean-field conditional means clipped to the training range. Supports the
        conditional and factored variants; not ``prediction="exact"`` (no closed form) nor
        ``recommend_score="p_high"``; its negative phase always uses sampled values (see
        ``negative``).
    cd_steps : int or sequence of (first_epoch, steps), default 1
        Gibbs steps of contrastive divergence, or a schedule such as
        ``[(0, 1), (15, 3), (25, 5), (35, 9)]``.
    persistent : bool, default False
        Persistent CD: one fantasy chain per training row.
    negative : {"mean_field", "sample"}, default "mean_field"
        Negative statistics from the last step's softmax probabilities (lower variance) or
        from the sampled one-hot visibles (the unbiased-in-the-limit CD-k estimator).
        Softmax only in effect: the Gaussian model's negative statistics always come from
        sampled visible values (its kernel has no mean-field variant), i.e. ``"sample"``,
        and both values train it identically.
    prediction : {"mean_field", "exact"}, default "mean_field"
        Predictive distribution: one mean-field pass, or the exact marginal with the hidden
        units summed out (the paper's Eq. 7).
    n_epochs : int, default 60
    batch_size : int or None, default None
        Rows (users, or items) per mini-batch. None: 100, or fewer on small data so that
        every epoch makes at least 10 updates (``ceil(n_rows / 10)``): the learning-rate
        schedule and early stopping count epochs, and with a handful of updates per epoch
        the rate decays (and patience runs out) before training has left its initial
        plateau. The size used is ``batch_size_`` after ``fit``.
    learning_rate : float, default 0.05
        Step size applied to the batch-averaged gradient.
    momentum : float, default 0.9
    lr_decay : float, default 0.95
        Learning rate of epoch ``e`` (0-based) is ``learning_rate * lr_decay ** e``.
    weight_decay : float, default 0.004
        L2 penalty on ``W`` (or ``A``, ``B``) and ``D``.
    patience : int or None, default 5
        Early stopping on validation RMSE when ``fit`` gets ``validation``; the best epoch's
        parameters are kept. None disables early stopping (the last epoch is kept).
    recommend_score : {"expected", "p_high"}, default "expected"
        Ranking score of :meth:`recommend`: the expected rating, or the probability of a
        rating at or above ``high_rating``.
    high_rating : float or None, default None
        Threshold of ``"p_high"``; None means the second-highest rating level (the highest
        when there are only two levels, so that ``p_high`` still separates items). A number must
        lie above the lowest and at most at the highest rating level seen in ``fit`` (else
        ``fit`` raises ValueError: every item would get the same score).
    random_state : int, SeedSequence, Generator or None
        With ``orientation="both"``, the members get two independent children of it (a
        SeedSequence itself is not advanced).
    num_threads : int, default 0
        Numba threads (0: numba's default). Results do not depend on it.
    dtype : numpy dtype, default float32
    progress : bool, default False
        Show a tqdm bar over epochs.
    callbacks : sequence of callables, default ()
        ``callback(epoch, metrics) -> bool``; returning True stops training (each is checked
        to be callable before training starts). With ``orientation="both"`` they are called
        for the item member's epochs, then (epochs counted from 0 again) the user member's;
        each member shows its own progress bar.

    Attributes
    ----------
    weights_ : ndarray, shape (n_items, n_levels, n_hidden)
        (n_users, ...) in item orientation. Single-orientation models only, as are
        ``visible_bias_``, ``hidden_bias_`` and ``conditional_weights_``: for "both" they
        raise AttributeError (the members' parameters have different shapes; use
        ``members_["item"].weights_`` and ``members_["user"].weights_``).
    visible_bias_ : ndarray, shape (n_items, n_levels)
    hidden_bias_ : ndarray, shape (n_hidden,)
    conditional_weights_ : ndarray, shape (n_items, n_hidden), or None
        ``D`` of the conditional model ((n_users, n_hidden) in item orientation).
    values_ : ndarray, shape (n_levels,)
        Rating value of each level, sorted.
    history_ : list of dict
        Per epoch: epoch, train_recon_rmse, valid_rmse (with validation), seconds, cd_steps,
        learning_rate. "both": the item member's records, then the user member's, each with
        a ``"member"`` key ("item" or "user").
    best_epoch_ : int or None
        Epoch (1-based) whose parameters were kept under early stopping. "both": a dict
        ``{"item": ..., "user": ...}``.
    batch_size_ : int
        Mini-batch size used. "both": a dict per member.
    members_ : dict of str to RatingRBM, or None
        "both": the fitted ``{"item": I-RBM, "user": U-RBM}`` (only ``{"item": ...}`` when
        training was interrupted, e.g. by Ctrl-C, before the user member started: the item
        member is then used alone, ``blend_weight_ = 1``). None for a single orientation.
    blend_weight_ : float
        "both": ``w``, the weight of the item member's distribution.
    calibration_ : tuple of float
        "both": ``(a, s)``, intercept and slope of ``predict``.
    interrupted_ : bool
        Training was stopped by KeyboardInterrupt (the best parameters so far are kept).
    fit_seconds_ : float
        Wall time of ``fit`` (both members for "both"); None for a model loaded from a file
        written before it was saved.
    n_users_, n_items_ : int
    """

    def __init__(
        self,
        n_hidden: int = 500,
        *,
        orientation: str = "both",
        conditional: bool = True,
        n_factors: int | None = None,
        visible: str = "softmax",
        cd_steps: int | Sequence[tuple[int, int]] = 1,
        persistent: bool = False,
        negative: str = "mean_field",
        prediction: str = "mean_field",
        n_epochs: int = 60,
        batch_size: int | None = None,
        learning_rate: float = 0.05,
        momentum: float = 0.9,
        lr_decay: float = 0.95,
        weight_decay: float = 0.004,
        patience: int | None = 5,
        recommend_score: str = "expected",
        high_rating: float | None = None,
        random_state: Any = None,
        num_threads: int = 0,
        dtype: Any = np.float32,
        progress: bool = False,
        callbacks: Sequence[Callable[[int, dict[str, float]], bool | None]] = (),
    ) -> None:
        self.n_hidden = n_hidden
        self.orientation = orientation
        self.conditional = conditional
        self.n_factors = n_factors
        self.visible = visible
        self.cd_steps = cd_steps
        self.persistent = persistent
        self.negative = negative
        self.prediction = prediction
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.lr_decay = lr_decay
        self.weight_decay = weight_decay
        self.patience = patience
        self.recommend_score = recommend_score
        self.high_rating = high_rating
        self.random_state = random_state
        self.num_threads = num_threads
        self.dtype = dtype
        self.progress = progress
        self.callbacks = callbacks
        self.weights_: np.ndarray | None = None

    # ------------------------------------------------------------------ validation
    #: Constructor arguments, in signature order.
    _PARAMS = (
        "n_hidden", "orientation", "conditional", "n_factors", "visible", "cd_steps",
        "persistent", "negative", "prediction", "n_epochs", "batch_size", "learning_rate",
        "momentum", "lr_decay", "weight_decay", "patience", "recommend_score", "high_rating",
        "random_state", "num_threads", "dtype", "progress", "callbacks",
    )  # fmt: skip

    def _check_params(self) -> None:
        check_int("n_hidden", self.n_hidden, 1)
        check_choice("orientation", self.orientation, _ORIENTATIONS)
        check_choice("negative", self.negative, ("mean_field", "sample"))
        check_choice("visible", self.visible, ("softmax", "gaussian"))
        self._check_inference_settings()
        if not isinstance(self.conditional, bool | np.bool_):
            raise TypeError(f"conditional must be a bool, got {type(self.conditional).__name__}")
        if not isinstance(self.persistent, bool | np.bool_):
            raise TypeError(f"persistent must be a bool, got {type(self.persistent).__name__}")
        if self.n_factors is not None:
            check_int("n_factors", self.n_factors, 1)
        if np.dtype(self.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self._config().validate()  # loop hyperparameters and callbacks, before any work

    #: Inference settings: free to change after fit (checked again by every scoring call);
    #: a "both" model passes them on to its members.
    _INFERENCE = ("prediction", "recommend_score", "high_rating", "num_threads")

    def _check_inference_settings(self) -> None:
        check_choice("prediction", self.prediction, ("mean_field", "exact"))
        check_choice("recommend_score", self.recommend_score, _SCORES)
        if self.visible == "gaussian" and self.prediction == "exact":
            raise ValueError(
                'prediction="exact" needs visible="softmax": the Gaussian model\'s marginal '
                'has no closed form; use prediction="mean_field"'
            )
        if self.visible == "gaussian" and self.recommend_score != "expected":
            raise ValueError('recommend_score="p_high" needs visible="softmax"')
        check_high_rating(self.high_rating)
        check_int("num_threads", self.num_threads, 0)

    #: Train the softmax models (not factored) through
    #: :func:`rbmrec.engine.softmax_batches.softmax_train_batches`, many batches per kernel
    #: call; False runs the same arithmetic batch by batch from Python (tests compare them).
    _SPANS = True

    #: Mini-batch size of ``batch_size=None`` on data with at least 10 batches of it.
    _DEFAULT_BATCH = 100
    #: ``batch_size=None`` shrinks batches so an epoch has at least this many updates.
    _MIN_UPDATES = 10

    def _batch_for(self, n_rows: int) -> int:
        """The mini-batch size used on ``n_rows`` training rows."""
        return epoch_batch(self.batch_size, n_rows, self._DEFAULT_BATCH, self._MIN_UPDATES)

    def _config(self, n_rows: int | None = None) -> TrainerConfig:
        return TrainerConfig(
            n_epochs=self.n_epochs,
            batch_size=self._batch_for(n_rows if n_rows is not None else 10**9),
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            lr_decay=self.lr_decay,
            cd_steps=self.cd_steps,
            patience=self.patience,
            monitor="valid_rmse",
            progress=self.progress,
            callbacks=self.callbacks,
        )

    def _check_fit_input(
        self, user_items: Any, validation: Any
    ) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        """Checked ``fit`` ratings and validation ratings (same shape), or clear errors."""
        X = check_ratings("user_items", user_items)
        V = None
        if validation is not None:
            V = check_ratings("validation", validation, allow_empty=True)
            if V.shape != X.shape:
                raise DataError(
                    f"validation has shape {V.shape} but user_items has shape {X.shape}"
                )
        return X, V

    def _prepare(
        self, user_items: Any, validation: Any, known_pairs: Any
    ) -> tuple[sp.csr_matrix, sp.csr_matrix | None, np.ndarray, Any]:
        """Every data check of ``fit``: checked ratings, validation ratings, rating levels
        (empty for the gaussian model) and ``known_pairs``. Changes nothing."""
        X, V = self._check_fit_input(user_items, validation)
        if self.visible == "gaussian":
            values = np.zeros(0)
        else:
            values = np.unique(X.data)
            if len(values) > _MAX_LEVELS:
                raise DataError(
                    f"user_items has {len(values)} distinct rating values; the softmax model "
                    f"supports at most {_MAX_LEVELS} levels"
                )
            if len(values) < 2:
                raise DataError(
                    "user_items needs at least two distinct rating values to learn from"
                )
            if self.high_rating is not None and self.recommend_score == "p_high":
                check_high_threshold(self.high_rating, values)
        if known_pairs is not None:
            if not self.conditional:
                raise ValueError("known_pairs is only used by the conditional model")
            if not sp.issparse(known_pairs) or known_pairs.shape != X.shape:
                raise DataError(f"known_pairs must be a sparse matrix of shape {X.shape}")
            check_sparse_structure("known_pairs", known_pairs)
        return X, V, values, known_pairs

    # ------------------------------------------------------------------ layout helpers
    def _orient(self, X: sp.csr_matrix) -> sp.csr_matrix:
        """users x items -> rows x groups of the RBM (transposed in item orientation)."""
        return X if self.orientation == "user" else sp.csr_matrix(X.T)

    def _to_levels(
        self, X: sp.csr_matrix, values: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel CSR arrays (indptr int64, indices int32, levels int8) of a ratings CSR.

        ``values``: the rating levels (default ``values_``).
        """
        values = self.values_ if values is None else values
        return (
            X.indptr.astype(np.int64),
            X.indices.astype(np.int32),
            level_index(values, X.data),
        )

    def _to_kernel(
        self,
        X: sp.csr_matrix,
        values: np.ndarray | None = None,
        scale: tuple[float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Kernel CSR arrays: levels (softmax) or standardised float values (gaussian).

        ``values`` and ``scale`` default to the fitted ``values_`` and ``_scale``.
        """
        if self.visible == "softmax":
            return self._to_levels(X, values)
        mu, sd = self._scale if scale is None else scale
        dtype = np.dtype(self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            z = (np.asarray(X.data, dtype=np.float64) - mu) / sd
            data = z.astype(dtype)
        bad = ~np.isfinite(data)
        if bad.any():
            raise DataError(
                f"rating {float(X.data[bad][0])} is out of range for this gaussian model: "
                f"standardised by the training mean {mu:g} and spread {sd:g} it exceeds "
                f"{dtype.name}'s range"
            )
        return X.indptr.astype(np.int64), X.indices.astype(np.int32), data

    def _weights(self) -> np.ndarray:
        """The full W (n_groups, n_levels, n_hidden), materialised for factored models."""
        if self.n_factors is None:
            return self._params["W"]
        A, B = self._params["A"], self._params["B"]
        return (A.reshape(-1, A.shape[-1]) @ B).reshape(*A.shape[:-1], B.shape[1])

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        user_items: sp.spmatrix,
        validation: sp.spmatrix | None = None,
        known_pairs: sp.spmatrix | None = None,
    ) -> RatingRBM:
        """Fit on a users x items CSR of raw ratings.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Raw ratings on any finite set of non-zero values (1..5, half stars, ...); the
            distinct values become the softmax levels. Missing entries mean "not rated". A
            (user, item) pair stored twice is an error (DataError), not summed.
        validation : scipy.sparse matrix, shape (n_users, n_items), optional
            Held-out ratings for per-epoch validation RMSE and early stopping.
        known_pairs : scipy.sparse matrix, shape (n_users, n_items), optional
            Conditional RBM only: pairs known to be rated whose ratings are unknown (the
            Netflix "qualifying" setting). Never pass an offline test split's pairs here.

        Returns
        -------
        self

        Raises
        ------
        DataError, ValueError, TypeError
            When the data or a hyperparameter fails its checks; all run before the model
            changes, so a fitted model stays exactly as it was.
        """
        self._check_params()
        # Here, not in _check_params: model files written before this check still load.
        if self.n_factors is not None and self.n_factors >= self.n_hidden:
            raise ValueError(
                f"n_factors={self.n_factors} must be smaller than n_hidden={self.n_hidden}: "
                "W = A @ B has rank at most n_hidden anyway, so such a factorisation restricts "
                "nothing and only adds parameters; use n_factors=None for the full W"
            )
        if self.orientation == "both":
            return self._fit_both(user_items, validation, known_pairs)
        # Every check runs, and the new state is built in local variables, before the model
        # changes: a fit that fails on its input leaves a fitted model exactly as it was.
        X, V, values, known_pairs = self._prepare(user_items, validation, known_pairs)
        gauss = self.visible == "gaussian"
        scale = value_range = None
        if gauss:
            with np.errstate(over="ignore", invalid="ignore"):
                mu, sd = float(X.data.mean()), float(X.data.std())
            if not (np.isfinite(mu) and np.isfinite(sd)):
                raise DataError(
                    f"user_items: the ratings' mean or spread overflows float64 (ratings from "
                    f"{float(X.data.min()):g} to {float(X.data.max()):g}); rescale them"
                )
            scale = (mu, sd if sd > 0 else 1.0)
            value_range = (float(X.data.min()), float(X.data.max()))
        rng = seed_generator(self.random_state)
        dtype = np.dtype(self.dtype)

        Xo = self._orient(X)
        train_arrays = self._to_kernel(Xo, values, scale)
        n_rows, n_groups = Xo.shape
        n_levels = len(values)
        H = self.n_hidden
        unit = (n_groups,) if gauss else (n_groups, n_levels)  # shape of b; W adds H

        if gauss:
            # Visible biases: each group's mean standardised value, shrunk towards 0.
            cnt = np.bincount(train_arrays[1], minlength=n_groups)
            tot = np.bincount(train_arrays[1], weights=train_arrays[2], minlength=n_groups)
            b = (tot / (cnt + 1.0)).astype(dtype)
        else:
            # Visible biases: log of each group's smoothed level frequencies (paper, 2.2).
            counts = np.zeros((n_groups, n_levels))
            np.add.at(counts, (train_arrays[1], train_arrays[2]), 1.0)
            prior = counts.sum(0) / counts.sum()
            b = np.log((counts + prior) / (counts.sum(1, keepdims=True) + 1.0)).astype(dtype)
        params: dict[str, np.ndarray] = {"b": b, "c": np.zeros(H, dtype=dtype)}
        decay = ["W"]
        if self.n_factors is None:
            params["W"] = rng.normal(0.0, 0.01, (*unit, H)).astype(dtype)
        else:
            C = self.n_factors
            # Entries of A and B with std s give W = A B entries of std s^2 sqrt(C): choose s
            # so W starts like the full model's N(0, 0.01^2).
            s = float(np.sqrt(0.01 / np.sqrt(C)))
            params["A"] = rng.normal(0.0, s, (*unit, C)).astype(dtype)
            params["B"] = rng.normal(0.0, s, (C, H)).astype(dtype)
            decay = ["A", "B"]
        R = None
        if self.conditional:
            pattern = Xo.copy()
            pattern.data[:] = 1.0
            if known_pairs is not None:
                # A copy: csr_matrix(a float64 CSR) is the caller's matrix, whose ratings
                # the next line would overwrite with 1.
                kp = self._orient(sp.csr_matrix(known_pairs, dtype=np.float64, copy=True))
                kp.data[:] = 1.0
                pattern = pattern + kp
                pattern.data[:] = 1.0
            R = sp.csr_matrix(pattern, dtype=dtype)
            params["D"] = np.zeros((R.shape[1], H), dtype=dtype)
            decay.append("D")
        empty_chain = np.zeros(0, dtype if gauss else np.int8)
        config = self._config(n_rows)

        # Commit: plain assignments only from here to training.
        self.members_ = None
        self.values_ = values
        if gauss:
            self._scale = scale
            self.value_range_ = value_range
        self.n_users_, self.n_items_ = X.shape
        self._rng = rng
        self._train = train_arrays
        self._R = R
        self._params = params
        self._chain = train_arrays[2].copy() if self.persistent else empty_chain
        self.batch_size_ = config.batch_size
        self.history_ = []
        self.best_epoch_ = None
        self.interrupted_ = False
        self.fit_seconds_ = 0.0
        self._set_public()

        indptr, indices, levels = self._train
        neg_mode = K.NEG_MEAN_FIELD if self.negative == "mean_field" else K.NEG_SAMPLE
        gbuf = {"b": np.empty_like(b), "c": np.empty(H, dtype=dtype)}
        if self.n_factors is not None or gauss:
            gbuf["W"] = np.empty((*unit, H), dtype=dtype)
        sigma = np.ones(n_groups, dtype=dtype)

        def step(rows: np.ndarray, k: int, rng_: np.random.Generator):
            self._infer = {}  # the parameters change below (e.g. a callback's recommend)
            W = self._weights()
            off = self._offset(rows)
            hd = np.empty((len(rows), H), dtype=dtype)
            grads: dict[str, Any] = {"b": gbuf["b"], "c": gbuf["c"]}
            if gauss:
                # Always sampled negatives (the kernel has no mean-field mode): ``negative``
                # has no effect here, as its docstring says.
                stats = G.gaussian_masked_cd(
                    indptr, indices, levels, rows, W, params["b"], params["c"], sigma, off, k,
                    row_states(rng_, len(rows)), self._chain, self.persistent,
                    gbuf["W"], gbuf["b"], gbuf["c"], hd,
                )  # fmt: skip
                if self.n_factors is None:
                    grads["W"] = gbuf["W"]
            elif self.n_factors is None:
                # Fused path: the weight statistics go straight into the momentum step.
                phases = K.softmax_cd_phases(
                    indptr, indices, levels, rows, W, params["b"], params["c"], off, k,
                    row_states(rng_, len(rows)), self._chain, self.persistent,
                    gbuf["b"], gbuf["c"], hd, neg_mode,
                )  # fmt: skip
                stats = phases[0]

                def update_W(p, v, scale, mom, lr_wd, phases=phases):
                    t = p.dtype.type
                    K.softmax_update_weights(phases, p, v, t(scale), t(mom), t(lr_wd))

                grads["W"] = update_W
            else:
                stats = K.softmax_cd(
                    indptr, indices, levels, rows, W, params["b"], params["c"], off, k,
                    row_states(rng_, len(rows)), self._chain, self.persistent,
                    gbuf["W"], gbuf["b"], gbuf["c"], hd, neg_mode,
                )  # fmt: skip
            if self.n_factors is not None:
                gW = gbuf["W"].reshape(-1, H)
                A2 = params["A"].reshape(gW.shape[0], -1)
                B = params["B"]
                grads["A"], grads["B"] = _factored_steps(gW, A2, B)
                grads["A"] = grads["A"].reshape(params["A"].shape)
            if self._R is not None:
                R = self._R

                def update_D(p, v, scale, mom, lr_wd, rows=rows, hd=hd):
                    # = apply_momentum(p, v, R[rows].T @ hd, ...), bitwise, without the
                    # dense (n_cols, H) gradient.
                    t = p.dtype.type
                    CR.pattern_momentum_update(
                        R.indptr, R.indices, rows, hd, p, v, t(scale), t(mom), t(lr_wd)
                    )

                grads["D"] = update_D
            return grads, {"train_recon_mse": stats[0], "count": stats[1]}

        span_step = None
        if self._SPANS and not gauss and self.n_factors is None:
            no_pattern = np.zeros(0, dtype=np.int32)
            no_D = np.zeros((0, H), dtype=dtype)

            def span_step(rows, batch_size, k, rng_, lr, mom, lr_wd, velocity):
                # step() and the trainer's momentum steps for many batches in one kernel call.
                self._infer = {}
                R = self._R
                r_ptr, r_ind, D, vD = (no_pattern, no_pattern, no_D, no_D) if R is None else (
                    R.indptr, R.indices, params["D"], velocity["D"]
                )  # fmt: skip
                stats = np.empty((-(-len(rows) // batch_size), 2))
                KB.softmax_train_batches(
                    indptr, indices, levels, rows, batch_size, row_states(rng_, len(rows)),
                    params["W"], params["b"], params["c"], velocity["W"], velocity["b"],
                    velocity["c"], r_ptr, r_ind, D, vD, lr, mom, lr_wd["W"], lr_wd.get("D", 0.0),
                    k, self._chain, self.persistent, neg_mode, stats,
                )  # fmt: skip
                return {"train_recon_mse": stats[:, 0], "count": stats[:, 1]}

        evaluate = None
        if V is not None and V.nnz:
            vu, vi = V.nonzero()
            vr = np.asarray(V[vu, vi]).ravel()

            def evaluate(epoch: int) -> dict[str, float]:
                pred = self.predict(vu, vi)
                return {"valid_rmse": float(np.sqrt(np.mean((pred - vr) ** 2)))}

        if evaluate is None:
            config.patience = None
        t0 = time.perf_counter()
        try:
            with num_threads(self.num_threads):
                result = train(
                    params, step, n_rows, config, rng, decay=decay, evaluate=evaluate,
                    derive=_recon_rmse,
                    describe=f"n_hidden={self.n_hidden}, batch_size={self.batch_size_}, ",
                    span_step=span_step, history=self.history_,  # kept if a callback raises
                )  # fmt: skip
        finally:
            self._set_public()  # also when training raises: weights_ = A @ B as predicted
        self.best_epoch_ = None if result.best_epoch is None else result.best_epoch + 1
        self.interrupted_ = result.interrupted
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------ orientation="both"
    def _member(self, orientation: str, seed: np.random.SeedSequence) -> RatingRBM:
        """A single-orientation RatingRBM with this model's hyperparameters."""
        kw = {k: getattr(self, k) for k in self._HYPER}
        kw.update(
            orientation=orientation, cd_steps=self.cd_steps, random_state=seed, dtype=self.dtype,
            progress=self.progress, callbacks=self.callbacks,
        )  # fmt: skip
        return type(self)(**kw)

    def _fit_both(
        self,
        user_items: sp.spmatrix,
        validation: sp.spmatrix | None,
        known_pairs: sp.spmatrix | None,
    ) -> RatingRBM:
        """Fit the item- and the user-based member, then the mixing weight on validation."""
        X, V, _, _ = self._prepare(user_items, validation, known_pairs)  # before any training
        seeds = _spawn(self.random_state, len(_MEMBERS))
        t0 = time.perf_counter()
        members: dict[str, RatingRBM] = {}
        interrupted = False
        for name, seed in zip(_MEMBERS, seeds, strict=True):
            model = self._member(name, seed)
            try:
                model.fit(X, validation=V, known_pairs=known_pairs)
            except (KeyboardInterrupt, SystemError) as exc:
                if not members or not is_interrupt(exc):
                    raise
                # Interrupted outside the trainer's loop (which keeps its best epoch): the
                # second member has no usable parameters, so the first one stands alone.
                log.warning("training interrupted; keeping the %s-based member alone", _MEMBERS[0])
                interrupted = True
                break
            members[name] = model
            if model.interrupted_:
                interrupted = True
                if len(members) < len(_MEMBERS):
                    log.warning(
                        "training interrupted; the %s-based member is used alone (weight 1)", name
                    )
                break
        self._adopt(members, *self._mixing_fit(members, V))
        self.interrupted_ = interrupted
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    @staticmethod
    def _mixing_fit(
        members: dict[str, RatingRBM], V: sp.csr_matrix | None
    ) -> tuple[float, float, float]:
        """Item weight ``w`` and calibration ``(a, s)`` minimising the squared error on ``V``.

        The prediction is ``a + s * (w * p_item + (1 - w) * p_user)`` with ``w`` in [0, 1] and
        ``s >= 0``: the same family as an unconstrained least-squares blend
        ``a + c_item * p_item + c_user * p_user`` with non-negative coefficients
        (``s = c_item + c_user``, ``w = c_item / s``). Closed form: the unconstrained least
        squares when both coefficients are >= 0, else the better member alone with its own
        line (the optimum of the convex problem is then on that face). Without validation
        ratings (or an empty set): ``w = 0.5`` (1 with the item member alone), ``a = 0``,
        ``s = 1``.
        """
        alone = "user" not in members
        if V is None or V.nnz == 0:
            return (1.0 if alone else 0.5), 0.0, 1.0
        vu, vi = V.nonzero()
        y = np.asarray(V[vu, vi], dtype=np.float64).ravel()
        p_item = np.asarray(members["item"].predict(vu, vi), dtype=np.float64)
        if alone:
            return (1.0, *_line(p_item, y))
        p_user = np.asarray(members["user"].predict(vu, vi), dtype=np.float64)
        F = np.column_stack([np.ones_like(y), p_item, p_user])
        (a, c_item, c_user), *_ = np.linalg.lstsq(F, y, rcond=None)
        if c_item >= 0 and c_user >= 0 and c_item + c_user > 0:
            return float(c_item / (c_item + c_user)), float(a), float(c_item + c_user)
        best: tuple[float, float, float, float] | None = None  # (sse, w, a, s)
        for w, p in ((1.0, p_item), (0.0, p_user)):
            a, slope = _line(p, y)
            sse = float(np.sum((a + slope * p - y) ** 2))
            if best is None or sse < best[0]:
                best = (sse, w, a, slope)
        assert best is not None
        return best[1], best[2], best[3]

    def _adopt(
        self, members: dict[str, RatingRBM], weight: float, intercept: float, slope: float
    ) -> None:
        """Make fitted ``members``, the item member's weight and the calibration this
        model's state."""
        if "item" not in members or not set(members) <= set(_MEMBERS):
            raise ValueError(f"a 'both' model needs an item member, got {sorted(members)}")
        first = members["item"]
        self.members_ = members
        self._fitted_structure = self._structure()
        self.blend_weight_ = float(weight)
        self.calibration_ = (float(intercept), float(slope))
        self.n_users_, self.n_items_ = first.n_users_, first.n_items_
        self.values_ = first.values_
        if self.visible == "gaussian":
            self._scale = first._scale
            self.value_range_ = first.value_range_
        self.history_ = [
            {**rec, "member": name} for name, m in members.items() for rec in m.history_
        ]
        self.best_epoch_ = {name: m.best_epoch_ for name, m in members.items()}
        self.batch_size_ = {name: getattr(m, "batch_size_", None) for name, m in members.items()}

    def _value_bounds(self) -> tuple[float, float]:
        """Smallest and largest training rating."""
        if self.visible == "gaussian":
            return self.value_range_
        return float(self.values_[0]), float(self.values_[-1])

    def _both(self) -> dict[str, RatingRBM] | None:
        """The members of a fitted ``orientation="both"`` model, else None."""
        return getattr(self, "members_", None)

    #: Hyperparameters that fix the shapes and meaning of the fitted parameters.
    _STRUCTURE = ("n_hidden", "orientation", "conditional", "n_factors", "visible", "dtype")

    def _structure(self) -> dict[str, Any]:
        """The current values of :attr:`_STRUCTURE` (dtype as its name)."""
        out = {k: getattr(self, k) for k in self._STRUCTURE}
        out["dtype"] = np.dtype(out["dtype"]).name
        return out

    def _check_fitted(self) -> None:
        """NotFittedError before ``fit``; ValueError when a hyperparameter that fixes the
        parameters' shapes or meaning was changed after it (the kernels would otherwise run
        on parameters of another model: wrong shapes, a Numba typing error, or a crash)."""
        members = self._both()
        if members is None:
            check_fitted(self)
        check_unchanged(
            getattr(self, "_fitted_structure", None), self._structure(), "scoring and save"
        )
        # Inference settings may have changed since fit (a typo would otherwise pick another
        # computation silently); a "both" model's members score with the model's settings.
        self._check_inference_settings()
        for m in (members or {}).values():
            for name in self._INFERENCE:
                setattr(m, name, getattr(self, name))

    def _mix(self, fn: Callable[[RatingRBM], np.ndarray]) -> np.ndarray:
        """``w * fn(item member) + (1 - w) * fn(user member)`` (the item member alone if the
        user member is missing)."""
        ms = self.members_
        if "user" not in ms:
            return fn(ms["item"])
        w = self.blend_weight_
        return w * fn(ms["item"]) + (1.0 - w) * fn(ms["user"])

    def _fold_in_member(self) -> RatingRBM | None:
        """The member that folds in new users for a "both" model (None for a single RBM)."""
        ms = self._both()
        if ms is None:
            return None
        if "user" not in ms:
            raise NotImplementedError(
                "fold-in of new users needs the user-based member, and this model has none "
                "(training was interrupted before it was fitted); refit the model"
            )
        return ms["user"]

    def _set_public(self) -> None:
        self._infer = {}  # inference caches derived from the parameters: rebuilt on demand
        self._fitted_structure = self._structure()
        self.weights_ = self._weights()
        self.visible_bias_ = self._params["b"]
        self.hidden_bias_ = self._params["c"]
        self.conditional_weights_ = self._params.get("D")

    def _offset(self, rows: np.ndarray) -> np.ndarray:
        """Per-row hidden offset r @ D (n_batch, n_hidden), or an empty (0, n_hidden)."""
        H = self.n_hidden
        dtype = self._params["c"].dtype
        if self._R is None:
            return np.zeros((0, H), dtype=dtype)
        out = np.empty((len(rows), H), dtype=dtype)
        D = self._params["D"]
        rows = np.asarray(rows, dtype=np.int64)
        with num_threads(self.num_threads):
            CR.pattern_offset(self._R.indptr, self._R.indices, rows, D, out)  # = R[rows] @ D
        return out

    # ------------------------------------------------------------------ inference
    def _pair_probs(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        levels: np.ndarray,
        rows: np.ndarray,
        pair_row: np.ndarray,
        pair_group: np.ndarray,
        offset: np.ndarray,
    ) -> np.ndarray:
        """Level distributions (n_pairs, n_levels) for pairs given per-row observations."""
        W = self._weights()
        p = self._params
        with num_threads(self.num_threads):
            x = K.softmax_hidden_input(indptr, indices, levels, rows, W, p["c"], offset)
            if self.prediction == "mean_field":
                x = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow
            return K.softmax_pair_probs(
                x, pair_row, pair_group, W, p["b"], self.prediction == "exact"
            )

    def predict_proba(self, userids: Any, itemids: Any) -> np.ndarray:
        """Predictive distribution over rating levels for (user, item) pairs.

        Parameters
        ----------
        userids, itemids : array-like of int, shape (n_pairs,)

        Returns
        -------
        ndarray of float64, shape (n_pairs, n_levels)
            Column k is the probability of rating ``values_[k]``.
        """
        self._check_fitted()
        if self.visible == "gaussian":
            raise ValueError('predict_proba needs visible="softmax" (levels); use predict')
        if self._both() is not None:
            return self._mix(lambda m: m.predict_proba(userids, itemids))
        return self._pairs(userids, itemids, self._pair_probs)

    def _pairs(self, userids: Any, itemids: Any, fn: Callable[..., np.ndarray]) -> np.ndarray:
        """Run ``fn`` (``_pair_probs`` or ``_pair_values``) on checked (user, item) pairs."""
        u = as_index_array("userids", userids, self.n_users_)
        i = as_index_array("itemids", itemids, self.n_items_)
        if len(u) != len(i):
            raise ValueError(f"userids has {len(u)} entries but itemids has {len(i)}")
        rows, groups = (u, i) if self.orientation == "user" else (i, u)
        uniq, pair_row = np.unique(rows, return_inverse=True)
        indptr, indices, levels = self._train
        return fn(
            indptr, indices, levels, uniq, pair_row.astype(np.int64), groups, self._offset(uniq)
        )

    def _gauss_hidden(
        self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray,
        offset: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Gaussian model: p(h | observed values) per row, shape (len(rows), n_hidden)."""
        sigma = np.ones(self._params["b"].shape[0], dtype=self._params["c"].dtype)
        with num_threads(self.num_threads):
            return G.gaussian_masked_hidden_probs(
                indptr, indices, data, rows, self._weights(), self._params["c"], sigma, offset
            )

    def _to_scale(self, z: np.ndarray) -> np.ndarray:
        """Standardised conditional means -> values on the training scale, clipped to it."""
        mu, sd = self._scale
        return np.clip(mu + sd * np.asarray(z, dtype=np.float64), *self.value_range_)

    def _pair_values(
        self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray,
        pair_row: np.ndarray, pair_group: np.ndarray, offset: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """Gaussian model: mean-field E[v | h] for pairs, original scale, (n_pairs,)."""
        h = self._gauss_hidden(indptr, indices, data, rows, offset)
        W = self._weights()
        z = self._params["b"][pair_group] + np.einsum("ph,ph->p", W[pair_group], h[pair_row])
        return self._to_scale(z)

    def predict(self, userids: Any, itemids: Any) -> np.ndarray:
        """Expected rating on the original scale for each (user, item) pair.

        Conditioned on each user's training ratings.

        Parameters
        ----------
        userids, itemids : array-like of int, shape (n_pairs,)

        Returns
        -------
        ndarray of float64, shape (n_pairs,)
        """
        self._check_fitted()
        if self._both() is not None:
            a, s = self.calibration_
            mean = self._mix(lambda m: m.predict(userids, itemids))
            return np.clip(a + s * mean, *self._value_bounds())
        if self.visible == "gaussian":
            return self._pairs(userids, itemids, self._pair_values)
        return self.predict_proba(userids, itemids) @ self.values_

    def predict_user(self, user_ratings: Any, itemids: Any) -> np.ndarray:
        """Fold in a user never seen in ``fit`` (no retraining) and predict ratings.

        Parameters
        ----------
        user_ratings : scipy.sparse matrix, shape (1, n_items)
            The user's ratings (values among ``values_``).
        itemids : array-like of int, shape (n_pairs,)

        Returns
        -------
        ndarray of float64, shape (n_pairs,)
        """
        self._check_fitted()
        row = self._user_row("user_ratings", user_ratings)
        items = as_index_array("itemids", itemids, self.n_items_)
        if self.visible == "gaussian":
            return self._fold_in_scores(row, items)
        return self._fold_in_probs(row, items) @ self.values_

    def _user_row(self, name: str, ratings: Any) -> sp.csr_matrix:
        """One user's ratings to fold in, checked: values among the levels and shape
        (1, n_items) (a wider row would reach the kernels with indices past the weights)."""
        row = check_ratings(name, ratings, allow_empty=True)
        if row.shape != (1, self.n_items_):
            raise DataError(
                f"{name} must have shape (1, {self.n_items_}) (one user's ratings of the "
                f"{self.n_items_} items seen in fit), got {row.shape}"
            )
        return row

    def _fold_in_scores(self, row: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """Ranking scores (gaussian: predicted values) of ``items`` for a folded-in row."""
        member = self._fold_in_member()
        if member is not None:
            return member._fold_in_scores(row, items)
        if self.visible == "softmax":
            return self._score(self._fold_in_probs(row, items))
        return self._fold_in_probs(row, items)

    def _fold_in_probs(self, row: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """Level distributions (softmax) or predicted values (gaussian) for a new row."""
        member = self._fold_in_member()
        if member is not None:
            return member._fold_in_probs(row, items)
        if self.orientation == "item":
            raise NotImplementedError(
                'fold-in of new users needs orientation="user": an item-based RBM has no '
                "hidden state for a user (refit with the user's ratings instead)"
            )
        indptr, indices, levels = self._to_kernel(row)
        off = np.zeros((0, self.n_hidden), dtype=self._params["c"].dtype)
        if self._R is not None:
            r = row.copy()
            r.data[:] = 1.0
            off = np.asarray(r @ self._params["D"], dtype=off.dtype)
        rows = np.zeros(1, dtype=np.int64)
        fn = self._pair_probs if self.visible == "softmax" else self._pair_values
        return fn(indptr, indices, levels, rows, np.zeros(len(items), np.int64), items, off)

    # ------------------------------------------------------------------ top-N
    def _level_weights(self) -> np.ndarray:
        """Per-level weights of the ranking score, shape (n_levels,): values or a 0/1 mask."""
        if self.recommend_score == "expected":
            return np.asarray(self.values_, dtype=np.float64)
        if self.high_rating is None:
            # With two levels the second-highest is the lowest: P(rating >= it) = 1 for every
            # item, and the list would fall into id order.
            thr = self.values_[-2] if len(self.values_) > 2 else self.values_[-1]
        else:
            thr = check_high_threshold(check_high_rating(self.high_rating), self.values_)
        return (self.values_ >= thr).astype(np.float64)

    def _score(self, probs: np.ndarray) -> np.ndarray:
        return probs @ self._level_weights()

    def score_items(self, userid: int, user_items: sp.spmatrix | None = None) -> np.ndarray:
        """Ranking score of every item for one user, shape (n_items,).

        Uses the training ratings of fitted user ``userid``; with ``user_items`` (1, n_items)
        given, folds those ratings in instead (e.g. for a user added after ``fit``).
        The first call after ``fit`` or ``load`` builds a scoring cache (a level-major copy
        of the weights; in item orientation also every item's hidden probabilities) that
        later calls and :meth:`recommend` reuse: one-user calls then cost milliseconds.
        """
        self._check_fitted()
        if np.ndim(userid) != 0:
            raise ValueError(
                f"score_items scores one user: userid must be a single id, got shape "
                f"{np.shape(userid)} (use recommend for several users)"
            )
        items = np.arange(self.n_items_, dtype=np.int64)
        if user_items is not None:
            return self._fold_in_scores(self._user_row("user_items", user_items), items)
        users = as_index_array("userid", [userid], self.n_users_)
        return self._score_users(users)[0]

    #: Users scored together by :meth:`_score_users` (bounds the (block, n_items, n_levels)
    #: temporaries to a few tens of MB on MovieLens-sized catalogues).
    _SCORE_BLOCK = 256

    def _cached(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()``, kept in the scoring cache under ``name`` after the first call.

        The cache holds arrays derived from the fitted parameters (level-major weights, every
        item's hidden probabilities) until the parameters change (each training step and
        :meth:`_set_public` reset it), so one-user calls do not pay for them again.
        """
        cache = getattr(self, "_infer", None)
        if cache is None:
            cache = self._infer = {}
        if name not in cache:
            cache[name] = build()
        return cache[name]

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """Ranking scores of all items for fitted users, shape (len(users), n_items), float64.

        Mean-field prediction is a matrix product: the hidden probabilities of the rows
        (users, or every item in item orientation) times the weights, then a softmax over
        levels, for a block of users at a time. The exact prediction has no such form and
        goes through the per-pair kernel. A "both" model mixes its members' scores (they are
        linear in the predictive distributions).
        """
        if self._both() is not None:
            return self._mix(lambda m: m._score_users(users))
        n_items = self.n_items_
        if self.prediction == "exact":
            out = np.empty((len(users), n_items))
            items = np.arange(n_items, dtype=np.int64)
            for r, u in enumerate(users):
                out[r] = self._score(self.predict_proba(np.full(n_items, u), items))
            return out
        W = self._weights()
        b = self._params["b"]
        indptr, indices, levels = self._train
        if self.visible == "gaussian":
            return self._gauss_score_users(users)
        n_g, n_l, H = W.shape

        def hidden(rows: np.ndarray) -> np.ndarray:
            with num_threads(self.num_threads):
                x = K.softmax_hidden_input(
                    indptr, indices, levels, rows, W, self._params["c"], self._offset(rows)
                )
            return 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid without overflow

        # Level-major weights (n_l, n_g, H): the products below then give level-major
        # logits, the layout softmax_level_scores vectorises over.
        Wl = self._cached("W_levels", lambda: np.ascontiguousarray(W.transpose(1, 0, 2)))
        bl = self._cached("b_levels", lambda: np.ascontiguousarray(b.T))
        weights = self._level_weights().astype(W.dtype)
        out = np.empty((len(users), n_items), dtype=W.dtype)
        with num_threads(self.num_threads), one_blas_thread():
            if self.orientation == "user":
                W2 = Wl.reshape(n_l * n_g, H)
                for lo in range(0, len(users), self._SCORE_BLOCK):
                    blk = users[lo : lo + self._SCORE_BLOCK]
                    logits = (hidden(blk) @ W2.T).reshape(len(blk), n_l, n_g)
                    K.softmax_level_scores(logits, bl, weights, out[lo : lo + len(blk)])
                return out
            # Hidden state of every item's RBM, (n_items, H): shared by all user blocks and
            # calls through the scoring cache.
            h_items = self._cached("h_items", lambda: hidden(np.arange(n_items, dtype=np.int64)))
            for lo in range(0, len(users), self._SCORE_BLOCK):
                blk = users[lo : lo + self._SCORE_BLOCK]
                # (n_items, H) @ (H, n_l * blk) -> (n_items, n_l, blk)
                Wb = Wl[:, blk].reshape(n_l * len(blk), H)
                logits = (h_items @ Wb.T).reshape(n_items, n_l, len(blk))
                tmp = np.empty((n_items, len(blk)), dtype=W.dtype)
                K.softmax_level_scores(logits, np.ascontiguousarray(bl[:, blk]), weights, tmp)
                out[lo : lo + len(blk)] = tmp.T
        return out

    def _gauss_score_users(self, users: np.ndarray) -> np.ndarray:
        """Gaussian model: predicted values of all items for fitted users, (len(users), n_items)."""
        W, b = self._weights(), self._params["b"]
        indptr, indices, data = self._train

        def hidden(rows: np.ndarray) -> np.ndarray:
            return self._gauss_hidden(indptr, indices, data, rows, self._offset(rows))

        if self.orientation == "user":
            z = hidden(users) @ W.T + b
        else:
            every = np.arange(self.n_items_, dtype=np.int64)
            z = (self._cached("h_items", lambda: hidden(every)) @ W[users].T).T
            z += b[users][:, None]
        return self._to_scale(z)

    #: With ``recalculate_user``, any non-negative ``userid`` is folded in from its row.
    _FOLDS_IN_NEW_USERS = True

    def _check_rows(self, user_items: Any, recalculate_user: bool) -> None:
        """With ``recalculate_user`` the rows are ratings to fold in: a pair stored twice is
        refused before the CSR conversion would sum it into another level (2 + 3 -> 5)."""
        if recalculate_user:
            check_csr("user_items", user_items, allow_empty=True, duplicates="error")

    def _score_block(
        self, users: np.ndarray, rows: sp.csr_matrix | None, recalculate_user: bool
    ) -> np.ndarray:
        """Ranking scores (``recommend_score``) of every item, (len(users), n_items): from
        the stored training ratings, or folded in from ``rows``."""
        if not recalculate_user:
            return self._score_users(users)
        items = np.arange(self.n_items_, dtype=np.int64)
        return np.stack([
            self._fold_in_scores(check_ratings("user_items", rows[r], allow_empty=True), items)
            for r in range(rows.shape[0])
        ])  # fmt: skip

    # ------------------------------------------------------------------ persistence
    _HYPER = (
        "n_hidden", "orientation", "conditional", "n_factors", "persistent", "negative",
        "prediction", "n_epochs", "batch_size", "learning_rate", "momentum", "weight_decay",
        "patience", "recommend_score", "high_rating", "num_threads", "lr_decay", "visible",
    )  # fmt: skip

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        ms = self._both()
        if ms is not None:
            # Each member's arrays under "<member>__<name>", its metadata under "members".
            arrays: dict[str, np.ndarray] = {}
            members_meta = {}
            for name, m in ms.items():
                a, mm = m._get_state()
                arrays.update({f"{name}__{k}": v for k, v in a.items()})
                members_meta[name] = mm
            meta = {k: getattr(self, k) for k in self._HYPER}
            meta.update(
                cd_steps=cd_schedule_json(self.cd_steps), dtype=np.dtype(self.dtype).name,
                n_users=self.n_users_, n_items=self.n_items_, members=members_meta,
                blend_weight=self.blend_weight_,
                calibration=list(self.calibration_), **self._fit_meta(),
            )  # fmt: skip
            return arrays, meta
        arrays = {f"param_{k}": v for k, v in self._params.items()}
        indptr, indices, levels = self._train
        arrays.update(
            train_indptr=indptr, train_indices=indices, train_levels=levels, values=self.values_
        )
        if self._R is not None:
            arrays.update(r_indptr=self._R.indptr, r_indices=self._R.indices)
        meta = {k: getattr(self, k) for k in self._HYPER}
        meta.update(
            cd_steps=cd_schedule_json(self.cd_steps),
            dtype=np.dtype(self.dtype).name,
            n_users=self.n_users_,
            n_items=self.n_items_,
            history=self.history_,
            best_epoch=self.best_epoch_,
            fitted_batch_size=getattr(self, "batch_size_", None),
            **self._fit_meta(),
        )
        if self.visible == "gaussian":
            meta.update(scale=list(self._scale), value_range=list(self.value_range_))
        return arrays, meta

    def _fit_meta(self) -> dict[str, Any]:
        """Seed and fit bookkeeping saved with the model (see :meth:`_restore_fit_meta`)."""
        fs = getattr(self, "fit_seconds_", None)
        return {
            "random_state": persistence.seed_to_json(self.random_state),
            "interrupted": bool(getattr(self, "interrupted_", False)),
            "fit_seconds": None if fs is None else float(fs),
        }

    def _restore_fit_meta(self, meta: dict[str, Any]) -> None:
        """Inverse of :meth:`_fit_meta`; files written before these fields get defaults."""
        self.random_state = persistence.seed_from_json(meta.get("random_state"))
        self.interrupted_ = bool(meta.get("interrupted", False))
        fs = meta.get("fit_seconds")
        self.fit_seconds_ = None if fs is None else float(fs)

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> RatingRBM:
        return cls._restore(arrays, meta, "")

    @classmethod
    def _restore(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str
    ) -> RatingRBM:
        """The model saved as ``meta`` and the arrays ``prefix + name`` (a "both" model's
        members have the prefixes ``"item__"`` and ``"user__"``), after checking them.

        Raises
        ------
        ModelFileError
            Naming the array or metadata field that is inconsistent; the kernels index memory
            with the arrays unchecked, so a damaged file must not get that far.
        """
        # Files written before a hyperparameter existed get its default.
        hyper = {k: meta[k] for k in cls._HYPER if k in meta}
        cd = meta["cd_steps"]
        model = cls(**hyper, cd_steps=cd if isinstance(cd, int) else [tuple(p) for p in cd])
        model.dtype = np.dtype(meta["dtype"])
        try:
            model._check_params()
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"the model's hyperparameters are invalid: {exc}") from None
        n_users = check_int("n_users", meta["n_users"], 1)
        n_items = check_int("n_items", meta["n_items"], 1)
        if "members" in meta:
            if model.orientation != "both" or prefix:
                raise ModelFileError(
                    f"{prefix}orientation is {model.orientation!r} but the file holds members"
                )
            members_meta = meta["members"]
            if (
                not isinstance(members_meta, dict)
                or "item" not in members_meta
                or not set(members_meta) <= set(_MEMBERS)
            ):
                raise ModelFileError(
                    f"a 'both' model needs an item member (and at most a user member), got "
                    f"{members_meta!r:.80}"
                )
            members = {}
            for name, mm in members_meta.items():
                if not isinstance(mm, dict) or mm.get("orientation") != name:
                    raise ModelFileError(f"member {name!r} does not have orientation={name!r}")
                m = cls._restore(arrays, mm, f"{name}__")
                if {**m._structure(), "orientation": "both"} != model._structure():
                    raise ModelFileError(
                        f"member {name!r} has hyperparameters {m._structure()} that do not "
                        f"match the model's {model._structure()}"
                    )
                if (m.n_users_, m.n_items_) != (n_users, n_items):
                    raise ModelFileError(
                        f"member {name!r} has {m.n_users_} users and {m.n_items_} items, the "
                        f"model {n_users} and {n_items}"
                    )
                first = members.get("item")
                if first is not None and not (
                    np.array_equal(m.values_, first.values_)
                    and getattr(m, "_scale", None) == getattr(first, "_scale", None)
                    and getattr(m, "value_range_", None) == getattr(first, "value_range_", None)
                ):
                    raise ModelFileError(
                        f"member {name!r} has rating levels or a scale other than the item member's"
                    )
                members[name] = m
            a, slope = _finite_floats("calibration", meta["calibration"], 2)
            (weight,) = _finite_floats("blend_weight", [meta["blend_weight"]], 1)
            if not 0.0 <= weight <= 1.0 or slope < 0:
                raise ModelFileError(
                    f"blend_weight must lie in [0, 1] and the calibration slope be >= 0, got "
                    f"{weight} and {slope}"
                )
            model._adopt(members, weight, a, slope)
            model._restore_fit_meta(meta)
            return model
        if model.orientation == "both":
            raise ModelFileError("orientation is 'both' but the file holds no members")
        model.n_users_, model.n_items_ = n_users, n_items
        if model.visible == "gaussian":
            mu, sd = _finite_floats("scale", meta["scale"], 2)
            lo, hi = _finite_floats("value_range", meta["value_range"], 2)
            if sd <= 0 or lo > hi:
                raise ModelFileError(
                    f"scale {meta['scale']} needs a spread > 0 and value_range "
                    f"{meta['value_range']} lo <= hi"
                )
            model._scale = (mu, sd)
            model.value_range_ = (lo, hi)
        model.values_, model._train, model._params, model._R = model._checked_arrays(arrays, prefix)
        model.history_ = meta["history"]
        model.best_epoch_ = meta["best_epoch"]
        # Files written before the batch size was saved: an explicit batch_size was used as is.
        bs = meta.get("fitted_batch_size", model.batch_size)
        model.batch_size_ = None if bs is None else int(bs)
        model._restore_fit_meta(meta)
        model._set_public()
        return model

    def _checked_arrays(
        self, arrays: dict[str, np.ndarray], prefix: str
    ) -> tuple[
        np.ndarray,
        tuple[np.ndarray, np.ndarray, np.ndarray],
        dict[str, np.ndarray],
        sp.csr_matrix | None,
    ]:
        """``values_``, ``_train``, ``_params`` and ``_R`` of a single RBM from a model file.

        Every array must have the shape the metadata (already on ``self``) and the other
        arrays imply, the model's float dtype for parameters (integers for indices), finite
        parameters, and indices and levels in range.

        Raises
        ------
        ModelFileError
            Naming the array and the problem.
        """
        dtype = np.dtype(self.dtype)
        gauss = self.visible == "gaussian"
        H = self.n_hidden
        if self.orientation == "user":
            n_rows, n_groups, groups = self.n_users_, self.n_items_, "n_items"
        else:
            n_rows, n_groups, groups = self.n_items_, self.n_users_, "n_users"

        def check(name: str, shape: tuple, dims: tuple, **kw: Any) -> np.ndarray:
            return persistence.check_file_array(arrays, prefix + name, shape, dims=dims, **kw)

        values = check("values", (None,), ("n_levels",), kind="iuf", finite=True)
        if gauss and len(values):
            raise ModelFileError(f"array {prefix + 'values'!r} must be empty for a gaussian model")
        if not gauss and not (2 <= len(values) <= _MAX_LEVELS and np.all(np.diff(values) > 0)):
            raise ModelFileError(
                f"array {prefix + 'values'!r} must hold 2 to {_MAX_LEVELS} increasing rating "
                f"levels, got {values[:10].tolist()}"
            )
        L = len(values)
        unit, unit_dims = (
            ((n_groups,), (groups,)) if gauss else ((n_groups, L), (groups, "n_levels"))
        )
        par = {"dtype": dtype, "finite": True}
        params = {
            "b": check("param_b", unit, unit_dims, **par),
            "c": check("param_c", (H,), ("n_hidden",), **par),
        }
        if self.n_factors is None:
            params["W"] = check("param_W", (*unit, H), (*unit_dims, "n_hidden"), **par)
        else:
            C = self.n_factors
            params["A"] = check("param_A", (*unit, C), (*unit_dims, "n_factors"), **par)
            params["B"] = check("param_B", (C, H), ("n_factors", "n_hidden"), **par)
        indptr, indices = persistence.check_file_csr(
            arrays, prefix + "train_indptr", prefix + "train_indices", n_rows, n_groups
        )
        nnz = (len(indices),)
        if gauss:
            levels = check("train_levels", nnz, ("nnz",), dtype=dtype, finite=True)
        else:
            levels = check("train_levels", nnz, ("nnz",), kind="iu")
            persistence.check_file_range(prefix + "train_levels", levels, 0, L)
            levels = levels.astype(np.int8)
        R = None
        has_r = prefix + "r_indptr" in arrays or prefix + "r_indices" in arrays
        if self.conditional:
            params["D"] = check("param_D", (n_groups, H), (groups, "n_hidden"), **par)
            r_indptr, r_indices = persistence.check_file_csr(
                arrays, prefix + "r_indptr", prefix + "r_indices", n_rows, n_groups
            )
            data = np.ones(len(r_indices), dtype=dtype)
            R = sp.csr_matrix((data, r_indices, r_indptr), shape=(n_rows, n_groups))
        elif has_r:
            raise ModelFileError(
                f"the file holds {prefix}r_indptr/{prefix}r_indices but the model is not "
                "conditional"
            )
        return values, (indptr, indices, levels), params, R


def _finite_floats(name: str, value: Any, n: int) -> list[float]:
    """``value`` as a list of ``n`` finite floats, or ModelFileError naming ``name``."""
    try:
        out = [float(x) for x in value]
    except (TypeError, ValueError):
        out = []
    if len(out) != n or not np.all(np.isfinite(out)):
        raise ModelFileError(f"{name} must be {n} finite numbers, got {value!r}")
    return out


def _param_property(name: str) -> property:
    """A fitted parameter array of a single RBM; a clear error for a "both" model."""
    private = f"_{name}"

    def get(self: RatingRBM) -> np.ndarray | None:
        if getattr(self, "members_", None) is not None:
            raise AttributeError(
                f"{name} is not defined for orientation='both': the model mixes two RBMs whose "
                f"parameters have different shapes; use members_['item'].{name} or "
                f"members_['user'].{name}"
            )
        return getattr(self, private, None)

    def set(self: RatingRBM, value: np.ndarray | None) -> None:
        setattr(self, private, value)

    return property(get, set, doc=f"``{name}`` of a single-orientation model.")


for _name in _PARAM_ATTRS:
    setattr(RatingRBM, _name, _param_property(_name))


#: Largest factor by which a factored step may move ``W`` further than the full model's
#: step along any direction (see :func:`_factored_steps`).
_MAX_GAIN = 4.0


def _factored_steps(gW: np.ndarray, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled gradients of the factors of ``W = A B`` given the gradient ``gW``.

    A plain step ``dA = gW B^T`` moves ``W`` by ``gW B^T B``, and ``dB = A^T gW`` by
    ``A A^T gW``: by the factors' squared singular values (``A`` has n_units rows, so
    ``B``'s plain step would be hundreds of times too large). Each step is divided by the
    mean of those values (``||B||^2 / C``, ``||A||^2 / C``), so that with evenly spread
    factors either step moves ``W`` about as far as a step on a full ``W``. Once one direction
    of a factor dominates, that normalisation amplifies the step along it by up to ``C``
    (largest over mean singular value squared), which feeds on itself and diverged, e.g. a
    Gaussian model with 16 factors of 32 hidden units. The scale is therefore capped so no
    direction moves more than :data:`_MAX_GAIN` times as far as the full step. (The
    least-squares step, a projection with gain at most 1, was tried: 0.861 against 0.857
    validation RMSE on ML-1M, seed 0, at any step size tried.)

    Parameters
    ----------
    gW : ndarray, shape (n_units, n_hidden)
        Gradient with respect to ``W`` (``n_units`` = n_groups * n_levels, or n_groups).
    A : ndarray, shape (n_units, n_factors)
    B : ndarray, shape (n_factors, n_hidden)

    Returns
    -------
    dA : ndarray, shape (n_units, n_factors)
    dB : ndarray, shape (n_factors, n_hidden)
        In the dtype of ``gW``.
    """
    C = B.shape[0]

    def scale(F: np.ndarray, gram: np.ndarray) -> float:
        top = float(np.linalg.eigvalsh(gram.astype(np.float64))[-1])  # largest sq. sing. value
        return min(C / max(float(np.vdot(F, F)), 1e-12), _MAX_GAIN / max(top, 1e-30))

    sb = scale(B, B @ B.T)
    sa = scale(A, A.T @ A)
    return sb * (gW @ B.T), sa * (A.T @ gW)


def _recon_rmse(record: dict[str, float]) -> None:
    """Epoch record: the averaged squared reconstruction error becomes its root (in place)."""
    mse = record.pop("train_recon_mse", None)
    if mse is not None:
        record["train_recon_rmse"] = float(np.sqrt(mse))


def _line(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares intercept and slope (clipped to >= 0) of ``y`` on ``p``, both (n,)."""
    dp = p - p.mean()
    var = float(dp @ dp)
    slope = max(float(dp @ (y - y.mean())) / var, 0.0) if var > 0 else 1.0
    return float(y.mean() - slope * p.mean()), slope


def _spawn(random_state: Any, n: int) -> list[Any]:
    """``n`` independent child seeds of ``random_state`` (int, None, SeedSequence, Generator).

    The same int or SeedSequence always gives the same children (a SeedSequence is not
    advanced), so fitting twice with it is reproducible.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state.spawn(n)
    seed_generator(random_state)  # type check, with its error message
    if isinstance(random_state, np.random.SeedSequence):
        ss = random_state
        return [
            np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)
            for k in range(n)
        ]
    entropy = None if random_state is None else int(random_state)
    return np.random.SeedSequence(entropy).spawn(n)


#: A rating maps to its nearest level when within this fraction of the level's magnitude
#: (or of the smallest gap between levels, for a level at or near 0): float32 input rounds
#: a level by at most 6e-8 of it.
_LEVEL_RTOL = 1e-6


def level_index(values: np.ndarray, data: np.ndarray) -> np.ndarray:
    """0-based level (int8) of each rating in ``data``: its nearest value in ``values``.

    A rating counts as a level when it lies within ``_LEVEL_RTOL`` of it relative to the
    level's magnitude (at least the smallest gap between levels), and never farther than a
    thousandth of that gap. So a level stored in float32 (rounded up or down) maps to its
    level at any scale, and a value between levels is refused at any scale.

    Parameters
    ----------
    values : ndarray, shape (n_levels,)
        The sorted, distinct rating levels seen in fit.
    data : ndarray, shape (nnz,)
        Ratings to map.

    Returns
    -------
    ndarray of int8, shape (nnz,)

    Raises
    ------
    DataError
        If a rating is not one of the levels.
    """
    values = np.asarray(values, dtype=np.float64)
    x = np.asarray(data, dtype=np.float64)
    hi = np.clip(np.searchsorted(values, x), 1, len(values) - 1)
    lo = hi - 1
    lv = np.where(np.abs(x - values[lo]) <= np.abs(values[hi] - x), lo, hi)
    gap = float(np.min(np.diff(values)))
    tol = np.minimum(_LEVEL_RTOL * np.maximum(np.abs(values), gap), 1e-3 * gap)
    bad = ~(np.abs(x - values[lv]) <= tol[lv])  # NaN is bad too
    if bad.any():
        raise DataError(
            f"rating {float(x[bad][0])} is not one of the levels seen in fit: {values.tolist()}"
        )
    return lv.astype(np.int8)
