//! Top-k retrieval: exact selection ([`TopK`], and the amortised [`TopKBuffer`] for many interleaved
//! selections), candidate sets with filters ([`Candidates`]), and the
//! one batched driver ([`recommend_batch`]) that every model uses, fed by a [`BlockScorer`] (the
//! factor models' [`DotScorer`] computes scores with a GEMM per tile, or streams the items for
//! calls of a few queries).

mod batch;
mod dot;
mod quant;
mod select;

pub(crate) use batch::{filled, score_overflow};
pub use batch::{recommend_batch, BlockScorer, Candidates, TileLayout, TopKResult};
pub use dot::{DotScorer, TileScratch};
pub use quant::{
    chain_matches_gemm, exact_dot, first_pass_applies, recommend_dot, DotParams, FirstPass,
    MAX_FACTORS, MIN_QUERIES, WORTH_QUERIES,
};
pub(crate) use select::{from_rank_key, ordered_bits, rank_key};
pub use select::{top_k, TopK, TopKBuffer};
