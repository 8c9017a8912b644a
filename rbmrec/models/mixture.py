"""The item + user mixture of ``RatingRBM(orientation="both")``: two single-orientation
RatingRBMs combined through their predictive distributions (:mod:`rbmrec.models.ensemble`).

:class:`~rbmrec.models.rating.RatingRBM` builds a :class:`RatingMixture` when fitted with
``orientation="both"``, holds it as a fitted attribute and hands every scoring call to it;
the mixture never imports the RBM class (members are built from the model it is given).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from rbmrec.errors import ModelFileError
from rbmrec.models._estimator import child_seed, seed_generator
from rbmrec.models._sparse import stored_entries
from rbmrec.models.ensemble import combine, fit_convex_pair, fit_line
from rbmrec.models.trainer import is_interrupt

log = logging.getLogger(__name__)

#: Members, in fitting order (the first one is kept alone when training is interrupted
#: before the second starts).
MEMBERS = ("item", "user")


class RatingMixture:
    """An item-based and a user-based RatingRBM mixed as ``RatingRBM``'s docstring states::

        P(r_ui = k) = w * P_item(r_ui = k) + (1 - w) * P_user(r_ui = k)
        predict(u, i) = clip(a + s * (w * E_item[r_ui] + (1 - w) * E_user[r_ui]))

    Ranking scores are the same mixture of the members' scores. Fold-in of new users goes
    to the user member alone (an item-based RBM has no hidden state for a new user).

    Parameters
    ----------
    members : dict of str to RatingRBM
        Fitted ``{"item": I-RBM, "user": U-RBM}``, or ``{"item": I-RBM}`` alone (then
        ``weight`` is 1).
    weight : float
        ``w``, the item member's weight, in [0, 1].
    intercept, slope : float
        ``(a, s)`` of ``predict``.
    """

    def __init__(
        self, members: dict[str, Any], weight: float, intercept: float, slope: float
    ) -> None:
        if "item" not in members or not set(members) <= set(MEMBERS):
            raise ValueError(f"a 'both' model needs an item member, got {sorted(members)}")
        self.members = members
        self.weight = float(weight)
        self.calibration = (float(intercept), float(slope))

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        model: Any,
        X: sp.csr_matrix,
        V: sp.csr_matrix | None,
        known_pairs: sp.spmatrix | None,
    ) -> tuple[RatingMixture, bool]:
        """Fit the item- and the user-based member of ``model`` (a RatingRBM with
        ``orientation="both"``) one after the other, then the weights on ``V``.

        Returns
        -------
        mixture : RatingMixture
        interrupted : bool
            Training was stopped by KeyboardInterrupt (the members so far are kept).
        """
        seeds = spawn_seeds(model.random_state, len(MEMBERS))
        members: dict[str, Any] = {}
        interrupted = False
        for name, seed in zip(MEMBERS, seeds, strict=True):
            member = member_of(model, name, seed)
            try:
                member.fit(X, validation=V, known_pairs=known_pairs)
            except (KeyboardInterrupt, SystemError) as exc:
                if not members or not is_interrupt(exc):
                    raise
                # Interrupted outside the trainer's loop (which keeps its best epoch): the
                # second member has no usable parameters, so the first one stands alone.
                log.warning("training interrupted; keeping the %s-based member alone", MEMBERS[0])
                interrupted = True
                break
            members[name] = member
            if member.interrupted_:
                interrupted = True
                if len(members) < len(MEMBERS):
                    log.warning(
                        "training interrupted; the %s-based member is used alone (weight 1)", name
                    )
                break
        return cls(members, *fit_weights(members, V)), interrupted

    # ------------------------------------------------------------------ scoring
    def _mix(self, fn: Any) -> np.ndarray:
        """``w * fn(item member) + (1 - w) * fn(user member)`` (the item member alone if
        the user member is missing)."""
        ms = self.members
        if "user" not in ms:
            return fn(ms["item"])
        w = self.weight
        return combine((w, 1.0 - w), [fn(ms["item"]), fn(ms["user"])])

    def use_settings(self, model: Any, names: tuple[str, ...]) -> None:
        """Give the members ``model``'s inference settings ``names`` (checked by it)."""
        for m in self.members.values():
            for name in names:
                setattr(m, name, getattr(model, name))

    def _predict_proba(self, userids: Any, itemids: Any) -> np.ndarray:
        return self._mix(lambda m: m.predict_proba(userids, itemids))

    def _predict(self, userids: Any, itemids: Any) -> np.ndarray:
        a, s = self.calibration
        mean = self._mix(lambda m: m.predict(userids, itemids))
        return np.clip(a + s * mean, *self.members["item"]._value_bounds())

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return self._mix(lambda m: m._score_users(users))

    def _fold_in_member(self) -> Any:
        if "user" not in self.members:
            raise NotImplementedError(
                "fold-in of new users needs the user-based member, and this model has none "
                "(training was interrupted before it was fitted); refit the model"
            )
        return self.members["user"]

    def _fold_in_scores(self, row: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._fold_in_member()._fold_in_scores(row, items)

    def _fold_in_probs(self, row: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self._fold_in_member()._fold_in_probs(row, items)

    # ------------------------------------------------------------------ files
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Each member's arrays under ``"<member>__<name>"``; its metadata under
        ``"members"``, with ``blend_weight`` and ``calibration``."""
        arrays: dict[str, np.ndarray] = {}
        members_meta = {}
        for name, m in self.members.items():
            a, mm = m._get_state()
            arrays.update({f"{name}__{k}": v for k, v in a.items()})
            members_meta[name] = mm
        meta = {
            "members": members_meta,
            "blend_weight": self.weight,
            "calibration": list(self.calibration),
        }
        return arrays, meta

    @classmethod
    def restore(
        cls, model: Any, arrays: dict[str, np.ndarray], meta: dict[str, Any], n_users: int,
        n_items: int,
    ) -> RatingMixture:  # fmt: skip
        """The mixture saved in ``meta`` for ``model`` (its hyperparameters already set),
        after checking every member against the model and the others.

        Raises
        ------
        ModelFileError
            Naming the member or field that is inconsistent.
        """
        members_meta = meta["members"]
        if (
            not isinstance(members_meta, dict)
            or "item" not in members_meta
            or not set(members_meta) <= set(MEMBERS)
        ):
            raise ModelFileError(
                f"a 'both' model needs an item member (and at most a user member), got "
                f"{members_meta!r:.80}"
            )
        members: dict[str, Any] = {}
        for name, mm in members_meta.items():
            if not isinstance(mm, dict) or mm.get("orientation") != name:
                raise ModelFileError(f"member {name!r} does not have orientation={name!r}")
            m = type(model)._restore(arrays, mm, f"{name}__")
            _check_member(name, m, model, members.get("item"), n_users, n_items)
            members[name] = m
        a, slope = finite_floats("calibration", meta["calibration"], 2)
        (weight,) = finite_floats("blend_weight", [meta["blend_weight"]], 1)
        if not 0.0 <= weight <= 1.0 or slope < 0:
            raise ModelFileError(
                f"blend_weight must lie in [0, 1] and the calibration slope be >= 0, got "
                f"{weight} and {slope}"
            )
        return cls(members, weight, a, slope)


def _check_member(name: str, m: Any, model: Any, first: Any, n_users: int, n_items: int) -> None:
    """ModelFileError unless member ``m`` matches the model's hyperparameters and size and
    the item member's rating levels and scale."""
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
    if first is not None and not (
        np.array_equal(m.values_, first.values_)
        and getattr(m, "_scale", None) == getattr(first, "_scale", None)
        and getattr(m, "value_range_", None) == getattr(first, "value_range_", None)
    ):
        raise ModelFileError(
            f"member {name!r} has rating levels or a scale other than the item member's"
        )


def member_of(model: Any, orientation: str, seed: np.random.SeedSequence) -> Any:
    """A single-orientation model of ``model``'s class with its hyperparameters."""
    kw = {k: getattr(model, k) for k in model._HYPER}
    kw.update(
        orientation=orientation, cd_steps=model.cd_steps, random_state=seed, dtype=model.dtype,
        progress=model.progress, callbacks=model.callbacks, validation_fraction=0.0,
    )  # fmt: skip
    return type(model)(**kw)


def fit_weights(members: dict[str, Any], V: sp.csr_matrix | None) -> tuple[float, float, float]:
    """Item weight ``w`` and calibration ``(a, s)`` minimising the squared error on ``V``.

    The prediction is ``a + s * (w * p_item + (1 - w) * p_user)`` with ``w`` in [0, 1] and
    ``s >= 0`` (:func:`~rbmrec.models.ensemble.fit_convex_pair`). Without validation
    ratings (or an empty set): ``w = 0.5`` (1 with the item member alone), ``a = 0``,
    ``s = 1``.
    """
    alone = "user" not in members
    if V is None or V.nnz == 0:
        return (1.0 if alone else 0.5), 0.0, 1.0
    vu, vi, vr = stored_entries(V)
    y = np.asarray(vr, dtype=np.float64)
    p_item = np.asarray(members["item"].predict(vu, vi), dtype=np.float64)
    if alone:
        return (1.0, *fit_line(p_item, y))
    p_user = np.asarray(members["user"].predict(vu, vi), dtype=np.float64)
    return fit_convex_pair(p_item, p_user, y)


def spawn_seeds(random_state: Any, n: int) -> list[Any]:
    """``n`` independent child seeds of ``random_state`` (int, None, SeedSequence, Generator).

    The same int or SeedSequence always gives the same children (a SeedSequence is not
    advanced), so fitting twice with it is reproducible.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state.spawn(n)
    seed_generator(random_state)  # type check, with its error message
    if random_state is None:
        return np.random.SeedSequence().spawn(n)
    return [child_seed(random_state, k) for k in range(n)]


def finite_floats(name: str, value: Any, n: int) -> list[float]:
    """``value`` as a list of ``n`` finite floats, or ModelFileError naming ``name``."""
    try:
        out = [float(x) for x in value]
    except (TypeError, ValueError):
        out = []
    if len(out) != n or not np.all(np.isfinite(out)):
        raise ModelFileError(f"{name} must be {n} finite numbers, got {value!r}")
    return out
