"""Type stubs of the Rust extension module."""

from typing import List, Optional, Tuple

import numpy as np

__version__: str
METRIC_NAMES: List[str]

_Csr = Tuple[np.ndarray, np.ndarray, np.ndarray]

def topk_dot(
    queries: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    liked: Optional[_Csr] = None,
    items: Optional[np.ndarray] = None,
    filter_items: Optional[np.ndarray] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]: ...
def ranking_metrics_per_user(
    recs: np.ndarray, test: _Csr, k: int, n_items: int, num_threads: int = 0
) -> np.ndarray: ...
def beyond_accuracy_per_user(
    recs: np.ndarray,
    k: int,
    item_values: np.ndarray,
    vectors: Optional[np.ndarray] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def knn_fit(
    user_items: _Csr,
    n_users: int,
    n_items: int,
    k: int,
    similarity: str,
    k1: float = 1.2,
    b: float = 0.75,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def knn_recommend(
    user_items: _Csr,
    n_queries: int,
    similarity: _Csr,
    n_items: int,
    k: int,
    filter_liked: bool = True,
    items: Optional[np.ndarray] = None,
    filter_items: Optional[np.ndarray] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]: ...
def knn_similar_items(
    itemids: np.ndarray,
    similarity: _Csr,
    n_items: int,
    k: int,
    items: Optional[np.ndarray] = None,
    filter_items: Optional[np.ndarray] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]: ...
def weight(
    m: _Csr,
    n_rows: int,
    n_cols: int,
    scheme: str,
    docs: str = "rows",
    k1: float = 100.0,
    b: float = 0.8,
    num_threads: int = 0,
) -> np.ndarray: ...
def als_solve(
    c: _Csr,
    x: np.ndarray,
    y: np.ndarray,
    regularization: float,
    cg_steps: int,
    num_threads: int = 0,
) -> None: ...
def als_loss(
    c: _Csr, x: np.ndarray, y: np.ndarray, regularization: float, num_threads: int = 0
) -> float: ...
def bpr_epoch(
    c: _Csr,
    x: np.ndarray,
    y: np.ndarray,
    learning_rate: float,
    regularization: float,
    verify_negative_samples: bool,
    max_redraws: int,
    uniform: bool,
    use_weights: bool,
    deterministic: bool,
    seed: int,
    num_threads: int = 0,
) -> Tuple[int, int, int, int]: ...
def bpr_fold_in(
    c: _Csr,
    ids: np.ndarray,
    y: np.ndarray,
    learning_rate: float,
    regularization: float,
    verify_negative_samples: bool,
    max_redraws: int,
    uniform: bool,
    popularity: Optional[np.ndarray],
    epochs: int,
    seed: int,
    num_threads: int = 0,
) -> np.ndarray: ...
def lmf_half_step(
    c: _Csr,
    x: np.ndarray,
    g2: np.ndarray,
    y: np.ndarray,
    fixed: int,
    learning_rate: float,
    regularization: float,
    neg_prop: int,
    max_negatives: Optional[int],
    popularity: Optional[np.ndarray],
    ids: Optional[np.ndarray],
    seed: int,
    num_threads: int = 0,
) -> None: ...
def lightfm_epoch(
    interactions: _Csr,
    weights: Optional[np.ndarray],
    user_features: _Csr,
    item_features: _Csr,
    user_params: np.ndarray,
    user_grad: np.ndarray,
    user_step: np.ndarray,
    item_params: np.ndarray,
    item_grad: np.ndarray,
    item_step: np.ndarray,
    loss: str,
    k: int,
    n: int,
    schedule: str,
    learning_rate: float,
    rho: float,
    epsilon: float,
    item_alpha: float,
    user_alpha: float,
    max_sampled: int,
    seed: int,
    num_threads: int = 1,
) -> None: ...

#: The most threads a Rust thread pool gets (larger ``num_threads`` are served by this many).
MAX_THREADS: int

def _after_fork_in_child() -> None: ...
def ease_memory(n_items: int, dtype: str) -> Optional[int]: ...
def ease_fit_weights(
    user_items: _Csr,
    n_users: int,
    n_items: int,
    regularization: float,
    dtype: str = "float32",
    num_threads: int = 0,
) -> np.ndarray: ...
def ease_recommend(
    user_items: _Csr,
    n_queries: int,
    weights: np.ndarray,
    n_items: int,
    k: int,
    filter_liked: bool = True,
    items: Optional[np.ndarray] = None,
    filter_items: Optional[np.ndarray] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]: ...
def rp3beta_fit(
    user_items: _Csr,
    n_users: int,
    n_items: int,
    k: int,
    alpha: float,
    beta: float,
    normalize: bool,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def spectral_fit(
    user_items: _Csr,
    n_users: int,
    n_items: int,
    user_exponent: float,
    item_exponent: float,
    k: int,
    oversampling: int,
    iterations: int,
    seed: int,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
def spectral_recommend(
    user_items: _Csr,
    n_queries: int,
    graph: _Csr,
    graph_t: _Csr,
    n_users: int,
    n_items: int,
    factors: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    method: str,
    ideal_weight: float,
    coeffs: List[float],
    blur: Tuple[str, float, int],
    ideal: Tuple[str, float, int],
    sharpen: Optional[Tuple[str, float, int]],
    final_sharpening: bool,
    t_point_combination: bool,
    k: int,
    filter_liked: bool = True,
    items: Optional[np.ndarray] = None,
    filter_items: Optional[np.ndarray] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]: ...
