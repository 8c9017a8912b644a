"""The generic restricted Boltzmann machine estimator, :class:`rbmrec.RBM`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rbmrec.engine import bernoulli as _bern
from rbmrec.engine import exact as _exact
from rbmrec.engine import softmax as _soft
from rbmrec.engine._random import row_states
from rbmrec.models import _rbm_state
from rbmrec.models._estimator import ParamsMixin, num_threads, seed_generator
from rbmrec.models._rbm_rows import Rows, check_rows, full_rows
from rbmrec.models._rbm_train import FAMILY as _FAMILY
from rbmrec.models._rbm_train import cd_step, chains_for, epoch_monitors, initial_params
from rbmrec.models.persistence import register
from rbmrec.models.persistence import save as _save
from rbmrec.models.trainer import TrainerConfig, parse_cd_schedule, train
from rbmrec.models.validation import check_choice, check_fitted, check_int, check_unchanged

log = logging.getLogger(__name__)

VISIBLE = ("bernoulli", "gaussian", "softmax")
#: Accepted values of the ``dtype`` argument.
_DTYPES = ("float32", "float64", np.float32, np.float64)


@register
class RBM(ParamsMixin):
    """Restricted Boltzmann machine with binary hidden units (Smolensky 1986).

    Visible units are binary (``"bernoulli"``), Gaussian with fixed per-unit standard deviation
    (``"gaussian"``) or K-way softmax groups (``"softmax"``). Trained by contrastive divergence
    CD-k (Hinton 2002) or, with ``persistent=True``, persistent CD (Tieleman 2008), in the
    sparse, parallel Numba kernels of :mod:`rbmrec.engine`; the update rule (learning rate,
    momentum, weight decay on the weights) is the shared trainer's
    (:mod:`rbmrec.models.trainer`).

    Parameters
    ----------
    n_hidden : int, default 64
        Number of binary hidden units.
    visible : {"bernoulli", "gaussian", "softmax"}, default "bernoulli"
        Visible family. Input ``X`` is (n_samples, n_visible): values in [0, 1] for
        bernoulli (probabilities are accepted), real values for gaussian, and for softmax
        integer level indices with -1 for "not observed" (dense) or a CSR matrix whose stored
        data are level indices + 1 (unstored groups are not observed). Dense or scipy sparse;
        for bernoulli/gaussian an unstored sparse entry means 0. A softmax row may observe no
        group: inference then answers for the RBM over no visible units (``transform``
        gives ``sigmoid(c)``, ``free_energy`` ``-sum softplus(c)``, ``log_likelihood`` 0,
        ``gibbs`` -1 everywhere), alone or in a batch; ``fit`` and ``partial_fit`` refuse
        data in which no row observes anything (ValueError: nothing to learn).
    n_levels : int or None, default None
        Softmax only: number of levels K in [2, 127]; inferred from the first ``fit`` data
        when None.
    sigma : float, array of shape (n_visible,) or None, default None
        Gaussian only: fixed standard deviation of each visible unit (1 when None). Each value
        and its reciprocal must be finite and > 0 in ``dtype`` (float32: 2.9e-39 to 3.4e38).
    cd_steps : int or sequence of (first_epoch, steps), default 1
        Gibbs steps k of CD-k / PCD-k, or a schedule.
    persistent : bool, default False
        Persistent CD. Binary/Gaussian: ``batch_size`` fantasy chains kept across batches
        and ``partial_fit`` calls. Softmax: one chain per training row (its observed groups),
        restarted at the data by each ``fit``/``partial_fit`` call.
    learning_rate : float, default 0.05
    momentum : float, default 0.5
    weight_decay : float, default 1e-4
        L2 penalty on the weights (not on the biases).
    batch_size : int, default 64
    n_epochs : int, default 20
        Epochs of ``fit``; ``partial_fit`` runs one epoch.
    init_scale : float, default 0.01
        Standard deviation of the initial weights; it and the weights it draws must be finite
        in ``dtype``.
    dtype : {"float32", "float64"}, default "float32"
        Parameter dtype.
    random_state : None, int, SeedSequence or Generator, default None
        Seeds the initialisation, shuffling and every kernel random stream.
    num_threads : int, default 0
        Numba threads for each call; 0 keeps numba's setting. A value above the threads numba
        was started with (``NUMBA_NUM_THREADS``, by default the machine's cores) is capped to
        them, so a model saved on a larger machine runs unchanged on a smaller one. Results do
        not depend on it.
    callback : callable or None, default None
        ``callback(epoch, metrics) -> bool | None`` after each epoch; True stops training.
    progress : bool, default False
        Show a tqdm progress bar over epochs when stderr is a terminal. Either way each
        epoch is logged once, at INFO level, on the ``rbmrec.models.trainer`` logger.

    Attributes
    ----------
    weights_ : ndarray, shape (n_visible, n_hidden) or (n_visible, n_levels, n_hidden)
    visible_bias_ : ndarray, shape (n_visible,) or (n_visible, n_levels)
    hidden_bias_ : ndarray, shape (n_hidden,)
    sigma_ : ndarray, shape (n_visible,)
        Gaussian only (ones for the other families).
    n_visible_ : int
    n_features_in_ : int
        ``n_visible_`` (scikit-learn's name).
    n_levels_ : int or None
    history_ : list of dict
        Per epoch: ``epoch``, ``cd_steps``, ``recon_error`` (mean squared error of the
        mean-field reconstruction per visible unit; softmax: of the expected level at the last
        Gibbs step), ``free_energy`` (mean over up to 256 training rows),
        ``pseudo_log_likelihood`` (bernoulli, stochastic one-unit estimate as in
        scikit-learn), ``free_energy_gap`` (mean F(validation) - mean F(training), when
        ``fit`` gets ``validation``), ``seconds``. Epochs are recorded as they finish, so
        they are kept when a callback or a divergence raises later.
    interrupted_ : bool
        Whether Ctrl-C ended the last ``fit`` or ``partial_fit`` early (the parameters are
        then those of the last recorded epoch). A loop of ``partial_fit`` calls can test it
        to stop.

    Notes
    -----
    ``n_hidden``, ``visible``, ``n_levels``, ``dtype`` and ``sigma`` fix the shapes and
    meaning of the fitted parameters. Changed after ``fit`` (e.g. by ``set_params``), they
    take effect at the next ``fit``; until then inference (``transform``, ``free_energy``,
    ``reconstruct``, ``gibbs``, ``sample``, ``log_partition``, ``log_likelihood``),
    ``partial_fit`` and ``save`` raise a ValueError naming the changed argument. Setting it
    back makes the model usable again.

    Examples
    --------
    >>> import numpy as np, rbmrec
    >>> X = (np.random.default_rng(0).random((100, 6)) < 0.3).astype(np.float32)
    >>> rbm = rbmrec.RBM(n_hidden=4, n_epochs=2, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (100, 4)
    """

    def __init__(
        self,
        n_hidden: int = 64,
        visible: str = "bernoulli",
        n_levels: int | None = None,
        sigma: float | np.ndarray | None = None,
        cd_steps: int | Any = 1,
        persistent: bool = False,
        learning_rate: float = 0.05,
        momentum: float = 0.5,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        n_epochs: int = 20,
        init_scale: float = 0.01,
        dtype: str = "float32",
        random_state: Any = None,
        num_threads: int = 0,
        callback: Callable[[int, dict[str, float]], bool | None] | None = None,
        progress: bool = False,
    ) -> None:
        self.n_hidden = n_hidden
        self.visible = visible
        self.n_levels = n_levels
        self.sigma = sigma
        self.cd_steps = cd_steps
        self.persistent = persistent
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.init_scale = init_scale
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.callback = callback
        self.progress = progress

    #: Constructor arguments, in signature order.
    _PARAMS = (
        "n_hidden", "visible", "n_levels", "sigma", "cd_steps", "persistent", "learning_rate",
        "momentum", "weight_decay", "batch_size", "n_epochs", "init_scale", "dtype",
        "random_state", "num_threads", "callback", "progress",
    )  # fmt: skip

    # ------------------------------------------------------------------ scikit-learn

    @property
    def _is_fitted(self) -> bool:
        """Whether the model has parameters (``fit``, ``partial_fit`` or ``load``)."""
        return getattr(self, "weights_", None) is not None

    def __sklearn_is_fitted__(self) -> bool:
        """scikit-learn's ``check_is_fitted`` protocol."""
        return self._is_fitted

    @property
    def n_features_in_(self) -> int:
        """Number of columns of the data ``fit`` saw (``n_visible_``, scikit-learn's name).

        An AttributeError before ``fit``, as scikit-learn expects.
        """
        return self.n_visible_

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's description of the estimator, read by its tools and checks.

        An unsupervised transformer of dense or sparse input without NaN; ``positive_only``
        for bernoulli units (their values lie in [0, 1]); ``transform`` returns the
        ``dtype`` argument's dtype whatever the input's. scikit-learn is imported only when
        it asks, so it is no dependency of rbmrec.
        """
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        # An invalid dtype argument (refused by fit) preserves nothing.
        preserved = [str(np.dtype(self.dtype))] if self.dtype in _DTYPES else []
        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=preserved),
            input_tags=InputTags(sparse=True, positive_only=self.visible == "bernoulli"),
        )

    # ------------------------------------------------------------------ validation

    def _config(self, n_epochs: int) -> TrainerConfig:
        check_int("n_hidden", self.n_hidden, 1)
        check_choice("visible", self.visible, VISIBLE)
        if self.n_levels is not None:
            if self.visible != "softmax":
                raise ValueError("n_levels applies only to visible='softmax'")
            check_int("n_levels", self.n_levels, 2, 127)
        if self.sigma is not None and self.visible != "gaussian":
            raise ValueError("sigma applies only to visible='gaussian'")
        if not isinstance(self.persistent, bool | np.bool_):
            raise TypeError(f"persistent must be a bool, got {type(self.persistent).__name__}")
        if not isinstance(self.progress, bool | np.bool_):
            raise TypeError(f"progress must be a bool, got {type(self.progress).__name__}")
        if isinstance(self.init_scale, bool) or not isinstance(
            self.init_scale, int | float | np.number
        ):
            raise TypeError(f"init_scale must be a number, got {type(self.init_scale).__name__}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        # Checked in the parameter dtype the initial weights are stored in (float32 overflows
        # at 3.4e38); _init_params also checks the drawn weights themselves.
        with np.errstate(over="ignore"):
            scale = np.asarray(self.init_scale, dtype=np.float64).astype(self._dtype)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(
                f"init_scale must be finite and > 0 in the parameter dtype {self._dtype}, got "
                f"{self.init_scale}"
            )
        check_int("num_threads", self.num_threads, 0)  # capped when used (_estimator.num_threads)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable, got {type(self.callback).__name__}")
        parse_cd_schedule(self.cd_steps)
        cfg = TrainerConfig(
            n_epochs=n_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            cd_steps=self.cd_steps,
            progress=bool(self.progress),
            callbacks=(self.callback,) if self.callback is not None else (),
        )
        cfg.validate()
        return cfg

    @property
    def _dtype(self) -> np.dtype:
        """The ``dtype`` argument (what the next ``fit`` creates)."""
        return np.dtype(self.dtype)

    @property
    def _param_dtype(self) -> np.dtype:
        """dtype of the fitted parameters (of the ``dtype`` argument before a fit)."""
        return self.weights_.dtype if self._is_fitted else self._dtype

    @property
    def _family(self) -> str:
        """Visible family of the fitted parameters (the ``visible`` argument before a fit).

        The two differ only when ``visible`` was changed after ``fit``, which inference,
        ``partial_fit`` and ``save`` refuse (:meth:`_check_matches_fit`) before any kernel of
        another family runs on the parameters.
        """
        if self._is_fitted:
            return getattr(self, "_fitted_visible", self.visible)
        return self.visible

    def _check_matches_fit(self, action: str) -> None:
        """ValueError unless the structural arguments still describe the fitted parameters.

        ``n_hidden``, ``visible``, ``n_levels``, ``dtype`` and ``sigma`` fix the shapes, dtype
        and meaning of ``weights_`` etc.; a model whose arguments were changed after ``fit``
        cannot be used for inference, continued (``partial_fit``) or saved as it is: its
        arguments no longer describe its parameters (the same contract as
        :class:`~rbmrec.RatingRBM` and :class:`~rbmrec.ImplicitRBM`).
        """
        fitted: dict[str, Any] = {
            "visible": self._family,
            "n_hidden": int(self.weights_.shape[-1]),
            "dtype": self.weights_.dtype.name,
        }
        now: dict[str, Any] = {
            "visible": self.visible,
            "n_hidden": self.n_hidden,
            "dtype": self._dtype.name,
        }
        if self.n_levels is not None:  # None: inferred by fit, so any fitted K matches
            fitted["n_levels"], now["n_levels"] = self.n_levels_, self.n_levels
        check_unchanged(fitted, now, action)
        if self.visible == "gaussian":
            try:
                same = np.array_equal(self._check_sigma(self.n_visible_), self.sigma_)
            except (TypeError, ValueError):
                same = False
            if not same:
                raise ValueError(
                    f"sigma is {self.sigma!r} but the model was fitted with sigma_ = "
                    f"{self.sigma_!r}; {action} needs the fitted value: set it back, or call "
                    "fit() to train a new model"
                )

    def _check_ready(self, action: str) -> None:
        """NotFittedError before ``fit``; ValueError (naming the argument) when a structural
        argument was changed after it. Called by every inference method, named ``action``."""
        check_fitted(self)
        self._check_matches_fit(action)

    def _check_sigma(self, n_visible: int) -> np.ndarray:
        if self.sigma is None:
            return np.ones(n_visible, dtype=self._dtype)
        s = np.asarray(self.sigma)
        if s.dtype.kind not in "iuf":
            raise TypeError(f"sigma must be a number or an array of numbers, got {s.dtype}")
        s = np.broadcast_to(s, (n_visible,)) if s.ndim == 0 else s
        if s.shape != (n_visible,):
            raise ValueError(f"sigma must be a scalar or have shape ({n_visible},), got {s.shape}")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("sigma must be finite and > 0 for every visible unit")
        # The kernels use sigma and 1 / sigma in the parameter dtype: both must stay finite
        # and nonzero there (float32 turns 1e-50 into 0 and 1e39 into inf).
        dt = self._dtype
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            cast = s.astype(dt)
            inv = (1.0 / cast.astype(np.float64)).astype(dt)
        ok = np.isfinite(cast) & (cast > 0) & np.isfinite(inv) & (inv > 0)
        if not np.all(ok):
            bad = s.astype(np.float64)[~ok][0]
            tiny = 1.0 / float(np.finfo(dt).max)
            raise ValueError(
                f"sigma must lie in [{tiny:.3g}, {float(np.finfo(dt).max):.3g}] for the "
                f"parameter dtype {dt} (sigma and 1 / sigma must be finite and > 0 in it), "
                f"got {bad:g}"
            )
        return np.ascontiguousarray(cast)

    def _check_X(
        self, X: Any, name: str = "X", fitting: bool = False, training: bool = False
    ) -> Rows:
        """Validate ``X`` and convert it to the kernels' CSR layout (:func:`check_rows`).

        ``fitting``: ``X`` initialises the model (softmax: it may fix ``n_levels_``).
        ``training``: ``X`` is trained on (``fit``/``partial_fit``; implied by ``fitting``),
        so softmax data must observe at least one group somewhere. Inference accepts rows,
        or whole inputs, that observe nothing: their answers are well defined
        (``p(h | v) = sigmoid(c)``, ``F = -sum softplus(c)``, ``log p(v) = 0``).
        """
        fitted = self._is_fitted
        return check_rows(
            X,
            name,
            self._family,
            n_visible=self.n_visible_ if fitted else None,
            n_levels=self.n_levels if fitting else self.n_levels_,
            dtype=self._param_dtype,
            training=fitting or training,
            estimator=type(self).__name__,
        )

    # ------------------------------------------------------------------ parameters

    def _init_params(self, data: Rows, n_visible: int, rng: np.random.Generator) -> None:
        """Initial parameters; every check runs before the model is changed.

        Raises
        ------
        ValueError
            If ``sigma`` is invalid, or ``init_scale`` draws weights beyond the range of the
            parameter dtype.
        """
        dt = self._dtype
        sigma = self._check_sigma(n_visible) if self.visible == "gaussian" else None
        W, b, K = initial_params(self, data, n_visible, rng)
        self.n_visible_ = n_visible
        self.n_levels_ = K
        self._fitted_visible = self.visible
        self.sigma_ = sigma if sigma is not None else np.ones(n_visible, dtype=dt)
        self.weights_ = W
        self.visible_bias_ = np.ascontiguousarray(b, dtype=dt)
        self.hidden_bias_ = np.zeros(self.n_hidden, dtype=dt)
        self._velocity: dict[str, np.ndarray] | None = None
        self._chains: np.ndarray | None = None
        self.history_: list[dict[str, float]] = []
        self.interrupted_ = False

    def _params(self) -> dict[str, np.ndarray]:
        return {"W": self.weights_, "b": self.visible_bias_, "c": self.hidden_bias_}

    def _no_offset(self) -> np.ndarray:
        return np.zeros((0, self.weights_.shape[-1]), dtype=self.weights_.dtype)

    def _describe(self) -> str:
        return (
            f"visible={self.visible!r}, n_hidden={self.n_hidden}, batch_size={self.batch_size}, "
            f"persistent={self.persistent}, "
        )

    # ------------------------------------------------------------------ training

    def fit(self, X: Any, y: Any = None, *, validation: Any = None) -> RBM:
        """Fit the model from scratch for ``n_epochs`` epochs.

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Training data (see the class docstring for each family's encoding).
        y : ignored
        validation : same kind as X, optional
            Held-out rows; adds ``free_energy_gap`` to ``history_`` (a growing gap signals
            overfitting).

        Returns
        -------
        RBM
            ``self``.
        """
        cfg = self._config(self.n_epochs)
        # A fit that fails its checks leaves a fitted model as it was: the new state is
        # built first and the old one restored on any error before training starts.
        saved = dict(self.__dict__)
        try:
            self._rng = seed_generator(self.random_state)
            self.weights_ = None
            data = self._check_X(X, fitting=True)
            self._init_params(data, data.n_cols, self._rng)
            valid = self._check_X(validation, "validation") if validation is not None else None
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self._run(data, cfg, valid)

    def partial_fit(self, X: Any, y: Any = None) -> RBM:
        """Run one more epoch over ``X`` (initialising the model on the first call).

        Momentum buffers, the CD schedule position, the random stream and the binary/Gaussian
        persistent chains carry over between calls, and through :func:`rbmrec.save` /
        :func:`rbmrec.load`: a loaded model continues exactly as the saved one would have.

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Rows in the encoding of :meth:`fit` (see the class docstring).
        y : ignored

        Returns
        -------
        RBM
            ``self``.

        Raises
        ------
        ValueError
            If ``n_hidden``, ``visible``, ``n_levels``, ``dtype`` or ``sigma`` was changed
            after the model was fitted (call ``fit`` to train a model with the new values).
        """
        cfg = self._config(1)
        if not self._is_fitted:
            self._rng = seed_generator(self.random_state)
            data = self._check_X(X, fitting=True)
            self._init_params(data, data.n_cols, self._rng)
        else:
            self._check_matches_fit("partial_fit")
            data = self._check_X(X, training=True)
        return self._run(data, cfg, None)

    def _run(self, data: Rows, cfg: TrainerConfig, validation: Rows | None) -> RBM:
        """Train on ``data`` (``validation`` checked by ``fit``) with the shared trainer."""
        rng = self._rng
        # Drawn in this order (chains, then monitor rows) from the model's random stream.
        step = cd_step(self, data, chains_for(self, data, cfg.batch_size, rng))
        evaluate = epoch_monitors(self, data, validation, rng)
        if self._velocity is None:
            self._velocity = {}
        try:
            with num_threads(self.num_threads):
                result = train(
                    self._params(),
                    step,
                    data.n_rows,
                    cfg,
                    rng,
                    decay=("W",),
                    evaluate=evaluate,
                    describe=self._describe(),
                    velocity=self._velocity,
                    # The epochs done so far, for schedules: one record each, kept also when
                    # a callback or a divergence raises (history_ is appended as they finish).
                    start_epoch=len(self.history_),
                    history=self.history_,
                )
        finally:
            if self._chains is not None and not np.all(np.isfinite(self._chains)):
                # Diverged persistent chains: the next persistent fit draws new ones from
                # the data (as a first one does), and the model's file stays loadable.
                self._chains = None
        self.interrupted_ = result.interrupted
        return self

    # ------------------------------------------------------------------ inference

    def _all_rows(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def _free_energy_rows(self, d: Rows) -> np.ndarray:
        rows = self._all_rows(d.n_rows)
        W, b, c = self.weights_, self.visible_bias_, self.hidden_bias_
        if self._family == "softmax":
            return _soft.softmax_free_energy(
                d.indptr, d.indices, d.vals, rows, W, b, c, self._no_offset()
            )
        return _bern.free_energy(
            d.indptr, d.indices, d.vals, rows, W, b, c, self.sigma_, _FAMILY[self._family],
            self._no_offset(),
        )  # fmt: skip

    def _hidden_rows(self, d: Rows) -> np.ndarray:
        rows = self._all_rows(d.n_rows)
        W, c = self.weights_, self.hidden_bias_
        if self._family == "softmax":
            return _soft.softmax_hidden_probs(
                d.indptr, d.indices, d.vals, rows, W, c, self._no_offset()
            )
        inv = (1.0 / self.sigma_).astype(W.dtype)
        return _bern.hidden_probs(d.indptr, d.indices, d.vals, rows, W, c, inv, self._no_offset())

    def transform(self, X: Any) -> np.ndarray:
        """Hidden activation probabilities ``p(h_j = 1 | v)``.

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Rows in the encoding of :meth:`fit` (see the class docstring).

        Returns
        -------
        ndarray, shape (n_samples, n_hidden), the model's dtype
        """
        self._check_ready("transform")
        d = self._check_X(X)
        with num_threads(self.num_threads):
            return self._hidden_rows(d)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """:meth:`fit` on ``X`` (with ``fit_params``, e.g. ``validation``), then
        :meth:`transform` it.

        Returns
        -------
        ndarray, shape (n_samples, n_hidden), the model's dtype
        """
        return self.fit(X, y, **fit_params).transform(X)

    def free_energy(self, X: Any) -> np.ndarray:
        """Free energy ``F(v) = -log sum_h exp(-E(v, h))`` of each row.

        For softmax rows that observe a subset of the groups, ``F`` is that of the row's RBM
        over its observed groups.

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Rows in the encoding of :meth:`fit` (see the class docstring).

        Returns
        -------
        ndarray of float64, shape (n_samples,)
        """
        self._check_ready("free_energy")
        d = self._check_X(X)
        with num_threads(self.num_threads):
            return self._free_energy_rows(d)

    def reconstruct(self, X: Any) -> np.ndarray:
        """Mean-field reconstruction ``E[v | h = p(h | v)]``.

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Rows in the encoding of :meth:`fit` (see the class docstring).

        Returns
        -------
        ndarray
            (n_samples, n_visible) means for bernoulli/gaussian; (n_samples, n_visible,
            n_levels) level probabilities of every group for softmax.
        """
        self._check_ready("reconstruct")
        d = self._check_X(X)
        with num_threads(self.num_threads):
            hp = self._hidden_rows(d)
            if self._family == "softmax":
                n, nv = d.n_rows, self.n_visible_
                full = full_rows(np.zeros(0), n, nv)  # only its index arrays are read
                probs = _soft.softmax_visible_probs(
                    full.indptr, full.indices, self._all_rows(n), self.weights_,
                    self.visible_bias_, hp,
                )  # fmt: skip
                return probs.reshape(n, nv, self.n_levels_)
            return _bern.visible_mean(
                hp, self.weights_, self.visible_bias_, self.sigma_, _FAMILY[self._family]
            )

    def _gibbs_rows(self, d: Rows, steps: int) -> np.ndarray:
        rows = self._all_rows(d.n_rows)
        states = row_states(self._rng, d.n_rows)
        W, b, c = self.weights_, self.visible_bias_, self.hidden_bias_
        if self._family == "softmax":
            lv = _soft.softmax_gibbs(
                d.indptr, d.indices, d.vals, rows, W, b, c, self._no_offset(), steps, states
            )
            out = np.full((d.n_rows, self.n_visible_), -1, dtype=np.int64)
            r = np.repeat(np.arange(d.n_rows), np.diff(d.indptr))
            out[r, d.indices] = lv
            return out
        return _bern.gibbs(
            d.indptr, d.indices, d.vals, rows, W, b, c, self.sigma_, _FAMILY[self._family],
            self._no_offset(), steps, states,
        )  # fmt: skip

    def gibbs(self, X: Any, steps: int = 1) -> np.ndarray:
        """Run ``steps`` Gibbs sweeps (``h ~ p(h|v)``, ``v ~ p(v|h)``) from each row of ``X``.

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Rows in the encoding of :meth:`fit` (see the class docstring).
        steps : int, default 1
            Gibbs sweeps (>= 1).

        Returns
        -------
        ndarray, shape (n_samples, n_visible)
            Sampled visible states: floats for bernoulli/gaussian, int64 levels for softmax
            (-1 where the input row does not observe the group).
        """
        self._check_ready("gibbs")
        steps = check_int("steps", steps, 1)
        d = self._check_X(X)
        with num_threads(self.num_threads):
            return self._gibbs_rows(d, steps)

    def sample(self, n_samples: int = 1, steps: int = 100) -> np.ndarray:
        """Draw ``n_samples`` visible vectors by ``steps`` Gibbs sweeps from random starts.

        Starts are uniform random bits (bernoulli), ``b + sigma * N(0, 1)`` (gaussian) or
        uniform levels of every group (softmax).

        Parameters
        ----------
        n_samples : int, default 1
            Vectors to draw (>= 1).
        steps : int, default 100
            Gibbs sweeps from each start (>= 1).

        Returns
        -------
        ndarray, shape (n_samples, n_visible)
        """
        self._check_ready("sample")
        n_samples = check_int("n_samples", n_samples, 1)
        steps = check_int("steps", steps, 1)
        nv, rng = self.n_visible_, self._rng
        n = n_samples
        if self._family == "softmax":
            vals = rng.integers(0, self.n_levels_, size=n * nv).astype(np.int8)
        elif self._family == "bernoulli":
            vals = (rng.random(n * nv) < 0.5).astype(self._param_dtype)
        else:
            z = rng.standard_normal((n, nv))
            vals = (self.visible_bias_ + self.sigma_ * z).astype(self._param_dtype).ravel()
        with num_threads(self.num_threads):
            return self._gibbs_rows(full_rows(vals, n, nv), steps)

    # ------------------------------------------------------------------ exact (tiny models)

    def _exact_args(self) -> tuple:
        sigma = self.sigma_ if self._family == "gaussian" else None
        return self.weights_, self.visible_bias_, self.hidden_bias_, sigma

    def log_partition(self, max_states: int = _exact.MAX_STATES) -> float:
        """Exact ``log Z`` by enumeration (tiny models only).

        Sums over the hidden states or the visible states, whichever are fewer (Gaussian:
        hidden states, the visible integral in closed form). Softmax: the RBM over all groups.

        Parameters
        ----------
        max_states : int, default ``rbmrec.engine.exact.MAX_STATES``
            Most states the enumeration may visit.

        Raises
        ------
        ValueError
            If more than ``max_states`` states would be enumerated.
        """
        self._check_ready("log_partition")
        return _exact.log_partition(self._family, *self._exact_args(), max_states=max_states)

    def log_likelihood(self, X: Any, max_states: int = _exact.MAX_STATES) -> np.ndarray:
        """Exact ``log p(v)`` of each row (a log density for Gaussian units).

        Softmax rows observing a subset of the groups are scored under the RBM of their
        observed groups (one partition function per distinct subset).

        Parameters
        ----------
        X : array-like or scipy sparse, shape (n_samples, n_visible)
            Rows in the encoding of :meth:`fit` (see the class docstring).
        max_states : int, default ``rbmrec.engine.exact.MAX_STATES``
            Most states the enumeration may visit.

        Returns
        -------
        ndarray of float64, shape (n_samples,)

        Raises
        ------
        ValueError
            If the model is too large to enumerate (see :meth:`log_partition`).
        """
        self._check_ready("log_likelihood")
        d = self._check_X(X)
        with num_threads(self.num_threads):
            F = self._free_energy_rows(d)
        if self._family != "softmax":
            return -F - self.log_partition(max_states)
        W, b, c, _ = self._exact_args()
        mask = d.observed(self.n_visible_)
        out = np.empty(d.n_rows)
        patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
        for q, pat in enumerate(patterns):
            logz = _exact.log_partition("softmax", W[pat], b[pat], c, max_states=max_states)
            sel = inverse.ravel() == q
            out[sel] = -F[sel] - logz
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (``.npz`` appended when missing), atomically.

        The same as :func:`rbmrec.save`: parameters, training state (momentum, random stream,
        persistent chains) and arguments, as arrays plus JSON metadata (no pickle); read it
        back with :func:`rbmrec.load`.

        Parameters
        ----------
        path : str or path-like
            Destination file.

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        ValueError
            If a structural argument (``n_hidden``, ``visible``, ``n_levels``, ``dtype``,
            ``sigma``) was changed after ``fit``.
        """
        return _save(self, path)  # _get_state raises NotFittedError first

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        check_fitted(self)
        self._check_matches_fit("save")  # the file's arguments must describe its arrays
        return _rbm_state.get_state(self)

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> RBM:
        return _rbm_state.from_state(cls, arrays, meta)


__all__ = ["RBM"]
