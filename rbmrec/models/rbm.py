"""The generic restricted Boltzmann machine estimator, :class:`rbmrec.RBM`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.engine import bernoulli as _bern
from rbmrec.engine import exact as _exact
from rbmrec.engine import softmax as _soft
from rbmrec.engine._random import row_states
from rbmrec.errors import ModelFileError
from rbmrec.models._estimator import ParamsMixin, num_threads, seed_generator
from rbmrec.models._sparse import repeated_entry
from rbmrec.models.persistence import (
    check_file_array,
    generator_from_json,
    generator_to_json,
    register,
    seed_from_json,
    seed_to_json,
)
from rbmrec.models.persistence import save as _save
from rbmrec.models.trainer import TrainerConfig, cd_schedule_json, parse_cd_schedule, train
from rbmrec.models.validation import (
    check_choice,
    check_fitted,
    check_int,
    check_sparse_structure,
    check_unchanged,
)

log = logging.getLogger(__name__)

VISIBLE = ("bernoulli", "gaussian", "softmax")
_FAMILY = {"bernoulli": _bern.BERNOULLI, "gaussian": _bern.GAUSSIAN}
#: Rows of the training data used for the per-epoch free energy / pseudo-likelihood.
_MONITOR_ROWS = 256


class _Rows:
    """Kernel view of an input matrix: CSR arrays (``vals`` = float data or int8 levels)."""

    __slots__ = ("indices", "indptr", "n_cols", "n_rows", "vals")

    def __init__(
        self, indptr: np.ndarray, indices: np.ndarray, vals: np.ndarray, n_cols: int
    ) -> None:
        self.indptr = indptr
        self.indices = indices
        self.vals = vals
        self.n_rows = len(indptr) - 1
        self.n_cols = n_cols

    def subset(self, rows: np.ndarray) -> _Rows:
        """The given rows as a new contiguous CSR."""
        lens = self.indptr[rows + 1] - self.indptr[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        take = np.concatenate(
            [np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows] or [np.zeros(0, int)]
        ).astype(np.int64)
        return _Rows(indptr, self.indices[take], self.vals[take], self.n_cols)


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
        Show a tqdm progress bar over epochs.

    Attributes
    ----------
    weights_ : ndarray, shape (n_visible, n_hidden) or (n_visible, n_levels, n_hidden)
    visible_bias_ : ndarray, shape (n_visible,) or (n_visible, n_levels)
    hidden_bias_ : ndarray, shape (n_hidden,)
    sigma_ : ndarray, shape (n_visible,)
        Gaussian only (ones for the other families).
    n_visible_ : int
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
        self.weights_: np.ndarray | None = None

    #: Constructor arguments, in signature order.
    _PARAMS = (
        "n_hidden", "visible", "n_levels", "sigma", "cd_steps", "persistent", "learning_rate",
        "momentum", "weight_decay", "batch_size", "n_epochs", "init_scale", "dtype",
        "random_state", "num_threads", "callback", "progress",
    )  # fmt: skip

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
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
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
        return self.weights_.dtype if self.weights_ is not None else self._dtype

    @property
    def _family(self) -> str:
        """Visible family of the fitted parameters (the ``visible`` argument before a fit).

        The two differ only when ``visible`` was changed after ``fit``, which inference,
        ``partial_fit`` and ``save`` refuse (:meth:`_check_matches_fit`) before any kernel of
        another family runs on the parameters.
        """
        if self.weights_ is not None:
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
    ) -> _Rows:
        """Validate ``X`` and convert it to the kernels' CSR layout.

        ``fitting``: ``X`` initialises the model (softmax: it may fix ``n_levels_``).
        ``training``: ``X`` is trained on (``fit``/``partial_fit``; implied by ``fitting``),
        so softmax data must observe at least one group somewhere. Inference accepts rows,
        or whole inputs, that observe nothing: their answers are well defined
        (``p(h | v) = sigmoid(c)``, ``F = -sum softplus(c)``, ``log p(v) = 0``).
        """
        fitted = self.weights_ is not None
        n_vis = self.n_visible_ if fitted else None
        if sp.issparse(X):
            if X.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
            if X.dtype.kind not in "biuf":
                raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
            check_sparse_structure(name, X)  # the kernels index memory with its indices
            if self._family == "softmax":
                # Looked for in X as given: converting COO to CSR would sum two stored levels
                # of one group into another level.
                rep = repeated_entry(X)
                if rep is not None:
                    raise ValueError(
                        f"{name} has {rep.extra} duplicate stored entr"
                        f"{'y' if rep.extra == 1 else 'ies'}, e.g. (row {rep.row}, column "
                        f"{rep.col}) is stored {rep.count} times; a softmax group takes one "
                        "level: drop the duplicates first"
                    )
            X = sp.csr_matrix(X, copy=True)
            X.prune()
            shape = X.shape
        else:
            if isinstance(X, str | bytes) or X is None:
                raise TypeError(f"{name} must be an array or a scipy sparse matrix, got {X!r}")
            X = np.asarray(X)
            if X.dtype.kind not in "biuf":
                raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
            if X.dtype == np.float16:  # scipy.sparse has no float16; exact in float32
                X = X.astype(np.float32)
            if X.ndim != 2:
                raise ValueError(f"{name} must be 2-D (n_samples, n_visible), got shape {X.shape}")
            shape = X.shape
        if shape[0] == 0 or shape[1] == 0:
            raise ValueError(f"{name} is empty (shape {shape})")
        if n_vis is not None and shape[1] != n_vis:
            raise ValueError(
                f"{name} has {shape[1]} columns but the model has {n_vis} visible units"
            )
        if self._family == "softmax":
            K = self.n_levels if fitting else self.n_levels_
            return self._softmax_rows(X, name, K, training=fitting or training)
        if sp.issparse(X):
            X.sum_duplicates()
            X.sort_indices()
            data = X.data
        else:
            data = X
        if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if self._family == "bernoulli" and data.size and (data.min() < 0 or data.max() > 1):
            raise ValueError(
                f"{name} must hold values in [0, 1] for bernoulli visible units, got range "
                f"[{data.min()}, {data.max()}]"
            )
        csr = X if sp.issparse(X) else sp.csr_matrix(X)
        dt = self._param_dtype
        with np.errstate(over="ignore"):
            vals = csr.data.astype(dt)
        if not np.all(np.isfinite(vals)):
            big = csr.data[~np.isfinite(vals)][0]
            raise ValueError(
                f"{name} holds {big:g}, beyond the range of the model's dtype {dt} "
                f"(|x| <= {float(np.finfo(dt).max):.3g}); rescale it or use dtype='float64'"
            )
        return _Rows(csr.indptr.astype(np.int64), csr.indices.astype(np.int32), vals, shape[1])

    def _softmax_rows(self, X: Any, name: str, K: int | None, training: bool = False) -> _Rows:
        if sp.issparse(X):  # duplicates were refused by _check_X before the CSR conversion
            X.sort_indices()
            d = X.data
            if d.dtype.kind == "f":
                if not np.all(np.isfinite(d)):
                    raise ValueError(f"{name} contains NaN or infinite values")
                if np.any(d != np.round(d)):
                    raise ValueError(f"{name} (softmax CSR) must store integer level indices + 1")
            d = d.astype(np.int64)
            if d.size and (d.min() < 1 or (K is not None and d.max() > K)):
                raise ValueError(
                    f"{name} (softmax CSR) stores level indices + 1, which must lie in "
                    f"[1, {K if K is not None else 'n_levels'}]; got range [{d.min()}, {d.max()}]"
                )
            indptr, indices, levels = X.indptr, X.indices, d - 1
        else:
            if X.dtype.kind not in "iu":
                raise TypeError(
                    f"{name} must hold integer level indices (-1 = not observed) for softmax "
                    f"visible units, got dtype {X.dtype}"
                )
            Xi = X.astype(np.int64)
            if Xi.min() < -1 or (K is not None and Xi.max() >= K):
                raise ValueError(
                    f"{name} level indices must lie in [0, {K if K is not None else 'n_levels'}"
                    f") or be -1 (not observed); got range [{Xi.min()}, {Xi.max()}]"
                )
            mask = Xi >= 0
            indptr = np.zeros(Xi.shape[0] + 1, dtype=np.int64)
            np.cumsum(mask.sum(axis=1), out=indptr[1:])
            indices = np.nonzero(mask)[1]
            levels = Xi[mask]
        if training and len(levels) == 0:
            # Inference is defined for rows observing nothing; training on them learns nothing.
            raise ValueError(
                f"{name} observes no visible group in any row: there is nothing to learn from"
            )
        if K is None and levels.max() + 1 > 127:
            raise ValueError(f"{name} has {levels.max() + 1} levels; at most 127 are supported")
        return _Rows(
            indptr.astype(np.int64), indices.astype(np.int32), levels.astype(np.int8), X.shape[1]
        )

    # ------------------------------------------------------------------ parameters

    def _init_params(self, data: _Rows, n_visible: int, rng: np.random.Generator) -> None:
        """Initial parameters; every check runs before the model is changed.

        Raises
        ------
        ValueError
            If ``sigma`` is invalid, or ``init_scale`` draws weights beyond the range of the
            parameter dtype.
        """
        dt = self._dtype
        nh = self.n_hidden
        sigma = self._check_sigma(n_visible) if self.visible == "gaussian" else None
        K = None
        if self.visible == "softmax":
            K = self.n_levels if self.n_levels is not None else max(2, int(data.vals.max()) + 1)
            counts = np.ones((n_visible, K))
            np.add.at(counts, (data.indices, data.vals.astype(np.int64)), 1.0)
            b = np.log(counts / counts.sum(axis=1, keepdims=True))
            W = rng.normal(0.0, self.init_scale, size=(n_visible, K, nh))
        else:
            mean = np.zeros(n_visible)
            np.add.at(mean, data.indices, data.vals.astype(np.float64))
            mean /= data.n_rows
            if self.visible == "bernoulli":
                p = np.clip(mean, 1e-3, 1 - 1e-3)
                b = np.log(p / (1 - p))
            else:
                b = mean
            W = rng.normal(0.0, self.init_scale, size=(n_visible, nh))
        with np.errstate(over="ignore"):
            W = np.ascontiguousarray(W, dtype=dt)
        if not np.all(np.isfinite(W)):
            raise ValueError(
                f"init_scale={self.init_scale:g} draws initial weights beyond the range of the "
                f"parameter dtype {dt} (|w| <= {float(np.finfo(dt).max):.3g}); use a smaller "
                "init_scale"
            )
        self.n_visible_ = n_visible
        self.n_levels_ = K
        self._fitted_visible = self.visible
        self.sigma_ = sigma if sigma is not None else np.ones(n_visible, dtype=dt)
        self.weights_ = W
        self.visible_bias_ = np.ascontiguousarray(b, dtype=dt)
        self.hidden_bias_ = np.zeros(nh, dtype=dt)
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
        if self.weights_ is None:
            self._rng = seed_generator(self.random_state)
            data = self._check_X(X, fitting=True)
            self._init_params(data, data.n_cols, self._rng)
        else:
            self._check_matches_fit("partial_fit")
            data = self._check_X(X, training=True)
        return self._run(data, cfg, None)

    def _run(self, data: _Rows, cfg: TrainerConfig, validation: _Rows | None) -> RBM:
        rng = self._rng
        params = self._params()
        dt = self._param_dtype
        nh = self.weights_.shape[-1]
        off0 = self._no_offset()
        valid = validation  # checked by fit
        if self.persistent:
            if self._family == "softmax":
                chains = data.vals.copy()
            else:
                if self._chains is None or self._chains.shape[0] != cfg.batch_size:
                    start = rng.integers(0, data.n_rows, size=cfg.batch_size)
                    self._chains = self._dense(data.subset(start)).astype(dt)
                chains = self._chains
        else:
            chains = (
                np.zeros(0, dtype=np.int8)
                if self._family == "softmax"
                else np.zeros((0, self.n_visible_), dtype=dt)
            )
        persistent = bool(self.persistent)

        def step(rows: np.ndarray, k: int, rng_: np.random.Generator):
            W, b, c = self.weights_, self.visible_bias_, self.hidden_bias_
            states = row_states(rng_, len(rows))
            gW = np.empty_like(W)
            gb = np.empty_like(b)
            gc = np.empty_like(c)
            h_diff = np.empty((len(rows), nh), dtype=dt)
            if self._family == "softmax":
                res = _soft.softmax_cd(
                    data.indptr, data.indices, data.vals, rows, W, b, c, off0, k, states,
                    chains, persistent, gW, gb, gc, h_diff,
                )  # fmt: skip
            else:
                res = _bern.cd(
                    data.indptr, data.indices, data.vals, rows, W, b, c, self.sigma_,
                    _FAMILY[self._family], off0, k, states, chains, persistent, gW, gb, gc,
                    h_diff,
                )  # fmt: skip
            return {"W": gW, "b": gb, "c": gc}, {"recon_error": res[0], "count": res[1]}

        monitor = data.subset(np.sort(rng.permutation(data.n_rows)[:_MONITOR_ROWS]))
        flip = rng.integers(0, self.n_visible_, size=monitor.n_rows)

        def evaluate(epoch: int) -> dict[str, float]:
            f_train = float(np.mean(self._free_energy_rows(monitor)))
            out = {"free_energy": f_train}
            if self._family == "bernoulli":
                out["pseudo_log_likelihood"] = self._pseudo_ll(monitor, flip)
            if valid is not None:
                out["free_energy_gap"] = float(np.mean(self._free_energy_rows(valid))) - f_train
            return out

        if self._velocity is None:
            self._velocity = {}
        try:
            with num_threads(self.num_threads):
                result = train(
                    params,
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

    def _pseudo_ll(self, monitor: _Rows, flip: np.ndarray) -> float:
        """Stochastic pseudo-log-likelihood: ``n_visible * log sigmoid(F(v~) - F(v))``."""
        V = self._dense(monitor).astype(np.float64)
        Vf = V.copy()
        idx = np.arange(len(V))
        Vf[idx, flip] = 1.0 - Vf[idx, flip]
        args = (self.weights_, self.visible_bias_, self.hidden_bias_)
        f = _exact.free_energy("bernoulli", V, *args)
        ff = _exact.free_energy("bernoulli", Vf, *args)
        return float(np.mean(-self.n_visible_ * np.logaddexp(0.0, -(ff - f))))

    def _dense(self, rows: _Rows) -> np.ndarray:
        out = np.zeros((rows.n_rows, self.n_visible_), dtype=np.float64)
        r = np.repeat(np.arange(rows.n_rows), np.diff(rows.indptr))
        out[r, rows.indices] = rows.vals
        return out

    # ------------------------------------------------------------------ inference

    def _all_rows(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def _free_energy_rows(self, d: _Rows) -> np.ndarray:
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

    def _hidden_rows(self, d: _Rows) -> np.ndarray:
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

        Returns
        -------
        ndarray, shape (n_samples, n_hidden), the model's dtype
        """
        self._check_ready("transform")
        d = self._check_X(X)
        with num_threads(self.num_threads):
            return self._hidden_rows(d)

    def free_energy(self, X: Any) -> np.ndarray:
        """Free energy ``F(v) = -log sum_h exp(-E(v, h))`` of each row.

        For softmax rows that observe a subset of the groups, ``F`` is that of the row's RBM
        over its observed groups.

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
                indptr = np.arange(0, (n + 1) * nv, nv, dtype=np.int64)
                indices = np.tile(np.arange(nv, dtype=np.int32), n)
                probs = _soft.softmax_visible_probs(
                    indptr, indices, self._all_rows(n), self.weights_, self.visible_bias_, hp
                )
                return probs.reshape(n, nv, self.n_levels_)
            return _bern.visible_mean(
                hp, self.weights_, self.visible_bias_, self.sigma_, _FAMILY[self._family]
            )

    def _gibbs_rows(self, d: _Rows, steps: int) -> np.ndarray:
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

        Returns
        -------
        ndarray, shape (n_samples, n_visible)
        """
        self._check_ready("sample")
        n_samples = check_int("n_samples", n_samples, 1)
        steps = check_int("steps", steps, 1)
        nv, rng = self.n_visible_, self._rng
        n = n_samples
        indptr = np.arange(0, (n + 1) * nv, nv, dtype=np.int64)
        indices = np.tile(np.arange(nv, dtype=np.int32), n)
        if self._family == "softmax":
            vals = rng.integers(0, self.n_levels_, size=n * nv).astype(np.int8)
        elif self._family == "bernoulli":
            vals = (rng.random(n * nv) < 0.5).astype(self._param_dtype)
        else:
            z = rng.standard_normal((n, nv))
            vals = (self.visible_bias_ + self.sigma_ * z).astype(self._param_dtype).ravel()
        with num_threads(self.num_threads):
            return self._gibbs_rows(_Rows(indptr, indices, vals, nv), steps)

    # ------------------------------------------------------------------ exact (tiny models)

    def _exact_args(self) -> tuple:
        sigma = self.sigma_ if self._family == "gaussian" else None
        return self.weights_, self.visible_bias_, self.hidden_bias_, sigma

    def log_partition(self, max_states: int = _exact.MAX_STATES) -> float:
        """Exact ``log Z`` by enumeration (tiny models only).

        Sums over the hidden states or the visible states, whichever are fewer (Gaussian:
        hidden states, the visible integral in closed form). Softmax: the RBM over all groups.

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
        mask = np.zeros((d.n_rows, self.n_visible_), dtype=bool)
        r = np.repeat(np.arange(d.n_rows), np.diff(d.indptr))
        mask[r, d.indices] = True
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
        arrays = {
            "weights": self.weights_,
            "visible_bias": self.visible_bias_,
            "hidden_bias": self.hidden_bias_,
            "sigma": self.sigma_,  # the fitted sigma_
        }
        # The sigma argument as given (None, a number or an array), apart from sigma_, so a
        # loaded model refits like the saved one (sigma=None fits data of any width).
        sigma_param = None
        if self.sigma is not None and np.ndim(self.sigma) == 0:
            sigma_param = float(self.sigma)
        elif self.sigma is not None:
            arrays["sigma_param"] = np.asarray(self.sigma)
        # Training state, so partial_fit (and sample) after load continue where they stopped.
        for name, v in (self._velocity or {}).items():
            arrays[f"velocity_{name}"] = v
        if self._chains is not None:
            arrays["chains"] = self._chains
        meta = {
            "params": {
                "n_hidden": int(self.n_hidden),
                "visible": self.visible,
                "n_levels": self.n_levels,
                "sigma": sigma_param,
                "cd_steps": cd_schedule_json(self.cd_steps),
                "persistent": bool(self.persistent),
                "learning_rate": float(self.learning_rate),
                "momentum": float(self.momentum),
                "weight_decay": float(self.weight_decay),
                "batch_size": int(self.batch_size),
                "n_epochs": int(self.n_epochs),
                "init_scale": float(self.init_scale),
                "dtype": str(np.dtype(self.dtype)),
                # an int, a SeedSequence (as a dict) or None (also for a Generator, whose
                # position is the "rng_state" below)
                "random_state": seed_to_json(self.random_state),
                "num_threads": int(self.num_threads),
            },
            "n_visible": int(self.n_visible_),
            "n_levels_": self.n_levels_,
            "history": self.history_,
            "rng_state": generator_to_json(self._rng),
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> RBM:
        params = dict(meta["params"])
        if isinstance(params["cd_steps"], list):
            params["cd_steps"] = [tuple(p) for p in params["cd_steps"]]
        # Files written before SeedSequences were saved hold an int or None.
        params["random_state"] = seed_from_json(params.get("random_state"))
        old_file = "sigma" not in params  # written before the sigma argument was saved
        params.pop("sigma", None)
        model = cls(**params)
        if "sigma_param" in arrays:
            model.sigma = arrays["sigma_param"]
        elif not old_file:
            model.sigma = meta["params"]["sigma"]
        elif model.visible == "gaussian":
            model.sigma = _sigma_argument(np.asarray(arrays["sigma"]))
        try:
            model._config(1)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"the model's arguments are invalid: {exc}") from None
        model._restore_arrays(arrays, meta)
        model.history_ = list(meta.get("history", []))
        model.interrupted_ = False
        # Files written before the training state was saved restart the random stream at the
        # seed and momentum at zero.
        rng_state = meta.get("rng_state")
        if rng_state is None:
            model._rng = seed_generator(model.random_state)
        else:
            model._rng = generator_from_json(rng_state)
        return model

    def _restore_arrays(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Check a model file's arrays against its metadata and each other, then adopt them.

        Raises
        ------
        ModelFileError
            Naming the array (or metadata field) that has the wrong shape, dtype or values.
        """
        dt = self._dtype
        n_vis = check_int("n_visible", meta["n_visible"], 1)
        K = meta["n_levels_"]
        if self.visible == "softmax":
            K = check_int("n_levels_", K, 2, 127)
            if self.n_levels is not None and self.n_levels != K:
                raise ModelFileError(f"n_levels is {self.n_levels} but n_levels_ is {K}")
        elif K is not None:
            raise ModelFileError(f"n_levels_ is {K!r}, expected None for visible={self.visible!r}")
        nl = () if K is None else (K,)
        ln = () if K is None else ("n_levels",)
        H = self.n_hidden
        W = check_file_array(
            arrays, "weights", (n_vis, *nl, H), dims=("n_visible", *ln, "n_hidden"), dtype=dt,
            finite=True,
        )  # fmt: skip
        b = check_file_array(
            arrays, "visible_bias", (n_vis, *nl), dims=("n_visible", *ln), dtype=dt, finite=True
        )
        c = check_file_array(arrays, "hidden_bias", (H,), dims=("n_hidden",), dtype=dt, finite=True)
        sigma = check_file_array(
            arrays, "sigma", (n_vis,), dims=("n_visible",), dtype=dt, finite=True
        )
        with np.errstate(divide="ignore", over="ignore"):
            if not (np.all(sigma > 0) and np.all(np.isfinite(1.0 / sigma))):
                raise ModelFileError("array 'sigma' must be > 0 with a finite reciprocal")
        fitted = {"W": W, "b": b, "c": c}
        velocity = {}
        for n, p in fitted.items():
            if f"velocity_{n}" in arrays:
                v = check_file_array(arrays, f"velocity_{n}", p.shape, kind="f", finite=True)
                velocity[n] = np.ascontiguousarray(v, dtype=dt)
        chains = None
        if "chains" in arrays:
            chains = check_file_array(arrays, "chains", (None, n_vis), kind="f", finite=True)
            chains = np.ascontiguousarray(chains, dtype=dt)
        self.weights_, self.visible_bias_, self.hidden_bias_, self.sigma_ = W, b, c, sigma
        self._fitted_visible = self.visible
        self.n_visible_, self.n_levels_ = n_vis, K
        self._velocity = velocity or None
        self._chains = chains
        try:  # e.g. a sigma argument that is not the fitted sigma_
            self._check_matches_fit("load")
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None


def _sigma_argument(sigma: np.ndarray) -> float | np.ndarray | None:
    """A ``sigma`` argument giving the fitted ``sigma_`` (files without the argument saved).

    None when every unit has sigma 1 (the default), a number when all units share one, else
    the array itself (which then fixes the number of visible units of a refit).
    """
    if sigma.ndim == 1 and sigma.size and np.all(sigma == sigma[0]):
        return None if sigma[0] == 1 else float(sigma[0])
    return sigma


__all__ = ["RBM"]
