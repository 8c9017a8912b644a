"""ImplicitRBM: an RBM over "has interacted" visible units (replicated softmax or Bernoulli), for
top-N lists."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine.sparse_binary import (
    csr_hidden_probs,
)
from rbmrec.engine.topn import topn_select
from rbmrec.errors import DataError, ModelFileError, NotFittedError
from rbmrec.models._estimator import (
    ParamsMixin,
    epoch_batch,
    num_threads,
    one_blas_thread,
    seed_generator,
)
from rbmrec.models._ranking import ndcg_sum
from rbmrec.models.base import Recommender
from rbmrec.models.implicit_train import _cd_step, _draws, _row_scale, _TrainData
from rbmrec.models.persistence import (
    check_file_array,
    check_file_csr,
    register,
    seed_from_json,
    seed_to_json,
)
from rbmrec.models.trainer import (
    EpochCallback,
    TrainerConfig,
    TrainResult,
    cd_schedule_json,
    train,
)
from rbmrec.models.validation import (
    as_index_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_interactions,
    check_n,
    check_unchanged,
    excluded_items,
)

log = logging.getLogger(__name__)

__all__ = ["ImplicitRBM"]


@register
class ImplicitRBM(Recommender, ParamsMixin):
    """Restricted Boltzmann machine for top-N recommendation from implicit feedback.

    One visible unit per item (1 = the user interacted with it) and ``n_hidden`` binary
    hidden units. With ``visible="bernoulli"`` the units are independent binary units, energy
    ``E(v, h) = -b.v - c.h - v^T W h`` (Smolensky 1986); with ``visible="softmax"`` (the
    default) they form a replicated softmax whose hidden bias is scaled by the user's number
    of items (see ``visible`` below). The bullets below describe the Bernoulli case; the
    softmax one differs only where ``visible`` says so.
    Training maximises the likelihood of the users' item sets by contrastive divergence
    (Hinton 2002) or persistent CD (Tieleman 2008), as in the RBM collaborative filtering
    of Salakhutdinov, Mnih & Hinton (2007) but with binary "has interacted" units over
    every item instead of softmax units over rated items only.

    - Input: a CSR matrix users x items of any finite values (ratings on any scale,
      counts, clicks). Every stored entry, an explicit 0 or a negative value too, is a
      visible unit equal to 1; absent entries are 0. With ``confidence > 0`` the
      *positive-phase statistics* of an entry of value ``r`` are weighted by
      ``1 + confidence * log1p(max(r, 0))`` (the visible unit stays binary), so heavier
      interactions pull harder on the weights.
    - Positive phase: ``p(h | v)`` from the user's items only (sparse kernel).
    - Negative phase (``negative="mean_field"``, default): CD-k whose visible
      reconstruction is the mean field ``p(v | h)`` over *all* items, computed for the
      whole batch with two dense BLAS products; measured on ML-1M this costs about one
      second per epoch with 300 hidden units, so no approximation (sampled negatives) is
      needed at that scale. ``negative="pcd"`` uses ``n_chains`` persistent binary fantasy
      chains instead.
    - Scores: ``score_i = b_i + W_i . E[h | v_user]``, the log-odds of the mean-field
      reconstruction ``p(v_i = 1 | E[h | v_user])`` (the same ranking as the probability,
      without float32 saturation near 1).
    - Visible biases start at the log-odds of item popularity, weights at
      ``N(0, init_std^2)``, hidden biases at 0.

    The defaults were chosen on a validation carve of ML-1M (``benchmarks/tune_implicit.py``;
    90/10 random split, seed 0, 10 % of train as validation, relevant = ratings >= 4,
    NDCG@10; the measurements are in docs/performance.md): replicated softmax visibles with
    ``length_norm=0.5`` (the input scaling that Mult-DAE's normalised input corresponds to),
    a learning rate decaying by 10 % per epoch, ``popularity_weight=1.0`` (the softmax logits
    underweight popularity), 500 hidden units and the mean of two RBMs: validation NDCG@10
    0.2161, against 0.2104 for ALS tuned on the same carve and 0.2017 for the best Bernoulli
    RBM found.

    Input dropout 0.3 and the decaying learning rate keep the model from copying its input.

    Parameters
    ----------
    n_hidden : int, default 500
        Number of hidden units.
    visible : {"bernoulli", "softmax"}, default "softmax"
        Visible layer. ``"bernoulli"``: one independent binary unit per item, as above.
        ``"softmax"``: the replicated softmax of Salakhutdinov & Hinton (2009, "Replicated
        Softmax: an undirected topic model"), the RBM counterpart of the multinomial
        likelihood of Mult-VAE/Mult-DAE (Liang et al. 2018): a user's ``D`` items are ``D``
        draws from one softmax over all items, energy
        ``E(v, h) = -b.v - D c.h - v^T W h``, so ``p(h_j | v) = sigmoid(D c_j + (v W)_j)``
        and each draw has ``p(i | h) = softmax_i(b + W h)``. The mean-field negative phase
        reconstructs ``D * softmax(b + W h)`` over all items; scores are the logits
        ``b + W E[h | v]``. The hidden-bias step is divided by the mean ``D`` (its statistics
        are ``D`` times larger). Needs ``negative="mean_field"``.
    n_epochs : int, default 40
        Training epochs (with ``validation`` and ``patience`` the best epoch is kept).
    batch_size : int or None, default None
        Users per mini-batch. None: 64, or ``ceil(n_users / 50)`` when that is smaller, so
        every epoch makes at least 50 updates (the learning-rate decay counts epochs; on
        ML-100K u1's validation carve, 15 updates per epoch at batch 64 gave NDCG@10 0.199,
        50 updates 0.211; ML-1M keeps 64). The size used is ``batch_size_`` after ``fit``.
    learning_rate : float, default 0.01
        Step size applied to batch-averaged statistics.
    lr_decay : float, default 0.9
        The learning rate of epoch ``e`` (from 0) is ``learning_rate * lr_decay ** e``.
    momentum : float, default 0.9
    weight_decay : float, default 1e-4
        L2 penalty on the weights (not the biases).
    cd_steps : int or sequence of (int, int), default 1
        Gibbs steps of CD-k, or a schedule ``[(first_epoch, k), ...]``.
    sample_hidden : bool, default True
        Sample the positive-phase hidden units (True) or propagate their probabilities.
    negative : {"mean_field", "pcd"}, default "mean_field"
        Negative phase, see above.
    n_chains : int, default 100
        Persistent chains for ``negative="pcd"``.
    confidence : float, default 0.0
        Weight of an interaction's value in the positive phase (0: binary).
    init_std : float, default 0.01
        Standard deviation of the initial weights.
    input_dropout : float, default 0.3
        Denoising CD: during training the positive-phase hidden probabilities are computed
        from a random subset of each user's items (each dropped with this probability, the
        rest scaled by ``1 / (1 - input_dropout)``) while the positive statistics use all
        of them, so the hidden units learn to predict items a user has not shown (the top-N
        task) rather than to copy the input. A heuristic, not a likelihood gradient.
    popularity_weight : float, default 1.0
        Scores use ``(1 + popularity_weight) * b`` as the visible bias (>= -1; 0 = the
        model's own scores); the visible biases carry the items' popularity.
    length_norm : float, default 0.5
        Exponent ``gamma`` in [0, 1]: a user's input to the hidden units (the ``v^T W h``
        term of the energy) is scaled by ``(n_u / mean n)^-gamma``, so heavy users do not
        saturate the hidden units. Needs ``negative="mean_field"``.
    n_models : int, default 2
        Train this many RBMs from one random stream and score with the mean of their scores
        (their parameters are stored side by side; fit time grows in proportion). The first
        member is the model ``n_models=1`` would train.
    patience : int or None, default None
        Early stopping on validation NDCG@10 when ``fit`` gets ``validation``.
    num_threads : int, default 0
        Numba threads (0 = numba's current setting). Results do not depend on it.
    random_state : int, SeedSequence, Generator or None, default None
        Seed of the initial weights, shuffles and Gibbs sampling.
    progress : bool, default False
        Show a tqdm progress bar over epochs.
    callbacks : sequence of callables, default ()
        ``callback(epoch, metrics) -> bool`` after every epoch; returning True stops
        training. With ``n_models > 1`` they are called for each member's epochs in turn
        (counted from 0 again), and a stop ends that member only.

    Attributes
    ----------
    weights_ : float32 array, shape (n_items, n_models_ * n_hidden)
        The members' weights side by side (one RBM: ``(n_items, n_hidden)``).
    visible_bias_ : float32 array, shape (n_items,)
        The members' mean.
    hidden_bias_ : float32 array, shape (n_models_ * n_hidden,)
    user_items_ : scipy.sparse.csr_matrix, shape (n_users, n_items)
        The training interactions with their values as given (the RBM reads every stored
        entry as a 1; ``confidence`` weighs by the value); the stored "user
        factors" (``E[h | v]`` is computed from them on demand).
    history_ : list of dict
        Per-epoch metrics from the trainer.
    n_models_ : int
        Models actually trained: ``n_models``, or fewer when Ctrl-C (KeyboardInterrupt)
        ended the fit early (the members trained so far are kept; ``interrupted_`` is True).
    """

    def __init__(
        self,
        n_hidden: int = 500,
        *,
        visible: str = "softmax",
        n_epochs: int = 40,
        batch_size: int | None = None,
        learning_rate: float = 0.01,
        lr_decay: float = 0.9,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        cd_steps: int | Sequence[tuple[int, int]] = 1,
        sample_hidden: bool = True,
        negative: str = "mean_field",
        n_chains: int = 100,
        confidence: float = 0.0,
        init_std: float = 0.01,
        input_dropout: float = 0.3,
        popularity_weight: float = 1.0,
        length_norm: float = 0.5,
        n_models: int = 2,
        patience: int | None = None,
        num_threads: int = 0,
        random_state: Any = None,
        progress: bool = False,
        callbacks: Sequence[EpochCallback] = (),
    ) -> None:
        self.n_hidden = n_hidden
        self.visible = visible
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.cd_steps = cd_steps
        self.sample_hidden = sample_hidden
        self.negative = negative
        self.n_chains = n_chains
        self.confidence = confidence
        self.init_std = init_std
        self.input_dropout = input_dropout
        self.popularity_weight = popularity_weight
        self.length_norm = length_norm
        self.n_models = n_models
        self.patience = patience
        self.num_threads = num_threads
        self.random_state = random_state
        self.progress = progress
        self.callbacks = callbacks
        self.weights_: np.ndarray | None = None
        self.visible_bias_: np.ndarray | None = None
        self.hidden_bias_: np.ndarray | None = None
        self.user_items_: sp.csr_matrix | None = None
        self.length_ref_: float = 1.0
        self.history_: list[dict[str, float]] = []

    # -- configuration --------------------------------------------------------------------

    #: Constructor arguments, in signature order.
    _PARAMS = (
        "n_hidden", "visible", "n_epochs", "batch_size", "learning_rate", "lr_decay",
        "momentum", "weight_decay", "cd_steps", "sample_hidden", "negative", "n_chains",
        "confidence", "init_std", "input_dropout", "popularity_weight", "length_norm",
        "n_models", "patience", "num_threads", "random_state", "progress", "callbacks",
    )  # fmt: skip
    #: Those a saved model keeps (its random state is saved apart; callbacks are not saved).
    _SAVED = tuple(p for p in _PARAMS if p not in ("random_state", "callbacks"))

    #: ``batch_size=None``: this many users per batch, fewer on small data so that an epoch
    #: makes at least ``_MIN_UPDATES`` updates (see ``batch_size``).
    _DEFAULT_BATCH = 64
    _MIN_UPDATES = 50

    def _validate(self) -> TrainerConfig:
        check_int("n_hidden", self.n_hidden, 1)
        check_int("n_chains", self.n_chains, 1)
        check_int("n_models", self.n_models, 1)
        check_int("num_threads", self.num_threads, 0)
        check_choice("negative", self.negative, ("mean_field", "pcd"))
        if not isinstance(self.visible, str):
            raise TypeError(f"visible must be a str, got {type(self.visible).__name__}")
        check_choice("visible", self.visible, ("bernoulli", "softmax"))
        if self.visible == "softmax" and self.negative == "pcd":
            raise ValueError(
                "visible='softmax' needs negative='mean_field' (a persistent replicated-softmax "
                "chain would need a number of draws per chain; not implemented)"
            )
        check_bool("sample_hidden", self.sample_hidden)
        check_float("confidence", self.confidence, 0.0)
        check_float("init_std", self.init_std, 0.0, strict=True)
        if check_float("input_dropout", self.input_dropout, 0.0) >= 1.0:
            raise ValueError(f"input_dropout must be in [0, 1), got {self.input_dropout}")
        check_float("popularity_weight", self.popularity_weight, -1.0)
        if check_float("length_norm", self.length_norm, 0.0) > 1.0:
            raise ValueError(f"length_norm must be in [0, 1], got {self.length_norm}")
        if self.length_norm > 0 and self.negative == "pcd":
            raise ValueError(
                "length_norm > 0 needs negative='mean_field' (persistent chains have no "
                "fixed length to scale by)"
            )
        if self.patience is not None:
            check_int("patience", self.patience, 1)
        config = TrainerConfig(
            n_epochs=self.n_epochs,
            batch_size=epoch_batch(self.batch_size, 10**9, self._DEFAULT_BATCH, 1),
            learning_rate=self.learning_rate,
            lr_decay=self.lr_decay,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            cd_steps=self.cd_steps,
            patience=self.patience,
            monitor="valid_loss",
            progress=bool(self.progress),
            callbacks=self.callbacks,
        )
        config.validate()
        return config

    # -- training -------------------------------------------------------------------------

    def fit(self, user_items: sp.spmatrix, validation: sp.spmatrix | None = None) -> ImplicitRBM:
        """Fit the RBM to a users x items interaction matrix.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n_users, n_items)
            Interactions; every stored entry is a 1, whatever its value (see the class
            docstring for ``confidence``; a pair stored twice counts the sum of its values).
            Not modified.
        validation : scipy.sparse matrix, shape (n_users, n_items), optional
            Held-out interactions; every stored entry counts as relevant. When
            given, NDCG@10 on it (training items excluded) is recorded each epoch as
            ``valid_ndcg`` (and ``valid_loss = 1 - valid_ndcg``), and with ``patience``
            training stops early and keeps the best epoch.

        Returns
        -------
        ImplicitRBM
            ``self``.
        """
        X, valid, config, rng = self._start_fit(user_items, validation)
        return self._fit_members(X, valid, config, rng, self._train_one)

    def _start_fit(
        self, user_items: sp.spmatrix, validation: sp.spmatrix | None
    ) -> tuple[sp.csr_matrix, sp.csr_matrix | None, TrainerConfig, np.random.Generator]:
        """Checked interactions and validation, the training loop's settings (batch size
        from the number of users) and the random generator, as :meth:`fit` starts."""
        config = self._validate()
        X = check_interactions("user_items", user_items)
        if X.nnz == 0:
            raise DataError("user_items has no stored entries")
        n_users, n_items = X.shape
        valid = None
        if validation is not None:
            valid = check_interactions("validation", validation, n_items)
            if valid.shape[0] != n_users:
                raise ValueError(
                    f"validation has {valid.shape[0]} rows but user_items has {n_users}"
                )
        elif self.patience is not None:
            raise ValueError("patience (early stopping) needs a validation matrix in fit()")
        config.batch_size = epoch_batch(
            self.batch_size, n_users, self._DEFAULT_BATCH, self._MIN_UPDATES
        )
        self.batch_size_ = config.batch_size
        return X, valid, config, seed_generator(self.random_state)

    def _fit_members(
        self,
        X: sp.csr_matrix,
        valid: sp.csr_matrix | None,
        config: TrainerConfig,
        rng: np.random.Generator,
        train_one: Any,
    ) -> ImplicitRBM:
        """Train the ``n_models`` members one after the other from ``rng`` with
        ``train_one(X, valid, config, rng) -> (W, b, c, TrainResult)`` (:meth:`_train_one`
        in one process) and set the fitted attributes from them."""
        parts, history, best = [], [], []
        self.interrupted_ = False
        for m in range(self.n_models):
            # one random stream for all members, so n_models=1 is the plain single model
            W, b, c, result = train_one(X, valid, config, rng)
            parts.append((W, b, c))
            if self.n_models > 1:
                history += [{**r, "model": float(m)} for r in result.history]
            else:
                history += result.history
            best.append(result.best_epoch)
            if result.interrupted:
                # Ctrl-C ends the whole fit, not just this member: keep the members so far.
                self.interrupted_ = True
                if m + 1 < self.n_models:
                    log.warning("fit interrupted: keeping %d of %d models", m + 1, self.n_models)
                break
        self.n_models_ = len(parts)
        if len(parts) == 1:
            W, b, c = parts[0]
        else:
            W = np.ascontiguousarray(np.hstack([p[0] for p in parts]))
            b = np.mean([p[1] for p in parts], axis=0).astype(np.float32)
            c = np.concatenate([p[2] for p in parts])
        self.weights_, self.visible_bias_, self.hidden_bias_ = W, b, c
        self._fitted_structure = self._structure()
        self.user_items_ = X
        self.length_ref_ = float(np.diff(X.indptr).mean())
        self.history_ = history
        self.best_epoch_ = best[0] if self.n_models == 1 else None
        return self

    def _train_one(
        self,
        X: sp.csr_matrix,
        valid: sp.csr_matrix | None,
        config: TrainerConfig,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, TrainResult]:
        """Train one RBM on ``X``; returns ``W (n_items, n_hidden), b, c`` and the result."""
        data = _TrainData.initial(self, X, rng)
        W, b, c = data.W, data.b, data.c
        evaluate = None
        if valid is not None:
            evaluate = partial(self._validation_ndcg, X, valid, data)
        describe = f"n_hidden={self.n_hidden}, batch_size={config.batch_size}, "
        with num_threads(self.num_threads), one_blas_thread():
            result: TrainResult = train(
                {"W": W, "b": b, "c": c},
                partial(_cd_step, data),
                X.shape[0],
                config,
                rng,
                decay=("W",),
                evaluate=evaluate,
                describe=describe,
            )
        return W, b, c, result

    def _validation_ndcg(
        self, X: sp.csr_matrix, valid: sp.csr_matrix, data: _TrainData, epoch: int
    ) -> dict[str, float]:
        """The trainer's per-epoch evaluation: NDCG@10 on ``valid`` (and its loss)."""
        nd = self._ndcg_at_10(
            X, valid, data.W, data.b, data.c, 1.0 + float(self.popularity_weight), data.gamma,
            data.length_ref, data.softmax,
        )  # fmt: skip
        return {"valid_ndcg": nd, "valid_loss": 1.0 - nd}

    @staticmethod
    def _ndcg_at_10(
        X: sp.csr_matrix,
        valid: sp.csr_matrix,
        W: np.ndarray,
        b: np.ndarray,
        c: np.ndarray,
        bias_scale: float = 1.0,
        length_norm: float = 0.0,
        length_ref: float = 1.0,
        softmax: bool = False,
    ) -> float:
        """Mean NDCG@10 over users with validation items (training items excluded)."""
        k = 10
        users = np.flatnonzero(np.diff(valid.indptr) > 0).astype(np.int64)
        total = 0.0
        excluded = np.zeros(X.shape[1], dtype=np.bool_)
        step = ImplicitRBM._SCORE_BLOCK  # users scored per dense block, as in recommend
        for start in range(0, users.size, step):
            block = users[start : start + step]
            scale = _row_scale(X.indptr, block, length_norm, length_ref)
            draws = _draws(X.indptr, block) if softmax else None
            scores = _logits(X.indptr, X.indices, block, W, b, c, bias_scale, scale, 1, draws)
            sub = X[block]
            ids, _, _ = topn_select(scores, sub.indptr, sub.indices, excluded, k)
            vb = valid[block]
            total += ndcg_sum(ids, vb.indptr, vb.indices)
        return total / max(users.size, 1)

    # -- scoring --------------------------------------------------------------------------

    def _draws(self, indptr: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
        """Item counts ``D`` of CSR rows for the replicated softmax, None for Bernoulli."""
        return _draws(indptr, rows) if self.visible == "softmax" else None

    #: Hyperparameters that fix the shapes and meaning of the fitted parameters (the energy
    #: function and the hidden units); the others (popularity_weight, num_threads, training
    #: settings) may change after fit.
    _STRUCTURE = ("n_hidden", "visible", "length_norm")

    def _structure(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._STRUCTURE}

    def _check_fitted(self) -> None:
        """NotFittedError before ``fit``; ValueError when a hyperparameter of
        :attr:`_STRUCTURE` was changed after it (scores would silently come from another
        model, and a saved file would describe its arrays wrongly)."""
        if self.weights_ is None:
            raise NotFittedError("this ImplicitRBM is not fitted yet; call fit() first")
        check_unchanged(
            getattr(self, "_fitted_structure", None), self._structure(), "scoring and save"
        )
        # scoring settings may change after fit, but not into values that give NaN scores
        check_float("popularity_weight", self.popularity_weight, -1.0)
        check_int("num_threads", self.num_threads, 0)

    @property
    def n_items(self) -> int:
        """Number of items (visible units) of the fitted model."""
        self._check_fitted()
        return self.weights_.shape[0]

    @property
    def n_users(self) -> int:
        """Number of users seen in ``fit``."""
        self._check_fitted()
        return self.user_items_.shape[0]

    def hidden_probs(self, user_items: sp.spmatrix) -> np.ndarray:
        """``E[h | v]`` for the rows of ``user_items``: the users' hidden representation.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n, n_items)

        Returns
        -------
        float32 array, shape (n, n_hidden)
        """
        self._check_fitted()
        X = check_interactions("user_items", user_items, self.n_items)
        rows = np.arange(X.shape[0], dtype=np.int64)
        scale = _row_scale(X.indptr, rows, float(self.length_norm), self.length_ref_)
        draws = self._draws(X.indptr, rows)
        with num_threads(self.num_threads), one_blas_thread():
            return csr_hidden_probs(
                X.indptr, X.indices, rows, self.weights_, self.hidden_bias_, scale, draws
            )

    def score_items(self, user_items: sp.spmatrix) -> np.ndarray:
        """Scores of every item for the rows of ``user_items`` (log-odds of p(v_i=1|E[h|v])).

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n, n_items)

        Returns
        -------
        float32 array, shape (n, n_items)
        """
        self._check_fitted()
        X = check_interactions("user_items", user_items, self.n_items)
        rows = np.arange(X.shape[0], dtype=np.int64)
        scale = _row_scale(X.indptr, rows, float(self.length_norm), self.length_ref_)
        bias_scale = 1.0 + float(self.popularity_weight)
        W, b, c = self.weights_, self.visible_bias_, self.hidden_bias_
        draws = self._draws(X.indptr, rows)
        with num_threads(self.num_threads), one_blas_thread():
            return _logits(
                X.indptr, X.indices, rows, W, b, c, bias_scale, scale, self.n_models_, draws
            )

    #: With ``recalculate_user``, any non-negative ``userid`` is folded in from its row.
    _FOLDS_IN_NEW_USERS = True

    def _score_block(
        self, users: np.ndarray, rows: sp.csr_matrix | None, recalculate_user: bool
    ) -> np.ndarray:
        """Log-odds (Bernoulli) or logit (softmax) scores of every item, float32
        (len(users), n_items): ``E[h | v]`` from the training rows, or from ``rows`` (every
        stored entry is an interaction, whatever its value) with ``recalculate_user``.

        Filtering by ``recommend`` excludes every stored entry of ``user_items`` whatever
        its value (``implicit``'s contract), consistent with the fold-in.
        """
        if recalculate_user:
            src = check_interactions("user_items", rows, self.n_items)
            rws = np.arange(src.shape[0], dtype=np.int64)
        else:
            src, rws = self.user_items_, users
        with num_threads(self.num_threads), one_blas_thread():
            return _logits(
                src.indptr,
                src.indices,
                rws,
                self.weights_,
                self.visible_bias_,
                self.hidden_bias_,
                1.0 + float(self.popularity_weight),
                _row_scale(src.indptr, rws, float(self.length_norm), self.length_ref_),
                self.n_models_,
                self._draws(src.indptr, rws),
            )

    def similar_items(
        self,
        itemid: int | Sequence[int] | np.ndarray,
        N: int = 10,
        filter_items: Sequence[int] | np.ndarray | None = None,
        items: Sequence[int] | np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items whose weight vectors ``W[i]`` are closest in cosine similarity.

        The item itself comes first (similarity 1) unless filtered, as in ``implicit``.

        Parameters
        ----------
        itemid : int or array-like of int, shape (n,)
        N : int, default 10
        filter_items : array-like of int, optional
            Items never returned.
        items : array-like of int, optional
            Restrict the candidates to these items.

        Returns
        -------
        ids : int32 array, shape (k,) or (n, N)
        scores : float32 array, same shape
            Cosine similarities; batch padding as in :meth:`recommend`.
        """
        self._check_fitted()
        n_items = self.n_items
        N = check_n(N)
        single = np.ndim(itemid) == 0
        q = as_index_array("itemid", np.atleast_1d(np.asarray(itemid)), n_items)
        excluded = excluded_items(n_items, filter_items, items)
        if excluded is None:
            excluded = np.zeros(n_items, dtype=np.bool_)
        norms = np.linalg.norm(self.weights_, axis=1)
        norms[norms == 0] = 1e-10
        unit = (self.weights_ / norms[:, None]).astype(np.float32)
        sims = unit[q] @ unit.T
        ptr = np.zeros(q.size + 1, dtype=np.int64)
        with num_threads(self.num_threads), one_blas_thread():
            ids, scores, counts = topn_select(sims, ptr, np.zeros(0, np.int32), excluded, N)
        if single:
            k = int(counts[0])
            return ids[0, :k].copy(), scores[0, :k].copy()
        return ids, scores

    # -- persistence ----------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        X = self.user_items_
        arrays = {
            "weights": self.weights_,
            "visible_bias": self.visible_bias_,
            "hidden_bias": self.hidden_bias_,
            "user_indptr": X.indptr,
            "user_indices": X.indices,
            "user_data": X.data,
        }
        params = {name: getattr(self, name) for name in self._SAVED}
        params["cd_steps"] = cd_schedule_json(self.cd_steps)
        meta = {
            "params": params,
            "n_users": int(X.shape[0]),
            "length_ref": float(self.length_ref_),
            "n_models_fitted": int(self.n_models_),
            "history": self.history_,
            "random_state": seed_to_json(self.random_state),
            "batch_size_": getattr(self, "batch_size_", None),
            "best_epoch_": getattr(self, "best_epoch_", None),
            "interrupted_": bool(getattr(self, "interrupted_", False)),
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> ImplicitRBM:
        params = dict(meta["params"])
        # files written before the replicated softmax existed hold Bernoulli models, whatever
        # the current default is
        params.setdefault("visible", "bernoulli")
        if isinstance(params.get("cd_steps"), list):
            params["cd_steps"] = [tuple(p) for p in params["cd_steps"]]
        model = cls(**params)
        try:
            model._validate()
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"the model's hyperparameters are invalid: {exc}") from None
        # files written before interrupted fits kept fewer members hold all n_models
        n_models = check_int("n_models_fitted", meta.get("n_models_fitted", model.n_models), 1)
        if n_models > model.n_models:
            raise ModelFileError(f"n_models_fitted={n_models} exceeds n_models={model.n_models}")
        n_users = check_int("n_users", meta["n_users"], 1)
        H = model.n_hidden * n_models
        hid = f"n_hidden * n_models_ = {H}"
        par = {"dtype": np.float32, "finite": True}
        W = check_file_array(arrays, "weights", (None, H), dims=("n_items", hid), **par)
        n_items = W.shape[0]
        if n_items == 0:
            raise ModelFileError("array 'weights' has no items")
        b = check_file_array(arrays, "visible_bias", (n_items,), dims=("n_items",), **par)
        c = check_file_array(arrays, "hidden_bias", (H,), dims=(hid,), **par)
        indptr, indices = check_file_csr(arrays, "user_indptr", "user_indices", n_users, n_items)
        data = check_file_array(arrays, "user_data", (len(indices),), kind="f", finite=True)
        if np.any(data <= 0):
            raise ModelFileError("array 'user_data' holds values <= 0 (no interaction)")
        X = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(n_users, n_items))
        # scipy may pick another index dtype; the kernels are compiled for these
        X.indices = X.indices.astype(np.int32, copy=False)
        X.indptr = X.indptr.astype(np.int64, copy=False)
        length_ref = float(meta.get("length_ref", 1.0))
        if not (np.isfinite(length_ref) and length_ref > 0):
            raise ModelFileError(f"length_ref must be finite and > 0, got {length_ref}")
        model.weights_, model.visible_bias_, model.hidden_bias_ = W, b, c
        model._fitted_structure = model._structure()
        model.user_items_ = X
        model.length_ref_ = length_ref
        model.n_models_ = n_models
        model.history_ = list(meta.get("history", []))
        # Fields added later: files written before them load with these defaults.
        model.random_state = seed_from_json(meta.get("random_state"))
        bs = meta.get("batch_size_", model.batch_size)
        model.batch_size_ = None if bs is None else int(bs)
        be = meta.get("best_epoch_")
        model.best_epoch_ = None if be is None else int(be)
        model.interrupted_ = bool(meta.get("interrupted_", False))
        return model


def _logits(
    indptr: np.ndarray,
    indices: np.ndarray,
    rows: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    bias_scale: float = 1.0,
    row_scale: np.ndarray | None = None,
    n_models: int = 1,
    draws: np.ndarray | None = None,
) -> np.ndarray:
    """``bias_scale * b + s_r E[h | v_r] W^T / n_models`` for CSR rows, (len(rows), n_items).

    With ``n_models > 1``, ``W`` and ``c`` are the members' parameters side by side and
    ``b`` their mean, so this is the mean of the members' scores. ``draws`` (shape
    ``(len(rows),)``) are the rows' item counts ``D`` for the replicated softmax, whose
    hidden bias is ``D c``; its scores are the softmax logits (same ranking as the
    probabilities). None: Bernoulli visibles, scores are log-odds.
    """
    if row_scale is None:
        row_scale = np.ones(rows.size, dtype=np.float64)
    h = csr_hidden_probs(indptr, indices, rows, W, c, row_scale, draws)
    out = h @ W.T
    out_scale = row_scale / n_models
    if np.any(out_scale != 1.0):
        out *= out_scale.astype(out.dtype)[:, None]
    if bias_scale == 1.0:
        out += b
    else:
        out += (bias_scale * b).astype(out.dtype)
    return out
