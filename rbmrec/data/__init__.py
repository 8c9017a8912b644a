"""Data layer: loaders, the Ratings container, splits and synthetic data.

Everything a model consumes is a :class:`Ratings` (or its ``user_items`` CSR matrix of raw
ratings, users x items, int32 indices); the id maps translate indices back to the ids in the
user's files.
"""

from rbmrec.data.idmap import IdMap, UnknownIdError
from rbmrec.data.movielens import load_movielens
from rbmrec.data.netflix import load_netflix
from rbmrec.data.ratings import Description, Ratings
from rbmrec.data.splits import (
    Split,
    carve_validation,
    kfold,
    movielens_folds,
    random_split,
    temporal_split,
    user_holdout,
)
from rbmrec.data.synthetic import PlantedTruth, demo_ratings, make_ratings
from rbmrec.data.table import load_table

__all__ = [
    "Description",
    "IdMap",
    "PlantedTruth",
    "Ratings",
    "Split",
    "UnknownIdError",
    "carve_validation",
    "demo_ratings",
    "kfold",
    "load_movielens",
    "load_netflix",
    "load_ratings",
    "load_table",
    "make_ratings",
    "movielens_folds",
    "random_split",
    "temporal_split",
    "user_holdout",
]

# The CLI's name for the generic table loader.
load_ratings = load_table
