"""Dataset against LightFM's documented behaviour and hand-built matrices."""

import re

import numpy as np
import pytest

from tacitrec import Dataset


def dataset():
    ds = Dataset()
    ds.fit(["u1", "u2", "u3"], ["a", "b"], user_features=["young", "old"], item_features=["drama"])
    return ds


def test_mappings_and_shapes_follow_lightfm():
    ds = dataset()
    users, ufeats, items, ifeats = ds.mapping()
    assert users == {"u1": 0, "u2": 1, "u3": 2}
    # identity features first (registered with the ids), then the named features
    assert ufeats == {"u1": 0, "u2": 1, "u3": 2, "young": 3, "old": 4}
    assert items == {"a": 0, "b": 1} and ifeats == {"a": 0, "b": 1, "drama": 2}
    assert ds.interactions_shape() == (3, 2)
    assert ds.user_features_shape() == (3, 5) and ds.item_features_shape() == (2, 3)
    assert ds.model_dimensions() == (5, 3)
    assert ds.inverse_mapping()[0] == ["u1", "u2", "u3"]
    ds.fit_partial(users=["u4"], item_features=["comedy"])
    assert ds.mapping()[1]["u4"] == 5 and ds.mapping()[3]["comedy"] == 3


def test_build_interactions_tuples_and_arrays_agree():
    ds = dataset()
    inter, weights = ds.build_interactions([("u1", "a"), ("u3", "b", 2.5), ("u1", "a")])
    assert inter.dtype == np.int32 and weights.dtype == np.float32
    np.testing.assert_array_equal(inter.toarray(), [[2, 0], [0, 0], [0, 1]])
    np.testing.assert_allclose(weights.toarray(), [[2, 0], [0, 0], [0, 2.5]])
    i2, w2 = ds.build_interactions_from_arrays(
        np.array(["u1", "u3", "u1"]), np.array(["a", "b", "a"]), [1.0, 2.5, 1.0]
    )
    np.testing.assert_array_equal(i2.toarray(), inter.toarray())
    np.testing.assert_allclose(w2.toarray(), weights.toarray())
    with pytest.raises(ValueError, match="unknown user id 'u9'"):
        ds.build_interactions([("u9", "a")])
    with pytest.raises(ValueError, match="unknown item id 'z'"):
        ds.build_interactions_from_arrays(np.array(["u1"]), np.array(["z"]))


def test_numeric_ids_are_vectorised():
    ds = Dataset()
    ds.fit(np.arange(100, 0, -1), np.arange(50) * 3)
    inter, _ = ds.build_interactions_from_arrays(np.array([100, 1, 1]), np.array([0, 147, 3]))
    assert inter.tocsr()[0, 0] == 1 and inter.tocsr()[99, 49] == 1 and inter.tocsr()[99, 1] == 1
    with pytest.raises(ValueError, match="unknown item id 4"):
        ds.build_interactions_from_arrays(np.array([1]), np.array([4]))


def test_features_with_identity_and_normalisation():
    ds = dataset()
    F = ds.build_user_features([("u1", ["young"]), ("u2", {"old": 3.0})])
    want = np.array([[0.5, 0, 0, 0.5, 0], [0, 0.25, 0, 0, 0.75], [0, 0, 1, 0, 0]])
    np.testing.assert_allclose(F.toarray(), want)
    raw = ds.build_user_features([("u1", ["young"])], normalize=False)
    np.testing.assert_allclose(raw.toarray()[0], [1, 0, 0, 1, 0])
    with pytest.raises(ValueError, match="unknown user feature 'tall'"):
        ds.build_user_features([("u1", ["tall"])])
    no_identity = Dataset(user_identity_features=False)
    no_identity.fit(["u1", "u2"], ["a"], user_features=["x"])
    with pytest.raises(ValueError, match="have no features"):
        no_identity.build_user_features([("u1", ["x"])])


def test_an_id_and_a_feature_may_not_share_a_name():
    ds = Dataset()
    with pytest.raises(ValueError, match="is also a user id"):
        ds.fit(["u1", "young"], ["a"], user_features=["young"])
    # a refused fit_partial adds nothing (it used to keep the ids before the clash, the
    # clashing one included, which then shared the feature's column)
    ds = dataset()
    before = [dict(m) for m in ds.mapping()]
    with pytest.raises(ValueError, match="user id 'young' is also a user feature name"):
        ds.fit_partial(users=["u4", "young", "u5"], items=["c"])
    with pytest.raises(ValueError, match="item feature 'b' is also a item id"):
        ds.fit_partial(users=["u4"], item_features=["comedy", "b"])
    assert [dict(m) for m in ds.mapping()] == before


def test_normalize_divides_by_the_absolute_sum_as_lightfm():
    # LightFM normalises feature rows to unit l1 norm: negative weights count by their size
    ds = Dataset(item_identity_features=False)
    ds.fit(["u"], ["a", "b"], item_features=["x", "y", "z"])
    F = ds.build_item_features([("a", {"x": 2.0, "y": -1.0}), ("b", {"z": 4.0})]).toarray()
    np.testing.assert_allclose(F, [[2 / 3, -1 / 3, 0], [0, 0, 1]], rtol=1e-6)
    assert F.dtype == np.float32
    with pytest.raises(ValueError, match="cannot normalize"):
        ds.build_item_features([("a", {"x": 0.0})])


def test_non_finite_feature_weights_are_refused():
    ds = Dataset(item_identity_features=False)
    ds.fit(["u"], ["a", "b"], item_features=["x", "y"])
    for bad in (np.nan, np.inf, 1e39):  # NaN spread over its row by normalisation
        for normalize in (True, False):
            with pytest.raises(ValueError, match="item feature weights contain NaN or infinite"):
                ds.build_item_features([("a", {"x": bad, "y": 1.0})], normalize=normalize)
    ok = ds.build_item_features([("a", {"x": 3.0, "y": 1.0}), ("b", ["y"])]).toarray()
    np.testing.assert_allclose(ok, [[0.75, 0.25], [0, 1]], rtol=1e-6)
    # each weight finite, their sum not: inf (normalize=False) or NaN (normalize=True) before
    twice = [("a", {"x": 3e38, "y": 1.0}), ("a", {"x": 3e38})]
    for normalize in (True, False):
        with pytest.raises(ValueError, match="given more than once sum past float32's range"):
            ds.build_item_features(twice, normalize=normalize)
    F = ds.build_item_features([("a", {"x": 1e38}), ("a", {"x": 1e38})], normalize=False)
    assert F.toarray()[0, 0] == np.float32(2e38)


def test_malformed_entries_are_refused_with_the_entry():
    ds = Dataset().fit(["a", "b"], [1, 2], user_features=["f"], item_features=["g"])
    for build, who in ((ds.build_user_features, "user"), (ds.build_item_features, "item")):
        key = "a" if who == "user" else 1
        form = rf"data must hold \({who}, \[feature, ...\]\) or \({who}, {{feature: weight}}\)"
        for bad in ((key,), (key, ["f"], 3), "a"):
            with pytest.raises(ValueError, match=form + rf".* got {re.escape(repr(bad))}"):
                build([bad])
        for bad in ((key, 5), 5):
            with pytest.raises(TypeError, match=form + rf".* got {re.escape(repr(bad))}"):
                build([bad])
        name = "f" if who == "user" else "g"
        for weight in ("x", None, [1]):
            with pytest.raises(
                TypeError, match=form + r" tuples with real numbers as weights, got "
            ):
                build([(key, {name: weight})])
    form = r"data must hold \(user, item\) or \(user, item, weight\) tuples"
    with pytest.raises(ValueError, match=form + r", got \('a', 1, 2, 3\)"):
        ds.build_interactions([("a", 1, 2, 3)])
    with pytest.raises(TypeError, match=form + ", got 5"):
        ds.build_interactions([5])
    for weight in ("x", "2", None):
        with pytest.raises(TypeError, match=form + " with a real number as weight, got"):
            ds.build_interactions([("a", 1, weight)])


def test_tuple_and_mixed_type_ids_map_as_lightfm():
    # expected: LightFM 1.17 on the same calls (hand-checked); tuples and 1 / "1" are distinct ids
    ds = Dataset().fit([1, "1", 2.5, ("u", 1)], [("x", 1), "b", ("y", 2)])
    data = [(1, ("x", 1)), ("1", "b"), (("u", 1), ("y", 2)), (2.5, "b", 3.0)]
    interactions, weights = ds.build_interactions(data)
    assert interactions.toarray().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert weights.toarray().tolist() == [[1, 0, 0], [0, 1, 0], [0, 3, 0], [0, 0, 1]]
    by_arrays, _ = ds.build_interactions_from_arrays(["1", ("u", 1)], [("y", 2), ("x", 1)])
    assert by_arrays.toarray().tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="unknown user id '2'"):
        ds.build_interactions([("2", "b")])


def test_ids_numpy_cannot_tell_apart_map_by_equality_as_lightfm():
    """LightFM's dicts compare ids as Python does; NumPy arrays of them would not (trailing NULs
    of strings are dropped, ints beyond 2^63 mixed with small ones become floats)."""
    cases = [
        ([2**63 + 1, 2**63 + 2, 5], [2**63 + 2, 5], [1, 2]),
        ([10**17, 10**17 + 1], [10**17 + 1, 10**17], [1, 0]),
        (["a\x00", "a"], ["a", "a\x00"], [1, 0]),
        (np.array([2**63 + 5, 3], dtype=np.uint64), [np.uint64(2**63 + 5), 3], [0, 1]),
    ]
    for users, asked, rows in cases:
        d = Dataset().fit(users, ["x"])
        got = d.build_interactions([(u, "x") for u in asked])[0].row
        np.testing.assert_array_equal(got, rows)
    with pytest.raises(ValueError, match="unknown user id 7"):
        Dataset().fit([1, 2], ["x"]).build_interactions([(7, "x")])


def test_mappings_are_the_datasets_own_dicts_as_lightfm():
    d = Dataset().fit(["u"], ["i"])
    users = d.mapping()[0]
    d.fit_partial(users=["v"])
    assert users == {"u": 0, "v": 1}
