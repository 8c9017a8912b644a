"""RatingRBM (user-, item-based and "both", conditional) passes the shared recommender contract."""

from __future__ import annotations

from contract import RecommenderContract

from rbmrec import RatingRBM


class TestUserRatingRBMContract(RecommenderContract):
    supports_predict = True

    def make_model(self):
        return RatingRBM(n_hidden=8, n_epochs=4, batch_size=10, orientation="user",
                         conditional=False, random_state=0)  # fmt: skip


class TestItemRatingRBMContract(RecommenderContract):
    supports_predict = True

    def make_model(self):
        return RatingRBM(n_hidden=8, n_epochs=4, batch_size=10, orientation="item",
                         random_state=0)  # fmt: skip


class TestConditionalFactoredRatingRBMContract(RecommenderContract):
    supports_predict = True

    def make_model(self):
        return RatingRBM(n_hidden=8, n_epochs=4, batch_size=10, orientation="user",
                         n_factors=3, recommend_score="p_high", random_state=0)  # fmt: skip


class TestGaussianRatingRBMContract(RecommenderContract):
    supports_predict = True

    def make_model(self):
        return RatingRBM(n_hidden=8, n_epochs=4, batch_size=10, orientation="user",
                         visible="gaussian", learning_rate=0.01, random_state=0)  # fmt: skip


class TestBothRatingRBMContract(RecommenderContract):
    """The default: a mixture of an item-based and a user-based conditional RBM."""

    supports_predict = True

    def make_model(self):
        return RatingRBM(n_hidden=8, n_epochs=4, batch_size=10, orientation="both",
                         random_state=0)  # fmt: skip


class TestBlendedRatingModelContract(RecommenderContract):
    """A least-squares blend of two rating models (the blend fits on ``validation``)."""

    supports_predict = True

    def make_model(self):
        from rbmrec.evaluation import BiasBaseline
        from rbmrec.models.blend import BlendedRatingModel

        return BlendedRatingModel(
            [("bias", BiasBaseline()),
             ("rbm", RatingRBM(n_hidden=8, n_epochs=4, batch_size=10, orientation="user",
                               random_state=0))],
            cv_folds=0,
        )  # fmt: skip

    def fit_model(self, model, data):
        return model.fit(data, validation=data)
