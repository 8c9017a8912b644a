"""Models of the command line, built by name through :mod:`rbmrec.evaluation.registry`."""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from typing import Any

from rbmrec.cli import _common
from rbmrec.cli._common import UsageError

#: Models that take the "RBM hyperparameters" options (--n-hidden, --epochs, ...).
RBMS = ("rating-rbm", "implicit-rbm")
#: ChooseAndLike: a rating-rbm and an implicit-rbm member; --n-hidden and --epochs apply to
#: both, --learning-rate and --batch-size (on different scales for the two) to neither.
CHOICE = "rating-rbm-choice"


def label(name: str) -> str:
    """Display name of a model (``RatingRBM``, ``Popularity``, ...)."""
    from rbmrec.evaluation import registry

    return registry.get(name).label


def make_model(name: str, args: argparse.Namespace, progress: bool) -> Any:
    """A fresh model for a ``--models`` name with the command's hyperparameters."""
    from rbmrec.evaluation import registry

    name = registry.canonical(name)
    seed = int(args.seed)
    if name == CHOICE:
        return _choice_model(args, progress)
    if name not in RBMS:
        return registry.make(name, random_state=seed)
    epochs = getattr(args, "epochs", None)
    if epochs is None:
        epochs = getattr(args, "model_epochs", {}).get(name)
    kw: dict[str, Any] = {
        "num_threads": int(getattr(args, "threads", 0) or 0),
        # Stops training after the epoch when a Ctrl-C was swallowed (see _CtrlCWatch).
        "callbacks": [_common.CTRL_C.stop_training],
        "progress": progress,
    }
    for param, value in (
        ("n_hidden", getattr(args, "n_hidden", None)),
        ("n_epochs", epochs),
        ("learning_rate", getattr(args, "learning_rate", None)),
        ("batch_size", getattr(args, "batch_size", None)),
    ):
        if value is not None:  # otherwise the model's own default
            kw[param] = value
    if name == "rating-rbm":
        for param in ("orientation", "visible"):
            if getattr(args, param, None):
                kw[param] = getattr(args, param)
        # 0 means "no validation" for the model's own held-out part too; a fraction the
        # command carves itself is passed to fit, which then ignores this one.
        if getattr(args, "validation_fraction", None) is not None:
            kw["validation_fraction"] = args.validation_fraction
    return registry.make(name, random_state=seed, **kw)


def _choice_model(args: argparse.Namespace, progress: bool) -> Any:
    """``ChooseAndLike`` of a ``rating-rbm`` and an ``implicit-rbm`` built from the command's
    options, with the member seeds ``ChooseAndLike(random_state=--seed)`` gives them."""
    from rbmrec.models.choice import seeded

    for option in ("learning_rate", "batch_size"):
        if getattr(args, option, None) is not None:
            flag = "--" + option.replace("_", "-")
            raise UsageError(
                f"{flag} does not apply to {CHOICE}: its two RBMs take different "
                "scales; fit them in Python (rbmrec.models.choice.ChooseAndLike) to set them"
            )
    fraction = getattr(args, "validation_fraction", None)
    if fraction == 0:
        raise UsageError(
            f"--validation-fraction 0: {CHOICE} holds out part of the ratings to weigh its "
            "two RBMs; give a fraction in (0, 1)"
        )
    held_out = {} if fraction is None else {"validation_fraction": fraction}
    return seeded(
        make_model("rating-rbm", args, progress),
        make_model("implicit-rbm", args, progress),
        int(args.seed),
        **held_out,
    )


def parse_models(text: str, option: str = "--models") -> list[str]:
    """Canonical names of a comma-separated ``--models`` list (aliases accepted)."""
    from rbmrec.evaluation import registry

    try:
        return registry.parse(text)
    except registry.UnknownModelError as exc:
        raise UsageError(f"{option}: {exc}") from None


class Announced:
    """Wraps a model so the harness's fit prints a header line first (progress for people)."""

    def __init__(self, label: str, model: Any, stream: Any = None) -> None:
        self._label = label
        self._model = model
        self._stream = stream or sys.stdout

    def fit(self, user_items: Any, validation: Any = None) -> Any:
        print(f"fitting {self._label} ...", file=self._stream, flush=True)
        t0 = time.perf_counter()
        if validation is not None and "validation" in inspect.signature(self._model.fit).parameters:
            self._model.fit(user_items, validation=validation)
        else:
            self._model.fit(user_items)
        if getattr(self._model, "interrupted_", False) or _common.CTRL_C.pressed:
            # The RBMs catch Ctrl-C to keep the parameters so far; a comparison stops here.
            raise KeyboardInterrupt
        print(
            f"  {self._label} fitted in {time.perf_counter() - t0:.1f} s",
            file=self._stream,
            flush=True,
        )
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __repr__(self) -> str:
        return repr(self._model)
