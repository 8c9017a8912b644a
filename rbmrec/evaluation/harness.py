"""One-call comparison of recommenders on the same split: fit, predict, recommend, score.

:func:`evaluate` fits every model on ``split.train`` (passing ``validation=split.validation``
to models whose ``fit`` accepts it), scores rating predictions on every held-out rating
(models with ``predict``; with ``predict_proba`` also the negative log-likelihood of their
predictive distribution) and top-``K`` lists with the training items excluded (models with
``recommend``) for every user with at least one relevant held-out item, and returns one
polars row per model. :func:`cross_validate` repeats it over folds; :func:`grid_search`
tunes a model on a validation part carved from the training data (never the test part).
Splitting itself (random, k-fold, official folds, validation carving) is the data layer's
job: :mod:`rbmrec.data.splits`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from rbmrec.data.splits import Split
from rbmrec.errors import DataError
from rbmrec.evaluation.metrics import (
    RANKING_METRICS,
    check_threshold,
    ranking_metrics,
    relevant_items,
)
from rbmrec.evaluation.report_rows import (
    LOWER_IS_BETTER,
    METRIC_COLUMNS,
    SCHEMA,
    TIME_COLUMNS,
    model_params,
    model_seed,
    new_row,
    rating_scores,
    summary,
)
from rbmrec.models._estimator import accepts_validation
from rbmrec.models._sparse import repeated_entry
from rbmrec.models.validation import check_sparse_structure

__all__ = [
    "METRIC_COLUMNS",
    "cross_validate",
    "evaluate",
    "grid_search",
    "recommend_all",
]

logger = logging.getLogger(__name__)


def _check_split(split: Any) -> Split:
    """``split`` after every check the harness needs before converting or fitting anything.

    Raises
    ------
    TypeError
        Not a :class:`~rbmrec.data.Split`, or a train/test part that is not scipy sparse.
    ValueError
        Parts of different shapes.
    DataError
        Malformed index arrays, a (user, item) pair stored twice in one part, or parts
        sharing (user, item) pairs (train/test, train/validation, test/validation).
    """
    if not isinstance(split, Split):
        raise TypeError(f"split must be an rbmrec.data.Split, got {type(split).__name__}")
    for name in ("train", "test"):
        part = getattr(split, name)
        if not sp.issparse(part):
            raise TypeError(f"split.{name} must be a scipy sparse matrix")
        check_sparse_structure(f"split.{name}", part)
    if split.validation is not None and sp.issparse(split.validation):
        check_sparse_structure("split.validation", split.validation)
    # Looked for in the parts as given: the CSR conversions below would add repeated
    # entries up (2 and 3 stars becoming one relevant 5) before anything could see them.
    for name in ("train", "test", "validation"):
        part = getattr(split, name)
        if part is None or not sp.issparse(part):
            continue
        rep = repeated_entry(part)
        if rep is not None:
            raise DataError(
                f"split.{name} stores (user {rep.row}, item {rep.col}) {rep.count} times "
                f"({rep.extra} repeated entries in all); scipy would add the ratings up: "
                "merge or drop the duplicates first"
            )
    if split.train.shape != split.test.shape:
        raise ValueError(
            f"split.train has shape {split.train.shape} but split.test has {split.test.shape}"
        )
    if split.validation is not None and sp.issparse(split.validation):
        if split.validation.shape != split.train.shape:
            raise ValueError(
                f"split.train has shape {split.train.shape} but split.validation has "
                f"{split.validation.shape}"
            )
    # A held-out rating that is also a training rating is excluded from the model's lists
    # (training items are filtered) and so can never be a hit: the ranking metrics would be
    # silently wrong (all 0 when test == train). Validation ratings that are test ratings
    # would tune (early stopping, grid_search) on the test part.
    keys = {
        name: _pair_keys(part)
        for name in ("train", "test", "validation")
        if (part := getattr(split, name)) is not None and sp.issparse(part)
    }
    for first, second in (("train", "test"), ("train", "validation"), ("test", "validation")):
        if first not in keys or second not in keys:
            continue
        shared = np.intersect1d(keys[first], keys[second], assume_unique=True).size
        if shared:
            raise DataError(
                f"split.{first} and split.{second} share {shared} (user, item) pairs: the "
                f"{second} part must be disjoint from the {first} part"
            )
    return split


def _pair_keys(m: sp.spmatrix) -> np.ndarray:
    """Sorted unique ``row * n_cols + col`` keys of the stored entries of ``m`` (int64)."""
    coo = sp.coo_matrix(m)
    return np.unique(coo.row.astype(np.int64) * m.shape[1] + coo.col.astype(np.int64))


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool | np.bool_) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size must be a positive int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


#: Constructor arguments a warm-up clone overrides (when the model has them): one epoch
#: loads every kernel a fit uses, a clone must not show progress or call the user's
#: callbacks, and it must not advance a Generator or RandomState it would share with the
#: model (no kernel depends on the seed).
_WARM_OVERRIDES: dict[str, Any] = {
    "n_epochs": 1,
    "progress": False,
    "callbacks": (),
    "random_state": 0,
}
#: Size of the warm-up data: the first users with ratings, and the first items they rated.
_WARM_USERS = 16
_WARM_ITEMS = 64


def _warm_up(
    models: Iterable[Any],
    train: sp.csr_matrix,
    validation: sp.csr_matrix | None,
    K: int,
    batch_size: int,
) -> None:
    """Pay one-off loading costs before anything is timed, so timings do not depend on
    model order.

    - Loads the top-N kernel (Numba's cache load or compile: 50-180x a model's recommend
      time on ML-100K) for both score dtypes the recommenders pass it.
    - Imports ``implicit`` when one of its wrappers is among ``models`` (else the first
      wrapper's fit pays it).
    - For every model with ``get_params`` (rbmrec's RBMs; scikit-learn convention), and every
      member of a model with a ``members`` sequence of ``(name, model)`` pairs
      (:class:`~rbmrec.models.blend.BlendedRatingModel`): builds an unfitted clone,
      ``type(model)(**model.get_params())`` with :data:`_WARM_OVERRIDES` applied, and runs
      ``fit`` (with a validation part when ``validation`` is given and ``fit`` takes one),
      ``predict`` and ``recommend`` on a few rows and columns of ``train``, the way
      :func:`evaluate` calls them. That loads (or compiles) every Numba kernel the model's
      settings use, starts Numba's thread pool and BLAS's controls. One clone per distinct
      class and settings; it costs tens of milliseconds per RBM with a warm Numba cache (the
      first run without a cache pays the compilation here instead).

    A model without ``get_params``, or one the clone cannot be built or fitted for (logged
    at DEBUG), is not warmed beyond the first two points: one-off costs inside its own code
    still land in its first timed calls. The models themselves are never touched.
    """
    from rbmrec.evaluation import baselines

    exclude = sp.csr_matrix(np.array([[1.0, 0.0]]))
    for dtype in (np.float64, np.float32):
        baselines.top_n(np.zeros((1, 2), dtype=dtype), 1, exclude)
    models = list(models)
    if any(isinstance(m, baselines._ImplicitWrapper) for m in models):
        _, limiter = baselines._import_implicit()
        limiter.restore_original_limits()
    todo = []
    for model in models:
        members = getattr(model, "members", None)
        if not callable(getattr(model, "get_params", None)) and isinstance(members, Sequence):
            todo += [m[1] for m in members if isinstance(m, tuple) and len(m) == 2]
        else:
            todo.append(model)
    seen: set[str] = set()
    sample = None
    for model in todo:
        clone = _warm_clone(model)
        if clone is None:
            continue
        key = f"{type(model).__module__}.{type(model).__qualname__}{clone.get_params()!r}"
        if key in seen:
            continue
        seen.add(key)
        if sample is None:
            sample = _warm_sample(train, validation)
        logger.debug("warm-up: a clone of %s on %s training ratings", type(model).__name__,
                     sample[0].shape)  # fmt: skip
        quiet = logging.getLogger("rbmrec")
        level = quiet.level
        try:
            # The real calls repeat any warning; a clone's would only be noise, and so would
            # its training log ("epoch 1: ..."), indistinguishable from the real model's.
            quiet.setLevel(logging.ERROR)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _exercise(clone, *sample, K, batch_size)
        except Exception:  # the real call raises (and names the model) if it is a real error
            logger.debug("warm-up of a clone of %r failed", model, exc_info=True)
        finally:
            quiet.setLevel(level)


def _warm_clone(model: Any) -> Any:
    """An unfitted copy of ``model`` with :data:`_WARM_OVERRIDES`, or None if it has no
    ``get_params`` or cannot be rebuilt from it. The class is that of the object
    ``get_params`` is bound to, so a wrapper that forwards attributes to a model (as the
    command line's progress wrapper does) is warmed up as the model it wraps."""
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return None
    try:
        params = dict(get_params())
        params.update({k: v for k, v in _WARM_OVERRIDES.items() if k in params})
        clone = type(getattr(get_params, "__self__", model))(**params)
        clone.get_params()
    except Exception:
        logger.debug("could not clone %r for the warm-up", model, exc_info=True)
        return None
    return clone


def _warm_sample(
    train: sp.csr_matrix, validation: sp.csr_matrix | None
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """A few rows and columns of the data: ``(train_part, validation_part or None)``, CSR of
    shape (<= _WARM_USERS, <= _WARM_ITEMS), small whatever the data's size.

    The first :data:`_WARM_USERS` users with training ratings (and validation ratings too,
    when there are any, so that a fit's validation code runs), over the first items they
    rated in training and, for a quarter of the columns, in validation.
    """
    users = np.flatnonzero(np.diff(train.indptr))
    if validation is not None and validation.nnz:  # (CSR already: _evaluate converts it)
        with_both = users[np.diff(validation.indptr)[users] > 0]
        users = with_both if with_both.size else users
    else:
        validation = None
    users = users[:_WARM_USERS]
    rows = train[users]
    items = np.unique(rows.indices)
    if validation is not None:
        val_rows = validation[users]
        n_val = _WARM_ITEMS // 4
        items = np.union1d(items[: _WARM_ITEMS - n_val], np.unique(val_rows.indices)[:n_val])
    items = items[:_WARM_ITEMS]
    part = sp.csr_matrix(rows[:, items])
    part.sort_indices()
    val = None
    if validation is not None:
        val = sp.csr_matrix(val_rows[:, items])
        val.sort_indices()
    return part, val


def _exercise(
    model: Any,
    train: sp.csr_matrix,
    validation: sp.csr_matrix | None,
    K: int,
    batch_size: int,
) -> None:
    """``fit``, ``predict`` and ``recommend`` ``model`` on ``train`` as :func:`evaluate` does."""
    if validation is not None and validation.nnz and accepts_validation(model.fit):
        model.fit(train, validation=validation)
    else:
        model.fit(train)
    if getattr(model, "interrupted_", False):
        # The clone's trainer took Ctrl-C as "stop training"; for evaluate it means stop.
        raise KeyboardInterrupt
    coo = train.tocoo()
    if hasattr(model, "predict"):
        model.predict(coo.row[:8], coo.col[:8])
    if hasattr(model, "recommend"):
        users = np.flatnonzero(np.diff(train.indptr)).astype(np.int32)[:2]
        recommend_all(model, train, users, K, batch_size)


@contextlib.contextmanager
def _naming(what: str) -> Iterator[None]:
    """Re-raise an exception of the body with ``what`` (e.g. ``"model 'pop' (fit)"``) in
    front of its message: same type, chained to the original with ``from``. A type that
    cannot be built from one message keeps its own message and gets ``what`` as a note."""
    try:
        yield
    except Exception as exc:
        renamed = _renamed(exc, f"{what}: {exc}")
        if renamed is None:
            exc.add_note(f"raised by {what}")
            raise
        raise renamed from exc


#: Exception families whose instances are just a message: renamed by :func:`_naming`.
_PLAIN_ERRORS = (ValueError, TypeError, RuntimeError, LookupError, ArithmeticError, AssertionError)


def _renamed(exc: Exception, message: str) -> Exception | None:
    """``type(exc)(message)`` for an exception that is just a message (one string argument,
    a type of :data:`_PLAIN_ERRORS` whose subclasses up to it define no constructor:
    ValueError, DataError, TrainingDivergedError, ...), else None: other types (OSError's
    errno and filename, StopIteration's value, KeyError's quoting, a user's exception with
    extra arguments) would lose or garble what they carry."""
    cls = type(exc)
    if not issubclass(cls, _PLAIN_ERRORS) or issubclass(cls, UnicodeError | KeyError):
        return None
    for k in cls.__mro__:
        if k in _PLAIN_ERRORS:
            break
        if "__init__" in vars(k) or "__new__" in vars(k):
            return None
    if len(exc.args) != 1 or not isinstance(exc.args[0], str):
        return None
    try:
        return cls(message)
    except Exception:
        return None


def recommend_all(
    model: Any, train: sp.csr_matrix, users: np.ndarray, K: int, batch_size: int = 2048
) -> np.ndarray:
    """Top-``K`` ids for ``users`` with their training items excluded.

    Parameters
    ----------
    model : fitted recommender
    train : scipy.sparse.csr_matrix, shape (n_users, n_items)
    users : ndarray of int, shape (n,)
    K : int
    batch_size : int, default 2048
        Users per ``recommend`` call; a positive int.

    Returns
    -------
    ndarray of int32, shape (n, K)
        ``-1`` in empty slots.

    Raises
    ------
    TypeError, ValueError
        ``batch_size`` is not a positive int (bools refused).
    """
    batch_size = _check_batch_size(batch_size)
    out = np.full((users.size, K), -1, dtype=np.int32)
    for start in range(0, users.size, batch_size):
        batch = users[start : start + batch_size].astype(np.int32)
        ids, _ = model.recommend(batch, train[batch], N=K, filter_already_liked_items=True)
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.shape[0] != batch.size:
            raise ValueError(
                f"{type(model).__name__}.recommend returned ids of shape {ids.shape} for "
                f"{batch.size} users; expected ({batch.size}, {K})"
            )
        width = min(K, ids.shape[1])
        out[start : start + batch.size, :width] = ids[:, :width]
    return out


def evaluate(
    models: Mapping[str, Any],
    split: Split,
    K: int = 10,
    relevance_threshold: float | None = 4.0,
    *,
    fit: bool = True,
    batch_size: int = 2048,
) -> pl.DataFrame:
    """Fit and score several recommenders on one split; one row per model.

    Parameters
    ----------
    models : mapping of str to recommender
        Display name -> model following the rbmrec/implicit protocol (see
        :mod:`rbmrec.evaluation.baselines`). Models with ``predict`` get rating metrics,
        models with ``recommend`` get ranking metrics, models with a predictive
        distribution over rating levels (``predict_proba`` and ``values_``, e.g. a softmax
        :class:`~rbmrec.models.rating.RatingRBM`) also get ``nll``.
    split : rbmrec.data.Split
        ``train`` (fit), ``test`` (score), optional ``validation`` (passed to
        ``fit(train, validation=...)`` when the model's ``fit`` accepts it); scipy sparse
        matrices of one shape (n_users, n_items). No part may store a (user, item) pair
        twice, and the three parts must be pairwise disjoint.
    K : int, default 10
        List length for the ranking metrics.
    relevance_threshold : float or None, default 4.0
        Held-out ratings ``>= relevance_threshold`` are relevant; ``None``: every held-out
        item is (e.g. for 0/1 interaction data).
    fit : bool, default True
        Fit each model first; ``False`` evaluates already fitted models.
    batch_size : int, default 2048
        Users per ``recommend`` call; a positive int.

    Returns
    -------
    polars.DataFrame
        Columns ``model, split, rmse, mae, nll, precision, recall, ndcg, map, mrr,
        hit_rate, coverage, fit_seconds, predict_seconds, recommend_seconds,
        nll_excluded, n_users`` (users with a relevant held-out item, those ranked),
        ``n_test_ratings, K, relevance_threshold, seed`` (the model's int ``random_state``
        or null) and ``params``. Metrics a model cannot produce are null. ``nll`` is the
        mean negative log-likelihood (nats) of the held-out ratings under
        ``predict_proba`` (:func:`~rbmrec.evaluation.metrics.mean_nll`); a held-out value
        that is not one of the model's training levels has no probability, is left out of
        ``nll`` and counted in ``nll_excluded`` (with a logged warning naming the count).

    Raises
    ------
    DataError
        ``split.test`` has no ratings; a part stores a (user, item) pair twice; or two parts
        share (user, item) pairs (the message says which parts and how many).
    TypeError, ValueError
        Bad ``K``, ``relevance_threshold`` or ``batch_size``, named in the message.
    Exception
        An error raised by a model's ``fit``, ``predict`` or ``recommend``, or by the
        metrics on what they returned, is re-raised with the same type and a message
        starting ``model '<name>' (<step>):``, chained (``from``) to the original. The rows
        of the models before it are logged (INFO) but not returned.

    Warns
    -----
    UserWarning
        No held-out rating is ``>= relevance_threshold`` while a model has ``recommend``:
        every ranking metric is NaN (the message names the threshold and what to pass
        instead); ``rmse`` and ``mae`` are still computed.

    Notes
    -----
    Times are wall-clock seconds measured after a warm-up that loads the top-N kernel,
    imports ``implicit`` when one of its wrappers is among the models, and runs a clone of
    every model with ``get_params`` (rbmrec's RBMs, also as members of a
    :class:`~rbmrec.models.blend.BlendedRatingModel`) on a few rows of ``split.train``, so
    that Numba's kernel loading lands in none of the timed calls and the times do not
    depend on the models' order. Models without ``get_params`` are not cloned: one-off
    costs inside their own code (not the top-N kernel's nor ``implicit``'s import) still
    land in their first timed call.

    Thread counts differ between model families unless set: the ``implicit`` wrappers
    default to ``num_threads=1`` (reproducible results) and rbmrec's RBMs to
    ``num_threads=0`` (all of Numba's threads), so ``fit_seconds`` compare one thread with
    every core by default. Set ``num_threads`` on both for a like-for-like comparison; the
    setting is in the ``params`` column.
    """
    return _evaluate(models, split, K, relevance_threshold, fit=fit, batch_size=batch_size)


def _evaluate(
    models: Mapping[str, Any],
    split: Split,
    K: int,
    relevance_threshold: float | None,
    *,
    fit: bool = True,
    batch_size: int = 2048,
    test_name: str = "split.test",
    label: Callable[[str], str] | None = None,
    no_relevant: str = "warn",
) -> pl.DataFrame:
    """:func:`evaluate`, with ``test_name`` naming the scored part, ``label(name)`` naming
    the model in error messages (default ``model '<name>'``), and ``no_relevant`` ("warn" or
    "raise") saying what to do when no held-out rating reaches the threshold."""
    split = _check_split(split)
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping of name -> model")
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    relevance_threshold = check_threshold(relevance_threshold, "relevance_threshold")
    batch_size = _check_batch_size(batch_size)
    for name, model in models.items():
        if not (hasattr(model, "predict") or hasattr(model, "recommend")):
            raise TypeError(f"model {name!r} has neither predict nor recommend")
    train = sp.csr_matrix(split.train)
    test = sp.csr_matrix(split.test)
    if test.nnz == 0:
        raise DataError(f"{test_name} has no ratings: there is nothing to score the models on")
    relevant = relevant_items(test, relevance_threshold)
    users = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int32)
    if users.size == 0 and any(hasattr(m, "recommend") for m in models.values()):
        _no_relevant(test, relevance_threshold, test_name, no_relevant)
    test_coo = test.tocoo()
    validation = split.validation  # passed to the models as given
    warm_validation = sp.csr_matrix(validation) if sp.issparse(validation) else None
    _warm_up(models.values(), train, warm_validation, int(K), batch_size)
    rows = []
    for name, model in models.items():
        row = new_row(name, split.name, K, relevance_threshold, test.nnz)
        who = f"model {name!r}" if label is None else label(name)
        if fit:
            with _naming(f"{who} (fit)"):
                t0 = time.perf_counter()
                if validation is not None and accepts_validation(model.fit):
                    model.fit(train, validation=validation)
                else:
                    model.fit(train)
                row["fit_seconds"] = time.perf_counter() - t0
        row.update(_scores(model, who, train, test_coo, users, relevant, int(K), batch_size))
        logger.info("%s on %s: %s", name, split.name, summary(row))
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)


def _no_relevant(
    test: sp.csr_matrix, threshold: float | None, test_name: str, no_relevant: str
) -> None:
    """Warn (or raise, ``no_relevant="raise"``) that no held-out rating is relevant, naming
    the threshold and the range of the ratings; only a threshold can cause it (None keeps
    every stored rating). The rating metrics stay valid."""
    low, high = float(test.data.min()), float(test.data.max())
    values = f"all {low:g}" if low == high else f"between {low:g} and {high:g}"
    message = (
        f"no rating of {test_name} is >= relevance_threshold={threshold!r} "
        f"(its {test.nnz} ratings are {values}), so every ranking metric is NaN; "
        f"pass relevance_threshold <= {high:g}, or relevance_threshold=None to count "
        "every held-out item as relevant (e.g. for 0/1 interaction data)"
    )
    if no_relevant == "raise":
        raise DataError(message)
    warnings.warn(message, UserWarning, stacklevel=4)


def _scores(
    model: Any,
    who: str,
    train: sp.csr_matrix,
    test_coo: sp.coo_matrix,
    users: np.ndarray,
    relevant: sp.csr_matrix,
    K: int,
    batch_size: int,
) -> dict[str, Any]:
    """A fitted model's row entries: rating metrics (``predict``), ranking metrics and
    recommend time (``recommend``; ``users`` those with a relevant held-out item), its seed
    and parameters. ``who`` names the model in errors (:func:`_naming`)."""
    out: dict[str, Any] = {}
    if hasattr(model, "predict"):
        with _naming(f"{who} (predict)"):
            out.update(rating_scores(model, test_coo))
    if hasattr(model, "recommend"):
        with _naming(f"{who} (recommend)"):
            t0 = time.perf_counter()
            ids = recommend_all(model, train, users, K, batch_size)
            out["recommend_seconds"] = time.perf_counter() - t0
            m = ranking_metrics(ids, relevant[users], K, n_items=train.shape[1])
        out.update({k: m[k] for k in RANKING_METRICS})
        out["n_users"] = m["n_users"]
    out["seed"] = model_seed(model)
    out["params"] = model_params(model)
    return out


def cross_validate(
    make_models: Callable[[], Mapping[str, Any]],
    splits: Sequence[Split],
    K: int = 10,
    relevance_threshold: float | None = 4.0,
    **kwargs: Any,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Evaluate fresh models on each fold; per-fold rows and mean/std per model.

    Parameters
    ----------
    make_models : callable returning a mapping of str to recommender
        Called once per fold so no fitted state leaks between folds.
    splits : sequence of rbmrec.data.Split
        Predefined folds (e.g. :func:`rbmrec.data.movielens_folds`, ML-100K ``u1..u5``) or
        k random folds (:func:`rbmrec.data.kfold`).
    K, relevance_threshold :
        As in :func:`evaluate`.
    **kwargs :
        Passed to :func:`evaluate`.

    Returns
    -------
    folds : polars.DataFrame
        :func:`evaluate`'s rows for every fold, plus a ``fold`` column (0-based).
    summary : polars.DataFrame
        One row per model: ``n_folds`` and ``<metric>_mean``, ``<metric>_std`` (sample
        standard deviation, ``ddof=1``; null for one fold) for every metric and time column.

    Raises
    ------
    Exception
        What :func:`evaluate` raises on a fold (e.g. a DataError for an empty test part or
        one without a relevant rating), same type, the message starting with
        ``fold <i> (<split name>):`` and chained to the original.
    """
    if not callable(make_models):
        raise TypeError("make_models must be a callable returning a mapping of models")
    splits = list(splits)
    if not splits:
        raise ValueError("splits is empty: need at least one fold")
    frames = []
    for fold, split in enumerate(splits):
        with _naming(f"fold {fold} ({getattr(split, 'name', split)!s})"):
            df = evaluate(make_models(), split, K, relevance_threshold, **kwargs)
        frames.append(df.with_columns(pl.lit(fold, dtype=pl.Int64).alias("fold")))
    folds = pl.concat(frames)
    value_cols = [*METRIC_COLUMNS, *TIME_COLUMNS]
    aggs = [pl.len().alias("n_folds")]
    for c in value_cols:
        aggs += [pl.col(c).mean().alias(f"{c}_mean"), pl.col(c).std(ddof=1).alias(f"{c}_std")]
    summary = folds.group_by("model", maintain_order=True).agg(aggs)
    summary = summary.with_columns(pl.col("n_folds").cast(pl.Int64))
    return folds, summary


def grid_search(
    factory: Callable[..., Any],
    grid: Mapping[str, Iterable[Any]],
    split: Split,
    K: int = 10,
    relevance_threshold: float | None = 4.0,
    metric: str = "ndcg",
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Pick hyperparameters on a validation part carved from ``split.train``.

    The test part is never used: each candidate is fit on ``train`` minus validation and
    scored on the validation ratings (``split.validation`` when present, else a random
    ``validation_fraction`` of the training ratings moved out by
    :func:`rbmrec.data.carve_validation`). Refit the winner on the full ``split.train`` yourself and
    report it on the test part.

    Parameters
    ----------
    factory : callable
        ``factory(**params)`` builds an unfitted model.
    grid : mapping of str to iterable
        Candidate values per parameter; every combination is tried.
    split : rbmrec.data.Split
    K, relevance_threshold :
        As in :func:`evaluate` (used on the validation part).
    metric : str, default "ndcg"
        Column of :func:`evaluate` to maximise (``rmse``/``mae``/``nll`` are minimised).
    validation_fraction : float, default 0.1
    seed : int, default 0
        Seed of the carve.

    Returns
    -------
    best : dict
        Winning parameters.
    results : polars.DataFrame
        One row per candidate: the parameters (as strings in ``params``) and every metric.

    Raises
    ------
    TypeError
        ``grid`` is not a mapping, or one of its values is not a collection of candidates
        (a scalar or a string: wrap a single value in a list).
    ValueError
        Unknown ``metric``, an empty ``grid`` or candidate list, or no candidate with a
        finite ``metric``.
    DataError
        As :func:`evaluate`, for the validation part (e.g. it has no rating
        ``>= relevance_threshold``).
    Exception
        An error raised by ``factory(**params)`` or by a candidate's ``fit``, ``predict`` or
        ``recommend``: same type, the message starting with
        ``grid_search parameters {...}`` (the failing set) and chained to the original.
    """
    candidates = _candidates(grid, metric)
    tuning = _tuning_split(_check_split(split), validation_fraction, seed)
    frames = []
    for params in candidates:
        who = f"grid_search parameters {params!r}"
        with _naming(f"{who} (factory)"):
            model = factory(**params)
        df = _evaluate(
            {repr(params): model},
            tuning,
            K,
            relevance_threshold,
            test_name="the validation part",
            label=lambda _name, who=who: who,
            # A search on a ranking metric that is NaN for every candidate is meaningless.
            no_relevant="warn" if metric in ("rmse", "mae") else "raise",
        )
        frames.append(df)
    results = pl.concat(frames)
    return candidates[_best(results, metric)], results


def _candidates(grid: Any, metric: str) -> list[dict[str, Any]]:
    """Every combination of the values of ``grid``, as parameter dicts, after checking
    ``metric`` and ``grid`` (see :func:`grid_search`'s Raises)."""
    if metric not in METRIC_COLUMNS:
        raise ValueError(f"metric must be one of {METRIC_COLUMNS}, got {metric!r}")
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a mapping of parameter name -> list of values, got {type(grid).__name__}"
        )
    keys = list(grid)
    for k in keys:
        v = grid[k]
        if isinstance(v, str | bytes) or not isinstance(v, Iterable):
            raise TypeError(
                f"grid[{k!r}] must be a list of candidate values, got {type(v).__name__} "
                f"{v!r}; for a single value write [{v!r}]"
            )
    values = [list(grid[k]) for k in keys]
    if not keys or any(len(v) == 0 for v in values):
        raise ValueError("grid must map each parameter name to a non-empty list of values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def _tuning_split(split: Split, validation_fraction: float, seed: int) -> Split:
    """Train minus validation, and validation as the scored part: ``split.validation`` when
    present, else a fraction of ``split.train`` carved out with ``seed``."""
    if split.validation is not None:
        tune_train, tune_val = split.train, split.validation
    else:
        from rbmrec.data.splits import carve_validation

        carved = carve_validation(split, validation_fraction, seed)
        tune_train, tune_val = carved.train, carved.validation
    return Split(tune_train, tune_val, None, name=f"{split.name}-tuning", info=split.info)


def _best(results: pl.DataFrame, metric: str) -> int:
    """Row of the best ``metric`` (lowest ``rmse``/``mae``/``nll``, else highest; NaN never
    wins).

    Raises
    ------
    ValueError
        No row has a finite ``metric``.
    """
    scores = results[metric].to_numpy().astype(np.float64)
    lower_is_better = metric in LOWER_IS_BETTER
    scores = np.where(np.isnan(scores), np.inf if lower_is_better else -np.inf, scores)
    best_i = int(np.argmin(scores) if lower_is_better else np.argmax(scores))
    if not math.isfinite(scores[best_i]):
        raise ValueError(f"no candidate produced a finite {metric} on the validation part")
    return best_i
