"""Model names: one registry that the command line, the harness and the benchmarks share.

Each entry maps a canonical name (``rating-rbm``, ``implicit-rbm``, ``bias``, ...) to the
model's class, a one-line description, its kind (``"rating"``: predicts ratings and ranks;
``"top-n"``: ranks only) and the spellings accepted for it (``irbm``, ``pop``, ...). Names
are matched case-insensitively. Classes are imported when a model is built, so importing the
registry costs nothing and ``implicit`` is not loaded for the RBMs.

Adding a model is one :func:`register` call (or one entry of ``_BUILTIN``)::

    register(ModelSpec("ease", "rbmrec.evaluation.baselines:EASE", "EASE (Steck 2019)",
                       "top-n", label="EASE"))
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rbmrec.errors import RBMRecError

Kind = Literal["rating", "top-n"]
KINDS: tuple[str, ...] = ("rating", "top-n")


class UnknownModelError(RBMRecError, KeyError, ValueError):
    """A model name that is not in the registry; the message lists the valid names."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument; keep the plain message.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Parameters
    ----------
    name : str
        Canonical name (lower case, words joined by ``-``).
    target : str
        ``"module:ClassName"`` of the model class (imported when the model is built).
    description : str
        One line for help texts and reports.
    kind : {"rating", "top-n"}
        ``"rating"``: the model predicts ratings (``predict``) and ranks items; ``"top-n"``:
        it ranks items only.
    label : str
        Display name in tables and messages (``RatingRBM``, ``ALS``, ...).
    aliases : tuple of str, default ()
        Other accepted spellings.
    defaults : mapping, default {}
        Constructor arguments the registry passes unless the caller gives them.
    """

    name: str
    target: str
    description: str
    kind: Kind
    label: str
    aliases: tuple[str, ...] = ()
    defaults: Mapping[str, Any] | None = None

    def model_class(self) -> type:
        """The model class (imports its module)."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def build(
        self, *, random_state: Any = None, num_threads: int | None = None, **params: Any
    ) -> Any:
        """An unfitted model.

        Parameters
        ----------
        random_state : int, optional
            Passed when the class takes a ``random_state`` (ignored otherwise).
        num_threads : int, optional
            Passed when the class takes ``num_threads`` (ignored otherwise).
        **params
            Other constructor arguments, passed as given (a wrong name is the class's
            ``TypeError``).
        """
        cls = self.model_class()
        accepted = inspect.signature(cls).parameters
        kwargs = dict(self.defaults or {})
        for option, value in (("random_state", random_state), ("num_threads", num_threads)):
            if value is not None and option in accepted:
                kwargs[option] = value
        kwargs.update(params)
        return cls(**kwargs)


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def _key(name: str) -> str:
    return str(name).strip().lower()


def register(spec: ModelSpec, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the registry; ``replace`` allows redefining an existing name.

    Raises
    ------
    ValueError
        If the kind is not one of :data:`KINDS`, or the name or an alias is taken (unless
        ``replace``).
    """
    if spec.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {spec.kind!r}")
    spellings = [_key(spec.name), *(_key(a) for a in spec.aliases)]
    if not replace:
        taken = [s for s in spellings if s in _ALIASES]
        if taken:
            raise ValueError(f"model name(s) already registered: {', '.join(taken)}")
    old = _REGISTRY.pop(_key(spec.name), None)
    if old is not None:
        for alias in [a for a, n in _ALIASES.items() if n == old.name]:
            del _ALIASES[alias]
    _REGISTRY[_key(spec.name)] = spec
    for spelling in spellings:
        _ALIASES[spelling] = spec.name
    return spec


def names(kind: Kind | None = None) -> list[str]:
    """Canonical names in registration order (only those of ``kind`` when given)."""
    return [s.name for s in _REGISTRY.values() if kind is None or s.kind == kind]


def get(name: str) -> ModelSpec:
    """The entry of ``name`` (canonical or alias, any case).

    Raises
    ------
    UnknownModelError
        Naming ``name`` and listing the valid names.
    """
    canonical = _ALIASES.get(_key(name))
    if canonical is None:
        raise UnknownModelError(f"unknown model {name!r}; choose from {', '.join(names())}")
    return _REGISTRY[_key(canonical)]


def canonical(name: str) -> str:
    """The canonical name of ``name`` (:class:`UnknownModelError` when unknown)."""
    return get(name).name


def make(
    name: str, *, random_state: Any = None, num_threads: int | None = None, **params: Any
) -> Any:
    """An unfitted model of ``name``: :meth:`ModelSpec.build` of its entry."""
    return get(name).build(random_state=random_state, num_threads=num_threads, **params)


def parse(text: str, kind: Kind | None = None) -> list[str]:
    """Canonical names of a comma-separated list, each once, in the order given.

    Raises
    ------
    UnknownModelError
        For an unknown name, an empty list, or (``kind`` given) a model of another kind;
        the message lists the valid names.
    """
    given = [part.strip() for part in str(text).split(",") if part.strip()]
    valid = names(kind)
    bad = [g for g in given if _ALIASES.get(_key(g)) not in valid]
    if bad or not given:
        shown = ", ".join(repr(b) for b in bad) if bad else repr(text)
        raise UnknownModelError(f"unknown model(s) {shown}; choose from {', '.join(valid)}")
    return list(dict.fromkeys(canonical(g) for g in given))


_BUILTIN = (
    ModelSpec(
        "rating-rbm",
        "rbmrec.models.rating:RatingRBM",
        "RBM over rating levels (Salakhutdinov, Mnih & Hinton 2007)",
        "rating",
        "RatingRBM",
        aliases=("rbm", "ratingrbm"),
    ),
    ModelSpec(
        "implicit-rbm",
        "rbmrec.models.implicit:ImplicitRBM",
        "RBM over what each user rated (top-N)",
        "top-n",
        "ImplicitRBM",
        aliases=("irbm", "implicitrbm"),
    ),
    ModelSpec(
        "rating-rbm-choice",
        "rbmrec.models.choice:default_choose_and_like",
        "RatingRBM ranked by an ImplicitRBM's choice probability (ChooseAndLike)",
        "rating",
        "ChooseAndLike",
        aliases=("choose-and-like",),
    ),
    ModelSpec(
        "global-mean",
        "rbmrec.evaluation.baselines:GlobalMean",
        "the mean training rating for every pair",
        "rating",
        "GlobalMean",
        aliases=("mean",),
    ),
    ModelSpec(
        "bias",
        "rbmrec.evaluation.baselines:BiasBaseline",
        "global mean + user bias + item bias",
        "rating",
        "Bias",
        aliases=("baseline",),
    ),
    ModelSpec(
        "popularity",
        "rbmrec.evaluation.baselines:Popularity",
        "items ranked by how many users rated them",
        "top-n",
        "Popularity",
        aliases=("pop",),
    ),
    ModelSpec(
        "ease",
        "rbmrec.evaluation.baselines:EASE",
        "closed-form item-item model (Steck 2019)",
        "top-n",
        "EASE",
    ),
    ModelSpec(
        "als",
        "rbmrec.evaluation.baselines:ImplicitALS",
        "implicit's alternating least squares (Hu, Koren & Volinsky 2008)",
        "top-n",
        "ALS",
    ),
    ModelSpec(
        "bpr",
        "rbmrec.evaluation.baselines:ImplicitBPR",
        "implicit's Bayesian personalised ranking (Rendle et al. 2009)",
        "top-n",
        "BPR",
    ),
    ModelSpec(
        "itemknn",
        "rbmrec.evaluation.baselines:ImplicitItemKNN",
        "implicit's item-item nearest neighbours (cosine)",
        "top-n",
        "ItemKNN",
        aliases=("item-knn",),
    ),
)

for _spec in _BUILTIN:
    register(_spec)
