"""Dataset generators and loaders."""

import numpy as np
import pytest

from tacitrec.datasets import synthetic


def test_synthetic_is_seeded_and_planted():
    a = synthetic(n_users=300, n_items=100, n_clusters=5, random_state=1)
    b = synthetic(n_users=300, n_items=100, n_clusters=5, random_state=1)
    assert (a.user_items != b.user_items).nnz == 0
    X = a.user_items.tocoo()
    same = a.user_cluster[X.row] == a.item_cluster[X.col]
    # draws (counts) from the user's own cluster: in_cluster=0.8 plus 1/5 of the global ones
    share = X.data[same].sum() / X.data.sum()
    assert share == pytest.approx(0.8 + 0.2 / 5, abs=0.03)
    with pytest.raises(ValueError, match="n_clusters"):
        synthetic(n_items=3, n_clusters=4)


def test_synthetic_features_reveal_the_clusters_up_to_the_noise():
    a = synthetic(n_users=2000, n_items=1000, n_clusters=5, feature_noise=0.3, random_state=4)
    plain = synthetic(n_users=2000, n_items=1000, n_clusters=5, random_state=4)
    assert (a.user_items != plain.user_items).nnz == 0  # features do not change the data
    for F, names, cluster, prefix, n_other in (
        (a.user_features, a.user_feature_names, a.user_cluster, "taste=", 5),
        (a.item_features, a.item_feature_names, a.item_cluster, "genre=", 50),
    ):
        assert F.shape == (len(cluster), 5 + n_other) and len(names) == F.shape[1]
        dense = F.toarray()
        assert (dense.sum(axis=1) == 2).all() and set(np.unique(dense)) == {0.0, 1.0}
        shown = dense[:, :5].argmax(axis=1)
        assert [names[c] for c in shown[:3]] == [f"{prefix}{c}" for c in shown[:3]]
        # shown = true cluster with probability 0.7 + 0.3 / 5
        assert (shown == cluster).mean() == pytest.approx(0.76, abs=0.04)
    with pytest.raises(ValueError, match="feature_noise"):
        synthetic(feature_noise=1.5)


# --- loaders and downloaders of real data sets (small hand-written files in every layout) ------

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import scipy.sparse as sp

from tacitrec import _delimited, datasets
from tacitrec.datasets import (
    ChecksumError,
    Download,
    fetch_lastfm,
    fetch_movielens,
    load_lastfm,
    load_movielens,
)

GENRES = ["unknown", "Action", "Comedy"] + [f"G{j}" for j in range(3, 19)]


def flags(*on):
    return "|".join("1" if j in on else "0" for j in range(19))


ML_100K = {
    "u.data": "1\t10\t4\t881250949\n3\t2\t5\t881250950\n1\t7\t2\t881250951\n"
    "12\t10\t3\t881250952\n3\t7\t4\t881250953\n",
    "u.genre": "".join(f"{g}|{j}\n" for j, g in enumerate(GENRES)) + "\n",
    "u.item": (
        f"2|GoldenEye (1995)|01-Jan-1995||http://x|{flags(1)}\n"
        f"7|Misérables, Les (1995)|01-Jan-1995||http://y|{flags(1, 2)}\n"
        f"99|Never Rated (1990)|01-Jan-1990||http://z|{flags(0)}\n"
    ).encode("latin-1"),
    "u.user": "1|24|M|technician|85711\n3|53|F|other|94043\n5|23|M|writer|32067\n",
}


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return folder


def write_zip(path, files, folder=""):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(folder + name, text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def check(d, X, user_ids, item_ids, names=None, user=(None, None), item=(None, None)):
    assert sp.isspmatrix_csr(d.user_items) and d.user_items.dtype == np.float32
    np.testing.assert_array_equal(d.user_items.toarray(), np.array(X, dtype=np.float32))
    assert list(d.user_ids) == user_ids and list(d.item_ids) == item_ids
    assert (None if d.item_names is None else list(d.item_names)) == names
    for F, F_names, (want, want_names) in (
        (d.user_features, d.user_feature_names, user),
        (d.item_features, d.item_feature_names, item),
    ):
        if want is None:
            assert F is None and F_names is None
        else:
            assert F.dtype == np.float32 and list(F_names) == want_names
            np.testing.assert_array_equal(F.toarray(), np.array(want, dtype=np.float32))


def same(a, b):
    assert (a.user_items != b.user_items).nnz == 0
    for name in ("user_ids", "item_ids", "item_names", "user_feature_names", "item_feature_names"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or list(x) == list(y)
    for name in ("user_features", "item_features"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None and y is None) or (x != y).nnz == 0


def test_movielens_100k_layout_from_folder_parent_zip_and_file(tmp_path):
    folder = write(tmp_path / "ml-100k", ML_100K)
    d = load_movielens(folder)
    check(
        d,
        [[0, 2, 4], [5, 4, 0], [0, 0, 3]],
        [1, 3, 12],
        [2, 7, 10],  # ids sorted as numbers
        names=["GoldenEye (1995)", "Misérables, Les (1995)", ""],  # latin-1; 10 is unnamed
        user=(
            [[1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 1, 0], [0] * 6],  # user 5 never rated
            [
                "age=24",
                "age=53",
                "gender=F",
                "gender=M",
                "occupation=other",
                "occupation=technician",
            ],
        ),
        item=([[1, 0], [1, 1], [0, 0]], ["genre=Action", "genre=Comedy"]),
    )  # 99: dropped
    assert d.user_ids.dtype == np.int64
    same(d, load_movielens(tmp_path))  # the folder above
    same(d, load_movielens(folder / "u.data"))  # the ratings file itself
    same(d, load_movielens(write_zip(tmp_path / "ml-100k.zip", ML_100K, "ml-100k/")))
    high = load_movielens(str(folder), min_rating=4)  # every user and item keeps its row/column
    check(
        high,
        [[0, 0, 4], [5, 4, 0], [0, 0, 0]],
        [1, 3, 12],
        [2, 7, 10],
        names=list(d.item_names),
        user=(d.user_features.toarray(), list(d.user_feature_names)),
        item=(d.item_features.toarray(), list(d.item_feature_names)),
    )
    (folder / "u.genre").unlink()  # genres named by their index
    (folder / "u.user").unlink()
    bare = load_movielens(folder)
    assert list(bare.item_feature_names) == ["genre=1", "genre=2"] and bare.user_features is None


def test_movielens_1m_layout(tmp_path):
    write(
        tmp_path / "ml-1m",
        {
            "ratings.dat": "1::1193::5::978300760\n2::1193::3::978298413\n1::48::4::978824351\n"
            "2::3408::4::978300275\n",
            "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
            "48::Pocahontas (1995)::Animation|Children's|Musical\n"
            "5::Father of the Bride Part II (1995)::Comedy\n",
            "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
        },
    )
    d = load_movielens(tmp_path / "ml-1m")
    check(
        d,
        [[4, 5, 0], [0, 3, 4]],
        [1, 2],
        [48, 1193, 3408],
        names=["Pocahontas (1995)", "One Flew Over the Cuckoo's Nest (1975)", ""],
        user=(
            [[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]],
            ["age=1", "age=56", "gender=F", "gender=M", "occupation=10", "occupation=16"],
        ),
        item=(
            [[1, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]],
            ["genre=Animation", "genre=Children's", "genre=Drama", "genre=Musical"],
        ),
    )


ML_CSV = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
    "6,3,0.5,845553522\n6,1,3.0,845553522\n6,4,2.5,845553523\n",
    "movies.csv": "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
    '3,"American President, The (1995)",Comedy|Drama|Romance\n'
    '4,"Dangerous ""Minds"", Part 1 (1995)",(no genres listed)\n'
    '5,"Never, Rated (1995)",Horror\n',
}


def test_movielens_csv_layout_with_quoted_titles(tmp_path):
    d = load_movielens(write_zip(tmp_path / "ml-latest-small.zip", ML_CSV, "ml-latest-small/"))
    check(
        d,
        [[4, 4.5, 0], [3, 0.5, 2.5]],
        [1, 6],
        [1, 3, 4],
        names=[
            "Toy Story (1995)",
            "American President, The (1995)",
            'Dangerous "Minds", Part 1 (1995)',
        ],
        item=(
            [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]],
            ["genre=Adventure", "genre=Animation", "genre=Comedy", "genre=Drama", "genre=Romance"],
        ),
    )
    same(d, load_movielens(write(tmp_path / "ml-25m", ML_CSV)))
    assert load_movielens(tmp_path / "ml-25m", min_rating=3).user_items.toarray().tolist() == [
        [4, 4.5, 0],
        [3, 0, 0],
    ]


def test_movielens_recbole_atomic_layout(tmp_path):
    write(
        tmp_path / "ml-100k",
        {
            "ml-100k.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
            "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n",
            "ml-100k.user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"  # noqa: E501
            "196\t49\tM\twriter\t55105\n186\t39\tF\texecutive\t00000\n",
            "ml-100k.item": "item_id:token\tmovie_title:token_seq\trelease_year:token\t"
            "class:token_seq\n242\tKolya\t1996\tComedy\n"
            "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n",
        },
    )
    d = load_movielens(tmp_path / "ml-100k")
    check(
        d,
        [[0, 3], [3, 5]],
        [186, 196],
        [242, 302],
        names=["Kolya", "L.A. Confidential"],
        user=(
            [[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]],
            [
                "age=39",
                "age=49",
                "gender=F",
                "gender=M",
                "occupation=executive",
                "occupation=writer",
            ],
        ),
        item=(
            [[1, 0, 0, 0, 0], [0, 1, 1, 1, 1]],
            ["genre=Comedy", "genre=Crime", "genre=Film-Noir", "genre=Mystery", "genre=Thriller"],
        ),
    )
    assert load_movielens(tmp_path / "ml-100k", min_rating=4).user_items.nnz == 1


HETREC = {
    "user_artists.dat": "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n4\t51\t100\n"
    "2\t51\t7\n",
    "artists.dat": "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a\thttp://a.jpg\n"
    "52\tMorcheeba\thttp://b\t\n53\tAir\thttp://c\thttp://c.jpg\n",
    "tags.dat": "tagID\ttagValue\n1\tmetal\n2\tnew wave\n3\télectro\n".encode("latin-1"),
    "user_taggedartists.dat": "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t52\t3\t1\t4\t2009\n"
    "2\t51\t2\t1\t4\t2009\n4\t51\t2\t1\t4\t2009\n2\t53\t1\t1\t4\t2009\n",
}


def test_lastfm_hetrec_zip_with_names_and_tags(tmp_path):
    d = load_lastfm(write_zip(tmp_path / "hetrec2011-lastfm-2k.zip", HETREC))
    check(
        d,
        [[13890, 11690], [100, 0]],
        [2, 4],
        [51, 52],  # the repeated (2, 51) is summed
        names=["Duran Duran", "Morcheeba"],
        item=([[1, 0], [0, 1]], ["tag=new wave", "tag=électro"]),
    )  # metal: only artist 53
    same(d, load_lastfm(write(tmp_path / "lastfm", HETREC)))
    plays_only = load_lastfm(
        write(tmp_path / "bare", {"user_artists.dat": HETREC["user_artists.dat"]})
    )
    check(plays_only, [[13890, 11690], [100, 0]], [2, 4], [51, 52])


LASTFM_360K = {
    "usersha1-artmbid-artname-plays.tsv": "b2\tmbid-x\tBeta Band\t5\na1\t\tdie Ärzte\t7\n"
    "a1\tmbid-x\tThe Beta Band\t3\nb2\t\tdie Ärzte\t2\n"
    "b2\t\tdie Ärzte\t1\n",
    "usersha1-profile.tsv": "a1\tf\t22\tGermany\tFeb 1, 2007\nb2\tm\t\tUnited States\tDec 4, 2007\n"
    "c3\tf\t30\tCanada\tDec 4, 2007\n",
}


def test_lastfm_360k_tar_gz_and_tsv(tmp_path):
    archive = tmp_path / "lastfm-dataset-360K.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in LASTFM_360K.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo("lastfm-dataset-360K/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    d = load_lastfm(archive)
    # items keyed by MusicBrainz id, else by name; the name is the first one seen
    check(
        d,
        [[7, 3], [3, 5]],
        ["a1", "b2"],
        ["die Ärzte", "mbid-x"],
        names=["die Ärzte", "Beta Band"],
        user=(
            [[1, 1, 0, 1, 0], [0, 0, 1, 0, 1]],
            ["age=22", "country=Germany", "country=United States", "gender=f", "gender=m"],
        ),
    )
    folder = write(tmp_path / "360k", LASTFM_360K)
    same(d, load_lastfm(folder / "usersha1-artmbid-artname-plays.tsv"))


def test_blocks_of_a_few_bytes_give_the_same_data_and_line_numbers(tmp_path, monkeypatch):
    ml, lfm = write(tmp_path / "ml", ML_CSV), write(tmp_path / "lfm", LASTFM_360K)
    whole = load_movielens(ml), load_lastfm(lfm)
    monkeypatch.setattr(_delimited, "CHUNK", 7)
    same(whole[0], load_movielens(ml))
    same(whole[1], load_lastfm(lfm))
    (ml / "ratings.csv").write_text(ML_CSV["ratings.csv"] + "\n9,9,x,1\n")  # blank line 7
    with pytest.raises(ValueError, match=r"ratings\.csv, line 8: field 3 \('x'\)"):
        load_movielens(ml)


def test_errors_name_the_path_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_movielens(tmp_path / "nowhere")
    write(tmp_path / "other", {"readme.txt": "hello"})
    with pytest.raises(ValueError, match=r"u\.data, ratings\.dat, ratings\.csv, \*\.inter"):
        load_movielens(tmp_path / "other")
    with pytest.raises(ValueError, match=r"user_artists\.dat"):
        load_lastfm(tmp_path / "other")
    bad = "1\t2\t3\t4\n1\t3\t4\t5\n1\t4\t5\n"
    ml = write(tmp_path / "ml-100k", dict(ML_100K, **{"u.data": bad}))
    with pytest.raises(ValueError, match=r"u\.data, line 3: expected 4 fields .* found 3"):
        load_movielens(ml)
    write(ml, {"u.data": "1\t2\t3\t4\n", "u.item": "2|Short|x\n"})
    with pytest.raises(ValueError, match=r"u\.item, line 1: expected at least 24 fields"):
        load_movielens(ml)
    write(
        tmp_path / "lfm",
        dict(LASTFM_360K, **{"usersha1-artmbid-artname-plays.tsv": "a1\t\tx\t1\na1\t\ty\tmany\n"}),
    )
    with pytest.raises(ValueError, match=r"plays\.tsv, line 2: field 4 \('many'\)"):
        load_lastfm(tmp_path / "lfm")
    write(
        tmp_path / "het",
        {
            "user_artists.dat": "userID\tartistID\tweight\n2\t51\t1\n",
            "artists.dat": "id\tname\turl\tpictureURL\nx51\tA\tu\tp\n",
        },
    )
    with pytest.raises(ValueError, match=r"artists\.dat, line 2: field 1 \('x51'\)"):
        load_lastfm(tmp_path / "het")
    with pytest.raises(ValueError, match="'100k'.*'latest-small'"):
        fetch_movielens("5m", data_home=tmp_path)
    with pytest.raises(ValueError, match="'hetrec-2k'.*no published checksum"):
        fetch_lastfm("360k", data_home=tmp_path)


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server of in-memory files: yields (base url, files, list of requested paths)."""
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    files, hits = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files, hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetch_downloads_once_checks_and_caches(tmp_path, monkeypatch, server):
    base, files, hits = server
    archive = write_zip(tmp_path / "ml-100k.zip", ML_100K, "ml-100k/").read_bytes()
    files["/movielens/ml-100k.zip"] = archive
    sha256 = hashlib.sha256(archive).hexdigest()
    url = base + "/movielens/ml-100k.zip"
    monkeypatch.setitem(
        datasets.MOVIELENS_DOWNLOADS, "100k", Download(url, "sha256:" + sha256, len(archive))
    )
    monkeypatch.delenv("TACITREC_DATA_HOME", raising=False)
    expected = load_movielens(tmp_path / "ml-100k.zip")

    home = tmp_path / "cache"
    same(fetch_movielens(data_home=home), expected)
    assert hits == ["/movielens/ml-100k.zip"] and os.listdir(home) == ["ml-100k.zip"]
    same(fetch_movielens("100k", data_home=str(home)), expected)  # from the cache
    assert len(hits) == 1

    monkeypatch.setenv("TACITREC_DATA_HOME", str(tmp_path / "env-home"))
    assert fetch_movielens(min_rating=4).user_items.nnz == 3
    assert len(hits) == 2 and os.listdir(tmp_path / "env-home") == ["ml-100k.zip"]

    md5 = hashlib.md5(archive).hexdigest()  # an entry with an MD5 only
    monkeypatch.setitem(datasets.MOVIELENS_DOWNLOADS, "100k", Download(url, "md5:" + md5))
    same(fetch_movielens(data_home=tmp_path / "md5-home"), expected)
    assert len(hits) == 3

    files["/hetrec.zip"] = write_zip(tmp_path / "h.zip", HETREC).read_bytes()
    monkeypatch.setitem(
        datasets.LASTFM_DOWNLOADS,
        "hetrec-2k",
        Download(
            base + "/hetrec.zip", "sha256:" + hashlib.sha256(files["/hetrec.zip"]).hexdigest()
        ),
    )
    assert fetch_lastfm().user_items.toarray().tolist() == [[13890, 11690], [100, 0]]
    assert "hetrec.zip" in os.listdir(tmp_path / "env-home")


def test_fetch_rejects_a_wrong_checksum_or_size_and_keeps_nothing(tmp_path, monkeypatch, server):
    base, files, hits = server
    files["/ml-100k.zip"] = write_zip(tmp_path / "a.zip", ML_100K, "ml-100k/").read_bytes()
    actual = hashlib.sha256(files["/ml-100k.zip"]).hexdigest()
    monkeypatch.setitem(
        datasets.MOVIELENS_DOWNLOADS, "100k", Download(base + "/ml-100k.zip", "sha256:" + "0" * 64)
    )
    home = tmp_path / "cache"
    message = f"{base}/ml-100k.zip: expected sha256 0{{64}}, got {actual}"
    with pytest.raises(ChecksumError, match=message):
        fetch_movielens(data_home=home)
    assert os.listdir(home) == [] and len(hits) == 1
    monkeypatch.setitem(
        datasets.MOVIELENS_DOWNLOADS,
        "100k",
        Download(base + "/ml-100k.zip", "sha256:" + actual, 12),
    )
    with pytest.raises(ChecksumError, match="expected 12 bytes"):
        fetch_movielens(data_home=home)
    assert os.listdir(home) == [] and len(hits) == 2


def test_registry_urls_are_the_official_ones():
    assert {v: e.url.rsplit("/", 1)[1] for v, e in datasets.MOVIELENS_DOWNLOADS.items()} == {
        "100k": "ml-100k.zip",
        "1m": "ml-1m.zip",
        "10m": "ml-10m.zip",
        "20m": "ml-20m.zip",
        "25m": "ml-25m.zip",
        "latest-small": "ml-latest-small.zip",
    }
    for entry in [*datasets.MOVIELENS_DOWNLOADS.values(), *datasets.LASTFM_DOWNLOADS.values()]:
        assert entry.url.startswith("https://files.grouplens.org/datasets/")
        algorithm, digest = entry.checksum.split(":")
        assert algorithm == "sha256" and len(digest) == 64 and int(digest, 16) >= 0


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/data beside the repository")
def test_shared_benchmark_copies():
    ml = load_movielens(SHARED / "ml-100k")
    assert ml.user_items.shape == (943, 1682) and ml.user_items.nnz == 100_000
    assert ml.item_features.shape[0] == 1682 and ml.user_features.shape[0] == 943
    assert load_movielens(SHARED / "ml-100k", min_rating=4).user_items.nnz == 55_375
    lastfm = load_lastfm(SHARED / "lastfm-2k" / "user_artists.dat")
    assert lastfm.user_items.shape == (1892, 17632) and lastfm.user_items.nnz == 92_834


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_load_movielens_refuses_non_finite_ratings(tmp_path, value):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text(f"1\t2\t5\t881250949\n2\t3\t{value}\t881250949\n")
    with pytest.raises(ValueError, match="data row 2: the rating is .*not a finite number"):
        load_movielens(folder)
