"""What every estimator of rbmrec.models shares besides input validation: scikit-learn's
``get_params``/``set_params`` (:class:`ParamsMixin`), the automatic mini-batch size, the
``validation`` keyword probe, Numba and BLAS thread control, and seed handling.

Input checks live in :mod:`rbmrec.models.validation`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numba
import numpy as np


def epoch_batch(batch_size: Any, n_rows: int, default: int, min_updates: int) -> Any:
    """Mini-batch size for ``n_rows`` training rows; ``batch_size=None`` means "automatic".

    Automatic: ``default``, or ``ceil(n_rows / min_updates)`` when that is smaller, so every
    epoch makes at least ``min_updates`` parameter updates. Learning-rate schedules and early
    stopping count epochs; on small data a fixed batch leaves only a handful of updates per
    epoch, and the rate decays before training has left its initial plateau. An explicit
    ``batch_size`` is returned unchanged (the trainer validates it).
    """
    if batch_size is not None:
        return batch_size
    return max(1, min(default, -(-int(n_rows) // min_updates)))


class ParamsMixin:
    """``get_params``, ``set_params`` and a repr from the class's ``_PARAMS`` (scikit-learn's
    conventions): ``type(m)(**m.get_params())`` is an unfitted model with the same settings.

    A subclass lists its constructor arguments, in signature order, in ``_PARAMS``.
    """

    _PARAMS: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments by name.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility; the models hold no nested estimators.

        Returns
        -------
        dict of str to object
        """
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> Any:
        """Set constructor arguments by name.

        Values are checked by the next ``fit`` or scoring call. On a fitted model, inference
        settings (e.g. ``num_threads``, ``prediction``) take effect at once. A change to a
        hyperparameter that fixes the fitted parameters' shapes or meaning takes effect at
        the next ``fit``; until then every scoring or inference method (``predict``,
        ``recommend``, ``score_items``, ``transform``, ``sample``, ...) and ``save`` (and
        :meth:`RBM.partial_fit <rbmrec.RBM.partial_fit>`) raise a ValueError naming it, and
        setting the fitted value back makes the model usable again. These hyperparameters
        are ``n_hidden``, ``visible``, ``n_levels``, ``dtype`` and ``sigma`` for
        :class:`~rbmrec.RBM`; ``n_hidden``, ``orientation``, ``conditional``, ``n_factors``,
        ``visible`` and ``dtype`` for :class:`~rbmrec.RatingRBM`; ``n_hidden``, ``visible``
        and ``length_norm`` for :class:`~rbmrec.ImplicitRBM`.

        Returns
        -------
        object
            ``self``.

        Raises
        ------
        ValueError
            If a name is not a constructor argument (nothing is set then).
        """
        unknown = sorted(set(params) - set(self._PARAMS))
        if unknown:
            raise ValueError(
                f"invalid parameter(s) {', '.join(map(repr, unknown))} for "
                f"{type(self).__name__}; valid parameters are {', '.join(self._PARAMS)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def accepts_validation(fit: Callable[..., Any]) -> bool:
    """Whether a model's ``fit`` takes a ``validation`` keyword (or any ``**kwargs``).

    Decided from the signature, so an error raised inside ``fit`` is never mistaken for a
    signature mismatch.
    """
    try:
        params = inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return False
    return "validation" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` numba threads (0 = leave numba's setting), then restore."""
    if n == 0:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(old)


_BLAS_CONTROLLER = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run BLAS single-threaded inside the block (numba's threads keep their setting).

    Two reasons. The dense products of the models are small and called thousands of times:
    multi-threaded OpenBLAS spends most of its time synchronising on them (a (64, 1682) x
    (1682, 100) product took 10.9 ms with the default BLAS threads and 0.42 ms with one).
    And between products the BLAS workers spin, taking the cores from the numba kernels
    that run next: on 2 cores, recommend-all's numba kernels ran 2x slower with BLAS at 2
    threads than at 1. The ``threadpoolctl`` controller is built once (building it scans
    the loaded libraries, ~1 ms), so entering the block costs ~30 us.
    """
    with blas_threads(1):
        yield


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run BLAS with at most ``n`` threads inside the block (``0``: BLAS's own setting).

    The ``threadpoolctl`` controller is built once and shared with :func:`one_blas_thread`.
    """
    global _BLAS_CONTROLLER
    if n == 0:
        yield
        return
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=int(n), user_api="blas"):
        yield


def seed_generator(random_state: Any) -> np.random.Generator:
    """A Generator from None, an int, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, int | np.integer | np.random.SeedSequence):
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state must be None, an int, a SeedSequence or a Generator, got "
        f"{type(random_state).__name__}"
    )


def side_generator(random_state: Any, key: int) -> np.random.Generator:
    """A Generator for a side draw of ``fit`` (e.g. its own validation part), independent of
    the streams :func:`seed_generator` and ``SeedSequence.spawn`` give for ``random_state``.

    An int or SeedSequence gives the child with spawn key ``key`` (the same generator every
    time; a SeedSequence is not advanced); a Generator spawns a child (advancing its spawn
    counter); None draws fresh entropy.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state.spawn(1)[0]
    seed_generator(random_state)  # type check, with its error message
    if random_state is None:
        return np.random.default_rng()
    return np.random.default_rng(child_seed(random_state, key))


def child_seed(random_state: Any, key: int) -> np.random.SeedSequence:
    """The child of an int or SeedSequence ``random_state`` with spawn key ``key``: what
    ``SeedSequence.spawn`` makes as child ``key``, without advancing anything."""
    if isinstance(random_state, np.random.SeedSequence):
        ss = random_state
        return np.random.SeedSequence(
            ss.entropy, spawn_key=(*ss.spawn_key, key), pool_size=ss.pool_size
        )
    return np.random.SeedSequence(int(random_state), spawn_key=(key,))
