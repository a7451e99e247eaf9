"""``lightfm.data`` on tacitrec: :class:`Dataset`."""

from __future__ import annotations

from ...data import Dataset as _Dataset


class Dataset(_Dataset):
    """LightFM 1.17's ``Dataset``: the same constructor, ``fit``, ``fit_partial``,
    ``build_interactions``, ``build_user_features``, ``build_item_features``, ``mapping``,
    ``interactions_shape``, ``user_features_shape``, ``item_features_shape`` and
    ``model_dimensions``, with the same mappings and matrices (:class:`tacitrec.Dataset`).

    What differs from LightFM, and why:

    * A feature name equal to an id of the same side raises ValueError when identity features
      are on: LightFM silently maps both to one column, mixing the id's embedding with the
      feature's.
    * ``normalize=True`` raises when a row's weights are all zero (LightFM only when a row has
      no entries, and leaves a row of zeros as it is: a user or item with no representation).
      Rows are divided by the sum of their absolute weights, as LightFM's l1 normalisation.
    * ``fit`` and ``fit_partial`` return the dataset (LightFM returns None). Beyond LightFM:
      ``inverse_mapping`` and the vectorised ``build_interactions_from_arrays``.
    """


__all__ = ["Dataset"]
