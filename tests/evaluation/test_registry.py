"""The model-name registry shared by the command line, the harness and the benchmarks."""

from __future__ import annotations

import pytest

from rbmrec.evaluation import registry
from rbmrec.evaluation.registry import ModelSpec, UnknownModelError

CANONICAL = [
    "rating-rbm", "implicit-rbm", "rating-rbm-choice", "global-mean", "bias", "popularity",
    "ease", "als", "bpr", "itemknn",
]  # fmt: skip


def test_canonical_names_kinds_and_descriptions() -> None:
    assert registry.names() == CANONICAL
    assert registry.names("rating") == ["rating-rbm", "rating-rbm-choice", "global-mean", "bias"]
    for name in CANONICAL:
        spec = registry.get(name)
        assert spec.kind in registry.KINDS and spec.description and spec.label
        assert "\n" not in spec.description


@pytest.mark.parametrize(
    ("alias", "name"),
    [("rbm", "rating-rbm"), ("irbm", "implicit-rbm"), ("pop", "popularity"),
     ("baseline", "bias"), ("IRBM", "implicit-rbm"), (" Pop ", "popularity"),
     ("item-knn", "itemknn")],
)  # fmt: skip
def test_old_spellings_are_aliases(alias: str, name: str) -> None:
    assert registry.canonical(alias) == name


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'svd'; choose from rating-rbm"):
        registry.get("svd")
    with pytest.raises(UnknownModelError) as info:
        registry.parse("rbm,foo,bar")
    assert "'foo', 'bar'" in str(info.value) and "popularity" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    valid = "choose from rating-rbm, rating-rbm-choice, global-mean, bias"
    with pytest.raises(UnknownModelError, match=valid):
        registry.parse("als", kind="rating")
    with pytest.raises(UnknownModelError):
        registry.parse(" , ")


def test_parse_keeps_order_and_drops_repeats() -> None:
    assert registry.parse("pop, rbm,rating-rbm,bias") == ["popularity", "rating-rbm", "bias"]


def test_make_passes_seed_and_threads_only_where_taken() -> None:
    als = registry.make("als", random_state=3, num_threads=2, factors=8)
    assert (als.random_state, als.num_threads, als.factors) == (3, 2, 8)
    pop = registry.make("pop", random_state=3, num_threads=2)
    assert type(pop).__name__ == "Popularity"
    rbm = registry.make("rbm", random_state=5, n_hidden=7)
    assert type(rbm).__name__ == "RatingRBM" and (rbm.random_state, rbm.n_hidden) == (5, 7)
    with pytest.raises(TypeError):
        registry.make("bias", no_such_argument=1)


def test_adding_a_model_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    registry.register(
        ModelSpec("top-pop", "rbmrec.evaluation.baselines:Popularity", "popular items",
                  "top-n", "TopPop", aliases=("tp",))
    )  # fmt: skip
    assert registry.names()[-1] == "top-pop" and registry.canonical("TP") == "top-pop"
    assert type(registry.make("tp")).__name__ == "Popularity"
    with pytest.raises(ValueError, match="already registered: pop"):
        registry.register(ModelSpec("pop", "x:y", "d", "top-n", "P"))
    with pytest.raises(ValueError, match="kind"):
        registry.register(ModelSpec("new", "x:y", "d", "ranking", "N"))  # type: ignore[arg-type]
