//! tacitrec's compute core: validated sparse views, batched top-k retrieval and ranking metrics,
//! parallel with rayon. Pure Rust; the Python bindings live in `python/` behind the `python` feature.

pub mod error;
pub mod ids;
mod linalg;
pub mod metrics;
pub mod models;
mod names;
pub mod parallel;
mod simd;
pub mod sparse;
pub mod topk;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
