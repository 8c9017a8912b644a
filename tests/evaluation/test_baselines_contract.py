"""Every baseline passes the shared recommender contract (tests/contract.py)."""

from __future__ import annotations

from contract import RecommenderContract

from rbmrec.evaluation.baselines import (
    EASE,
    BiasBaseline,
    GlobalMean,
    ImplicitALS,
    ImplicitBPR,
    ImplicitItemKNN,
    Popularity,
)


class TestGlobalMeanContract(RecommenderContract):
    supports_predict = True

    def make_model(self):
        return GlobalMean()


class TestBiasBaselineContract(RecommenderContract):
    supports_predict = True

    def make_model(self):
        return BiasBaseline(reg_user=5.0, reg_item=3.0, n_iter=5)


class TestPopularityContract(RecommenderContract):
    def make_model(self):
        return Popularity()


class TestImplicitALSContract(RecommenderContract):
    def make_model(self):
        return ImplicitALS(factors=4, iterations=5, random_state=3)


class TestImplicitBPRContract(RecommenderContract):
    def make_model(self):
        return ImplicitBPR(factors=4, iterations=20, random_state=3)


class TestItemKNNCosineContract(RecommenderContract):
    def make_model(self):
        return ImplicitItemKNN(kind="cosine", K=6)


class TestItemKNNBM25Contract(RecommenderContract):
    def make_model(self):
        return ImplicitItemKNN(kind="bm25", K=6)


class TestItemKNNTFIDFContract(RecommenderContract):
    def make_model(self):
        return ImplicitItemKNN(kind="tfidf", K=6)


class TestEASEContract(RecommenderContract):
    def make_model(self):
        return EASE(regularization=5.0)
