"""Model bundles: a fitted model with its raw-id maps and seen items, in one file.

Raw ids (the strings or integers of the user's files) end here: the models below work in
dense int32 indices. See :class:`ModelBundle` and, for the file format,
:mod:`rbmrec.bundle._bundle`.
"""

from rbmrec.bundle._bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, ModelBundle, merge_rows
from rbmrec.bundle._ratings_file import ItemRatings, read_item_ratings

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "ItemRatings",
    "ModelBundle",
    "merge_rows",
    "read_item_ratings",
]
