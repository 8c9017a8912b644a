"""evaluate's warm-up: no model pays one-off loading costs inside its timed calls, whatever
its position (without it, the first of three identical RatingRBMs looks ~150x slower at
predict and ~90x slower at recommend, loading the RBM kernels from Numba's cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rbmrec.data import make_ratings, random_split
from rbmrec.data.splits import Split, carve_validation
from rbmrec.evaluation import Popularity, evaluate

_FITS: list[tuple[int, int, tuple[int, int], bool]] = []


@pytest.fixture(scope="module")
def split() -> Split:
    return random_split(make_ratings(120, 80, density=0.1, seed=0), 0.2, seed=0)


class _Cloneable(Popularity):
    """Popularity with scikit-learn style ``get_params`` and RBM-like settings; every fit is
    logged to ``_FITS`` as (id, n_epochs, shape, got validation)."""

    def __init__(self, n_epochs: int = 5, random_state=None, callbacks=(), fail_below: int = 0):
        super().__init__()
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.callbacks = callbacks
        self.fail_below = fail_below

    def get_params(self, deep: bool = True) -> dict:
        return {
            k: getattr(self, k) for k in ("n_epochs", "random_state", "callbacks", "fail_below")
        }

    def fit(self, user_items, validation=None):
        got_validation = validation is not None and validation.nnz > 0
        _FITS.append((id(self), self.n_epochs, user_items.shape, got_validation))
        if user_items.shape[0] < self.fail_below:
            raise ValueError("needs more users")
        for callback in self.callbacks:
            callback()
        if isinstance(self.random_state, np.random.Generator):
            self.random_state.random()
        return super().fit(user_items)


class _CloneableRating(_Cloneable):
    def predict(self, userids, itemids):
        return np.full(len(userids), 3.0)


def test_a_clone_of_each_model_is_fitted_before_anything_is_timed(split):
    _FITS.clear()
    rng = np.random.default_rng(0)
    calls: list[int] = []
    a = _Cloneable(random_state=rng, callbacks=[lambda: calls.append(1)])
    b = _Cloneable(random_state=rng, callbacks=[lambda: calls.append(2)])  # same settings
    carved = carve_validation(split, 0.1, seed=0)
    with_val = Split(carved.train, split.test, carved.validation, name="v")
    evaluate({"a": a, "b": b, "pop": Popularity()}, with_val, K=5)
    # one clone for both (same class and settings), fitted first, then the models
    assert [f[0] for f in _FITS[1:]] == [id(a), id(b)]
    clone, n_epochs, shape, got_validation = _FITS[0]
    assert clone not in (id(a), id(b))
    assert n_epochs == 1 and shape[0] <= 16 and shape[1] <= 64 and got_validation
    # the clone neither called the user's callbacks nor advanced the shared Generator
    assert calls == [1, 2]
    expected = np.random.default_rng(0)
    expected.random(2)
    assert rng.bit_generator.state == expected.bit_generator.state


def test_a_failing_warm_up_leaves_the_evaluation_alone(split):
    _FITS.clear()
    model = _Cloneable(fail_below=20)  # the clone's 16 users are too few for it
    df = evaluate({"m": model}, split, K=5)
    assert len(_FITS) == 2 and df["ndcg"][0] > 0


def test_the_members_of_a_blend_are_warmed_up(split):
    """A model without get_params but with ``members`` (BlendedRatingModel) gets a clone of
    each member fitted before the timed calls."""
    from rbmrec.models.blend import BlendedRatingModel

    _FITS.clear()
    member = _CloneableRating()
    carved = carve_validation(split, 0.2, seed=0)
    with_val = Split(carved.train, split.test, carved.validation, name="v")
    evaluate({"blend": BlendedRatingModel([("m", member)], cv_folds=0)}, with_val, K=5)
    assert len(_FITS) == 2 and _FITS[0][0] != id(member) and _FITS[1][0] == id(member)
    assert _FITS[0][1] == 1


# Counts the Numba kernels (dispatcher overloads) loaded during each timed call; a fresh
# process, so nothing is loaded before evaluate runs. Prints the calls that loaded some.
_SCRIPT = """
import importlib, pkgutil
from numba.core.dispatcher import Dispatcher
import rbmrec.engine
from rbmrec.data import make_ratings, random_split
from rbmrec.evaluation import evaluate
from rbmrec.models.implicit import ImplicitRBM
from rbmrec.models.rating import RatingRBM

modules = [importlib.import_module(f"rbmrec.engine.{m.name}")
           for m in pkgutil.iter_modules(rbmrec.engine.__path__)]
kernels = {id(k): k for m in modules for k in vars(m).values() if isinstance(k, Dispatcher)}
loaded = lambda: sum(len(k.overloads) for k in kernels.values())
timed, late = set(), []

def spy(cls):
    def wrap(step):
        method = getattr(cls, step)
        def call(self, *args, **kwargs):
            if id(self) not in timed:
                return method(self, *args, **kwargs)
            before = loaded()
            out = method(self, *args, **kwargs)
            if loaded() > before:
                late.append(f"{cls.__name__}.{step}")
            return out
        return call
    steps = [s for s in ("fit", "predict", "recommend") if hasattr(cls, s)]
    return type(cls.__name__, (cls,), {s: wrap(s) for s in steps})

s = random_split(make_ratings(60, 40, density=0.2, seed=0), 0.2, seed=0,
                 validation_fraction=0.1)
models = {
    "rating": spy(RatingRBM)(n_hidden=4, n_epochs=1, random_state=0),
    "implicit": spy(ImplicitRBM)(n_hidden=4, n_epochs=1, random_state=0),
}
timed.update(id(m) for m in models.values())
evaluate(models, s, K=5)
print("late:", ",".join(late))
"""


@pytest.mark.slow
def test_no_kernel_is_loaded_inside_a_timed_call(tmp_path: Path):
    """The effect itself, in a fresh process (a few seconds: it loads the RBMs' kernels from
    Numba's cache). Before the fix, RatingRBM.fit, RatingRBM.recommend and ImplicitRBM.fit
    loaded kernels while timed."""
    script = tmp_path / "late.py"
    script.write_text(_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script)], env=dict(os.environ), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "late:", f"kernels loaded while timed: {run.stdout}"


class _InterruptedClone(_Cloneable):
    """A clone's training stopped by Ctrl-C: the trainer records it as ``interrupted_``."""

    def fit(self, user_items, validation=None):
        super().fit(user_items, validation)
        self.interrupted_ = True
        return self


def test_ctrl_c_during_the_warm_up_stops_the_evaluation(split):
    """The clone's trainer took Ctrl-C as "stop training", and evaluate then trained every
    real model to the end (with a cold cache the warm-up is where Numba compiles)."""
    _FITS.clear()
    with pytest.raises(KeyboardInterrupt):
        evaluate({"a": _InterruptedClone()}, split, K=5)
    assert len(_FITS) == 1  # only the clone was fitted


def test_a_warm_up_clone_logs_nothing(split, caplog):
    import logging

    from rbmrec import RatingRBM

    m = RatingRBM(n_hidden=3, n_epochs=2, orientation="user", random_state=0)
    with caplog.at_level(logging.INFO, logger="rbmrec"):
        evaluate({"rbm": m}, split, K=5)
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert len(epochs) == 2  # the real model's two epochs, not the clone's one
    assert logging.getLogger("rbmrec").level == logging.NOTSET  # the level is put back


class _Wrapper:
    """Forwards every attribute to a model, as the command line's progress wrapper does."""

    def __init__(self, model):
        self._model = model

    def fit(self, user_items, validation=None):
        self._model.fit(user_items, validation)
        return self

    def __getattr__(self, name):
        return getattr(self._model, name)


def test_a_wrapped_model_is_warmed_up_as_the_model_it_wraps(split):
    """Rebuilding the wrapper from the model's get_params failed, so the command line's
    models were never warmed up and their first timed call loaded the kernels."""
    _FITS.clear()
    inner = _Cloneable()
    evaluate({"a": _Wrapper(inner)}, split, K=5)
    assert len(_FITS) == 2 and _FITS[0][0] != id(inner) and _FITS[0][1] == 1
    assert _FITS[1][0] == id(inner)
