"""RatingRBM: the collaborative-filtering RBM of Salakhutdinov, Mnih & Hinton (2007)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import DataError
from rbmrec.models import persistence
from rbmrec.models import rating_files as files
from rbmrec.models import rating_train as T
from rbmrec.models._estimator import (
    ParamsMixin,
    epoch_batch,
    num_threads,
    seed_generator,
    side_generator,
)
from rbmrec.models._sparse import stored_entries
from rbmrec.models.base import Recommender
from rbmrec.models.mixture import RatingMixture
from rbmrec.models.rating_infer import MAX_LEVELS, RatingInference, level_index
from rbmrec.models.trainer import TrainerConfig, train
from rbmrec.models.validation import (
    as_index_array,
    check_bool,
    check_choice,
    check_csr,
    check_fitted,
    check_float,
    check_high_rating,
    check_high_threshold,
    check_int,
    check_ratings,
    check_sparse_structure,
    check_unchanged,
)

__all__ = ["RatingRBM", "level_index"]

_SCORES = ("expected", "p_high")
_ORIENTATIONS = ("both", "item", "user")
#: Public parameter arrays of a single RBM; a "both" model has two sets (``members_``).
_PARAM_ATTRS = ("weights_", "visible_bias_", "hidden_bias_", "conditional_weights_")


@persistence.register
class RatingRBM(Recommender, RatingInference, ParamsMixin):
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
    ratings (those given to ``fit``, else the part it holds out, ``validation_fraction``;
    closed form; the same fit as an unconstrained least-squares
    blend with intercept of the two members, :class:`~rbmrec.models.blend.BlendedRatingModel`,
    whenever its coefficients are non-negative). With no validation ratings at all
    (``validation_fraction=0``, or an empty set) ``w = 0.5, a = 0, s = 1``. The calibration
    matters because mean-field expected ratings are shrunk towards the mean.

    Why these defaults (validation evidence in docs/performance.md): a user-based RBM errs
    differently from the better item-based one, and mixing the two gains more than any
    single-model setting; ordinal weight sharing gains about 0.012 validation RMSE on
    ML-1M and ML-100K and stops early sooner; the shared member settings (conditional RBM,
    500 hidden units, learning rate decaying by 5% per epoch, weight decay 0.004) were
    chosen on validation carves of ML-1M and ML-100K. ``orientation="item"`` saves the
    user-based member's fit at a cost in accuracy.

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
    ordinal : bool or None, default None
        CF-NADE's ordinal weight sharing across levels (Zheng et al. 2016), ``W[:, k] =
        sum_{j<=k} U[:, j]`` trained in ``U`` (a preconditioned step of ``W``); softmax with
        the full ``W`` only. None: on where it applies (softmax visibles, ``n_factors=None``),
        off otherwise. It changes training only: the fitted ``W`` is a full ``W`` either way.
        Measured in ``docs/performance.md``.
    visible : {"softmax", "gaussian"}, default "softmax"
        "softmax": one K-way unit per rated item over the distinct rating values (the
        paper's model), at most 127 levels. "gaussian": one real-valued unit per rated item
        (energy in ``docs/architecture.md``) for ratings on a continuous or very fine scale
        (any real values, e.g. -10..10 in steps of 0.01); values are standardised by the
        training mean and standard deviation (negative values and 0 need no shift), each
        unit has unit variance in that scale, and predictions are the mean-field
        conditional means clipped to the training range. Supports the conditional and
        factored variants; not ``prediction="exact"`` (no closed form) nor
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
        Rows (users, or items) per mini-batch. None: 200 (Gaussian visibles: 100), more on
        sparse data so a batch observes each visible unit 3.5 times on average
        (``ceil(3.5 / density)``: 299 at Netflix's shape, where every batch's momentum step
        streams all of ``W``), fewer on small data so every epoch makes at least 10 updates
        (``ceil(n_rows / 10)``: the learning-rate schedule and early stopping count epochs,
        and with a handful of updates per epoch the rate decays before training leaves its
        initial plateau). The size used is ``batch_size_`` after ``fit``.
    learning_rate : float or None, default None
        Step size applied to the batch-averaged gradient. None: 0.1 with softmax visibles,
        0.05 with Gaussian ones (``rating_train.DEFAULT_RATE``).
    momentum : float, default 0.9
    lr_decay : float, default 0.95
        Learning rate of epoch ``e`` (0-based) is ``learning_rate * lr_decay ** e``.
    weight_decay : float, default 0.004
        L2 penalty on ``W`` (or ``A``, ``B``) and ``D``.
    patience : int or None, default 5
        Early stopping on the validation RMSE (of the ``validation`` given to ``fit``, or of
        the part carved by ``validation_fraction``); the best epoch's parameters are kept.
        None disables early stopping (the last epoch is kept).
    validation_fraction : float, default 0.1
        When ``fit`` gets no ``validation``, this fraction of the training ratings, drawn
        uniformly at random (from an independent stream of ``random_state``), is held out
        as the validation part: early stopping, and for ``orientation="both"`` the mixing
        weight and the calibration, use it; the model trains on the rest. The held-out
        pairs stay in the conditional RBM's rated pattern (which items a user rated is
        known, only the value is held out). Entries of a rating level that would leave
        training altogether stay in training. 0 trains on everything with no validation
        (no early stopping, ``w = 0.5``, no calibration). Ignored when ``validation`` is
        given.
    refit : bool, default False
        After a fit on the part ``validation_fraction`` leaves, train again on all the
        ratings, from the same seed, for the epochs early stopping chose (each
        member its own), keeping the mixing weight and calibration. About doubles the fit
        time; the measured gain is in ``docs/performance.md``.
    recommend_score : {"expected", "p_high"}, default "expected"
        Ranking score of :meth:`recommend`: the expected rating, or the probability of a
        rating at or above ``high_rating``: what a user would rate highly if made to; for
        what a user picks and likes, :class:`~rbmrec.models.choice.ChooseAndLike`.
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
        Of the parameters and training. A float32 model's weights ``W`` and ``D`` are
        rounded to float16 values at the end of ``fit`` (each moves by at most 2^-11 of its
        size), so that its file stores them as float16 without loss: half the size.
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
        ordinal: bool | None = None,
        visible: str = "softmax",
        cd_steps: int | Sequence[tuple[int, int]] = 1,
        persistent: bool = False,
        negative: str = "mean_field",
        prediction: str = "mean_field",
        n_epochs: int = 60,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        momentum: float = 0.9,
        lr_decay: float = 0.95,
        weight_decay: float = 0.004,
        patience: int | None = 5,
        validation_fraction: float = 0.1,
        refit: bool = False,
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
        self.ordinal = ordinal
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
        self.validation_fraction = validation_fraction
        self.refit = refit
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
        "n_hidden", "orientation", "conditional", "n_factors", "ordinal", "visible", "cd_steps",
        "persistent", "negative", "prediction", "n_epochs", "batch_size", "learning_rate",
        "momentum", "lr_decay", "weight_decay", "patience", "validation_fraction", "refit",
        "recommend_score", "high_rating",
        "random_state", "num_threads", "dtype", "progress", "callbacks",
    )  # fmt: skip

    def _check_params(self) -> None:
        check_int("n_hidden", self.n_hidden, 1)
        if check_float("validation_fraction", self.validation_fraction, 0.0, high=1.0) == 1.0:
            raise ValueError("validation_fraction must be below 1: nothing would be left to train")
        check_choice("orientation", self.orientation, _ORIENTATIONS)
        check_choice("negative", self.negative, ("mean_field", "sample"))
        check_choice("visible", self.visible, ("softmax", "gaussian"))
        self._check_inference_settings()
        for name in ("conditional", "refit", "persistent"):
            check_bool(name, getattr(self, name))
        if self.ordinal is not None:
            check_bool("ordinal", self.ordinal)
        if self.ordinal and (self.visible != "softmax" or self.n_factors is not None):
            raise ValueError('ordinal=True needs visible="softmax" and n_factors=None')
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

    #: ``batch_size=None`` shrinks batches so an epoch has at least this many updates.
    _MIN_UPDATES = 10

    def _batch_for(self, n_rows: int, density: float | None = None) -> int:
        """The mini-batch size used on ``n_rows`` training rows that observe a ``density``
        fraction of the visible groups (:func:`~rbmrec.models.rating_train.dense_batch`)."""
        default = T.dense_batch(T.DEFAULT_BATCH[self.visible], density)
        return epoch_batch(self.batch_size, n_rows, default, self._MIN_UPDATES)

    def _config(self, n_rows: int | None = None, density: float | None = None) -> TrainerConfig:
        return TrainerConfig(
            n_epochs=self.n_epochs,
            batch_size=self._batch_for(n_rows if n_rows is not None else 10**9, density),
            max_copy_bytes=T.MAX_COPY_BYTES,
            learning_rate=(
                T.DEFAULT_RATE[self.visible] if self.learning_rate is None else self.learning_rate
            ),
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
            if len(values) > MAX_LEVELS:
                raise DataError(
                    f"user_items has {len(values)} distinct rating values; the softmax model "
                    f"supports at most {MAX_LEVELS} levels (one softmax state per value). For "
                    'a real-valued or fine-grained scale use visible="gaussian" (one '
                    "real-valued unit per rating), or round the ratings to fewer levels"
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
            Raw ratings on any finite scale (1..5, half stars, 0..4, -10..10, ...); the
            distinct values become the softmax levels. Every stored entry is a rating (an
            explicit 0 or a negative value too); only absent entries mean "not rated". A
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
        # Every check runs before the model changes: a fit that fails on its input leaves a
        # fitted model exactly as it was.
        X, V, values, known_pairs = self._prepare(user_items, validation, known_pairs)
        everything = None  # kept for refit only: at 100M ratings X is 1.2 GB
        if V is None and self.validation_fraction > 0:
            if self.refit:
                everything = (X, known_pairs)
            X, V, known_pairs = self._carve(X, known_pairs)
        t0 = time.perf_counter()
        if self.orientation == "both":
            mixture, interrupted = RatingMixture.fit(self, X, V, known_pairs)
            if everything is not None and not interrupted:
                for member in mixture.members.values():
                    T.refit_on(member, *everything)
            self._adopt(mixture)
            self.interrupted_ = interrupted
        else:
            config = self._init_fit(X, values, known_pairs)
            self._train_fitted(config, V)
            if everything is not None and not self.interrupted_:
                T.refit_on(self, *everything)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    #: Spawn key of the stream that draws ``fit``'s own validation part.
    _VALIDATION_STREAM = 0x76616C

    def _carve(
        self, X: sp.csr_matrix, known_pairs: sp.spmatrix | None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.spmatrix | None]:
        """``fit``'s own validation part (``validation_fraction``, :func:`T.own_validation`)."""
        rng = side_generator(self.random_state, self._VALIDATION_STREAM)
        return T.own_validation(
            X, known_pairs, self.validation_fraction, rng,
            keep_levels=self.visible == "softmax", conditional=self.conditional,
        )  # fmt: skip

    def _init_fit(
        self, X: sp.csr_matrix, values: np.ndarray, known_pairs: sp.spmatrix | None,
        gaussian: tuple | None = None,
    ) -> TrainerConfig:  # fmt: skip
        """Initial parameters and training arrays of a single RBM, made this model's state
        (the new state is built in local variables first, then committed). ``gaussian``:
        the standardisation and range of ``visible="gaussian"`` (default: ``X``'s)."""
        gauss = self.visible == "gaussian"
        scale = value_range = None
        if gauss:
            scale, value_range = gaussian if gaussian is not None else T.gaussian_scale(X)
        rng = seed_generator(self.random_state)
        dtype = np.dtype(self.dtype)
        Xo = self._orient(X)
        train_arrays = self._to_kernel(Xo, values, scale)
        n_rows, n_groups = Xo.shape
        params, decay = T.init_params(
            train_arrays, n_groups, len(values), self.n_hidden, self.n_factors, gauss, dtype, rng
        )
        R = None
        if self.conditional:
            R = T.rated_pattern(train_arrays, known_pairs, self._orient, Xo.shape)
            params["D"] = np.zeros((n_groups, self.n_hidden), dtype=dtype)
            decay.append("D")
        config = self._config(n_rows, Xo.nnz / (n_rows * n_groups))
        # Commit: plain assignments only from here to training.
        self._mixture = None
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
        self._decay = decay
        empty_chain = np.zeros(0, dtype if gauss else np.int8)
        self._chain = train_arrays[2].copy() if self.persistent else empty_chain
        self.batch_size_ = config.batch_size
        self.history_ = []
        self.best_epoch_ = None
        self.interrupted_ = False
        self.fit_seconds_ = 0.0
        self._set_public()
        return config

    def _train_fitted(self, config: TrainerConfig, V: sp.csr_matrix | None) -> None:
        """Train the parameters set by :meth:`_init_fit` with the shared trainer."""
        step = partial(T.train_step, self, T.gradient_buffers(self))
        span_step = None
        if self._SPANS and self.visible == "softmax" and self.n_factors is None:
            span_step = partial(T.span_step, self)
        evaluate = None
        if V is not None and V.nnz:
            vu, vi, vr = stored_entries(V)
            evaluate = partial(T.validation_rmse, self, vu, vi, np.asarray(vr, np.float64))
        else:
            config.patience = None
        t0 = time.perf_counter()
        try:
            with num_threads(self.num_threads):
                result = train(
                    self._params, step, self._train[0].size - 1, config, self._rng,
                    decay=self._decay, evaluate=evaluate, derive=T.recon_rmse,
                    describe=f"n_hidden={self.n_hidden}, batch_size={self.batch_size_}, ",
                    span_step=span_step, history=self.history_,  # kept if a callback raises
                )  # fmt: skip
        finally:
            files.round_weights(self._params)  # stored as float16 without loss
            self._set_public()  # also when training raises: weights_ = A @ B as predicted
        self.best_epoch_ = None if result.best_epoch is None else result.best_epoch + 1
        self.interrupted_ = result.interrupted
        self.fit_seconds_ = time.perf_counter() - t0

    # ------------------------------------------------------------------ orientation="both"
    def _adopt(self, mixture: RatingMixture) -> None:
        """Make a fitted item + user ``mixture`` this model's state."""
        members = mixture.members
        first = members["item"]
        self._mixture = mixture
        self.members_ = members
        self._fitted_structure = self._structure()
        self.blend_weight_ = mixture.weight
        self.calibration_ = mixture.calibration
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

    def _mixture_or_none(self) -> RatingMixture | None:
        """The fitted item + user mixture of an ``orientation="both"`` model, else None."""
        return getattr(self, "_mixture", None)

    def _fitted_model(self) -> RatingInference | RatingMixture:
        """What computes this model's predictions and scores: its mixture ("both") or
        itself (a single RBM). The one place a "both" model differs in inference."""
        mixture = self._mixture_or_none()
        return self if mixture is None else mixture

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
        mixture = self._mixture_or_none()
        if mixture is None:
            check_fitted(self)
        check_unchanged(
            getattr(self, "_fitted_structure", None), self._structure(), "scoring and save"
        )
        # Inference settings may have changed since fit (a typo would otherwise pick another
        # computation silently); a "both" model's members score with the model's settings.
        self._check_inference_settings()
        if mixture is not None:
            mixture.use_settings(self, self._INFERENCE)

    # ------------------------------------------------------------------ inference
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
        return self._fitted_model()._predict_proba(userids, itemids)

    def _predict_proba(self, userids: Any, itemids: Any) -> np.ndarray:
        return self._pairs(userids, itemids, self._pair_probs)

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
        return self._fitted_model()._predict(userids, itemids)

    def _predict(self, userids: Any, itemids: Any) -> np.ndarray:
        if self.visible == "gaussian":
            return self._pairs(userids, itemids, self._pair_values)
        return self._predict_proba(userids, itemids) @ self.values_

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
            return self._fitted_model()._fold_in_scores(row, items)
        return self._fitted_model()._fold_in_probs(row, items) @ self.values_

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
            row = self._user_row("user_items", user_items)
            return self._fitted_model()._fold_in_scores(row, items)
        users = as_index_array("userid", [userid], self.n_users_)
        return self._fitted_model()._score_users(users)[0]

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
            return self._fitted_model()._score_users(users)
        items = np.arange(self.n_items_, dtype=np.int64)
        model = self._fitted_model()
        return np.stack([
            model._fold_in_scores(check_ratings("user_items", rows[r], allow_empty=True), items)
            for r in range(rows.shape[0])
        ])  # fmt: skip

    # ------------------------------------------------------------------ persistence
    _HYPER = (
        "n_hidden", "orientation", "conditional", "n_factors", "persistent", "negative",
        "prediction", "n_epochs", "batch_size", "learning_rate", "momentum", "weight_decay",
        "patience", "recommend_score", "high_rating", "num_threads", "lr_decay", "visible",
        "validation_fraction", "refit", "ordinal",
    )  # fmt: skip

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return files.get_state(self)

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> RatingRBM:
        return cls._restore(arrays, meta, "")

    @classmethod
    def _restore(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], prefix: str
    ) -> RatingRBM:
        """The model of ``meta`` and the arrays ``prefix + name``, checked
        (:func:`rbmrec.models.rating_files.restore`)."""
        return files.restore(cls, arrays, meta, prefix)


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
