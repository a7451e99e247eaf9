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
