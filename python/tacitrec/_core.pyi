"""Type stubs of the Rust extension module."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__version__: str
METRIC_NAMES: List[str]

#: The core's defaults under the Python names, keyed by ``"module.name"`` within the package
#: (compared with the Python signatures by the test suite).
DEFAULTS: Dict[str, Dict[str, Any]]

#: ``(indptr int64, indices int32, data float32, (n_rows, n_cols))``: a ``Csr`` or such a tuple.
_Csr = Tuple[np.ndarray, np.ndarray, np.ndarray, Tuple[int, int]]
#: ``[parameters, gradient accumulators, step accumulators]`` of one LightFM side.
_Side = Sequence[np.ndarray]
#: An ODE of the spectral filters: ``(solver, time, steps)``.
_Ode = Tuple[str, float, int]

def topk_dot(
    queries: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    liked: Optional[_Csr],
    items: Optional[np.ndarray],
    filter_items: Optional[np.ndarray],
    num_threads: int,
    cosine: bool = ...,
) -> Tuple[np.ndarray, np.ndarray]: ...
def factors_fingerprint(factors: np.ndarray) -> int: ...
def owned_copy(a: np.ndarray) -> np.ndarray: ...
def ranking_metrics_per_user(
    recs: np.ndarray, test: _Csr, k: int, n_items: int, num_threads: int
) -> np.ndarray: ...
def beyond_accuracy_per_user(
    recs: np.ndarray,
    k: int,
    item_values: np.ndarray,
    vectors: Optional[np.ndarray],
    num_threads: int,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def knn_fit(
    user_items: _Csr, k: int, similarity: str, k1: float, b: float, num_threads: int
) -> _Csr: ...
def knn_fit_memory(nnz: int, n_items: int, similarity: str, num_threads: int) -> int: ...
def rp3beta_fit_memory(nnz: int, n_users: int, n_items: int, num_threads: int) -> int: ...
def rp3beta_fit(
    user_items: _Csr, k: int, alpha: float, beta: float, normalize: bool, num_threads: int
) -> _Csr: ...
def knn_recommend(
    user_items: _Csr,
    similarity: _Csr,
    k: int,
    filter_liked: bool,
    items: Optional[np.ndarray],
    filter_items: Optional[np.ndarray],
    num_threads: int,
    similarity_validated: bool = ...,
) -> Tuple[np.ndarray, np.ndarray]: ...
def knn_similar_items(
    itemids: np.ndarray,
    similarity: _Csr,
    k: int,
    items: Optional[np.ndarray],
    filter_items: Optional[np.ndarray],
    num_threads: int,
    similarity_validated: bool = ...,
) -> Tuple[np.ndarray, np.ndarray]: ...
def weight(
    m: _Csr, scheme: str, docs: str, k1: float, b: float, num_threads: int
) -> np.ndarray: ...
def als_solve(
    c: _Csr,
    x: np.ndarray,
    y: np.ndarray,
    num_threads: int,
    gram: Optional[np.ndarray] = None,
    fixed_rows: Optional[int] = None,
    *,
    regularization: float,
    solver: str,
    cg_steps: int,
    unobserved_weight: Optional[float],
    regularization_exponent: float,
) -> None: ...
def als_gram(y: np.ndarray) -> np.ndarray: ...
def als_loss(
    c: _Csr,
    x: np.ndarray,
    y: np.ndarray,
    num_threads: int,
    *,
    regularization: float,
    unobserved_weight: Optional[float],
    regularization_exponent: float,
) -> float: ...
def als_ials_epoch(
    c: _Csr,
    x: np.ndarray,
    y: np.ndarray,
    num_threads: int,
    *,
    regularization: float,
    block_size: int,
    unobserved_weight: Optional[float],
    regularization_exponent: float,
) -> None: ...
def bpr_epoch(
    c: _Csr,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    num_threads: int,
    *,
    learning_rate: float,
    regularization: float,
    verify_negative_samples: bool,
    max_redraws: int,
    negative_sampling: str,
    use_weights: bool,
    deterministic: bool,
) -> Tuple[int, int, int, int]: ...
def bpr_fold_in(
    c: _Csr,
    ids: np.ndarray,
    y: np.ndarray,
    popularity: Optional[np.ndarray],
    epochs: int,
    seed: int,
    num_threads: int,
    *,
    learning_rate: float,
    regularization: float,
    verify_negative_samples: bool,
    max_redraws: int,
    negative_sampling: str,
) -> np.ndarray: ...
def lmf_half_step(
    c: _Csr,
    x: np.ndarray,
    g2: np.ndarray,
    y: np.ndarray,
    fixed: int,
    popularity: Optional[np.ndarray],
    ids: Optional[np.ndarray],
    seed: int,
    num_threads: int,
    *,
    learning_rate: float,
    regularization: float,
    neg_prop: int,
    max_negatives: "str | int | None",
) -> None: ...
def lightfm_epoch(
    interactions: _Csr,
    weights: Optional[np.ndarray],
    user_features: _Csr,
    item_features: _Csr,
    user: _Side,
    item: _Side,
    seed: int,
    num_threads: int,
    *,
    loss: str,
    k: int,
    n: int,
    learning_schedule: str,
    learning_rate: float,
    rho: float,
    epsilon: float,
    item_alpha: float,
    user_alpha: float,
    regularization: str,
    max_sampled: int,
    order: str,
) -> None: ...
def lightfm_pair_scores(
    users: np.ndarray,
    items: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    num_threads: int,
) -> np.ndarray: ...

#: The most threads a Rust thread pool gets (larger ``num_threads`` are served by this many).
MAX_THREADS: int

def _after_fork_in_child() -> None: ...
def ease_memory(n_items: int, dtype: str) -> Optional[int]: ...
def ease_fit_weights(
    user_items: _Csr, regularization: float, dtype: str, num_threads: int
) -> np.ndarray: ...
def ease_recommend(
    user_items: _Csr,
    weights: np.ndarray,
    k: int,
    filter_liked: bool,
    items: Optional[np.ndarray],
    filter_items: Optional[np.ndarray],
    num_threads: int,
) -> Tuple[np.ndarray, np.ndarray]: ...
def ease_sparsify(weights: np.ndarray, k: int, num_threads: int) -> _Csr: ...
def spectral_fit(
    user_items: _Csr,
    user_exponent: float,
    item_exponent: float,
    k: int,
    oversampling: int,
    iterations: int,
    seed: int,
    num_threads: int,
) -> Tuple[np.ndarray, _Csr, np.ndarray, np.ndarray]: ...
def spectral_fit_memory(n_users: int, n_items: int, nnz: int, k: int, oversampling: int) -> int: ...

class SpectralTiles:
    def __init__(self, graph: _Csr, graph_t: _Csr) -> None: ...

def spectral_recommend(
    user_items: _Csr,
    graph: _Csr,
    graph_t: _Csr,
    tiles: SpectralTiles,
    factors: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    k: int,
    filter_liked: bool,
    items: Optional[np.ndarray],
    filter_items: Optional[np.ndarray],
    num_threads: int,
    graph_validated: bool = ...,
    *,
    method: str,
    ideal_weight: float,
    coeffs: List[float],
    blur: _Ode,
    ideal: _Ode,
    sharpen: Optional[_Ode],
    final_sharpening: bool,
    t_point_combination: bool,
) -> Tuple[np.ndarray, np.ndarray]: ...

# ---- the streaming interaction reader (tacitrec.io) ----
class IdTable:
    def __init__(self, kind: str) -> None: ...
    def __len__(self) -> int: ...
    def encode_ints(self, what: str, values: np.ndarray) -> np.ndarray: ...
    def encode_bytes(
        self, what: str, offsets: np.ndarray, data: np.ndarray, count: bool
    ) -> np.ndarray: ...
    def take_counted(
        self, what: str, dict_codes: np.ndarray, indices: np.ndarray
    ) -> np.ndarray: ...
    def release_index(self) -> None: ...
    def counts(self) -> np.ndarray: ...
    def sorted_codes(self) -> Tuple[np.ndarray, np.ndarray]: ...
    def int_keys(self) -> np.ndarray: ...
    def byte_keys(self) -> Tuple[np.ndarray, np.ndarray]: ...
    def utf32_keys(self, what: str, order: np.ndarray) -> Tuple[np.ndarray, int]: ...

def csr_check(m: _Csr, what: str, repeats: bool = ...) -> None: ...
def csr_scatter(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: Optional[np.ndarray],
    row_rank: np.ndarray,
    col_rank: np.ndarray,
    first_row: int,
    next: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
) -> None: ...
def csr_sort_rows_sum_duplicates(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, num_threads: int
) -> int: ...
