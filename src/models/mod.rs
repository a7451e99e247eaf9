//! One file per algorithm. Models use the shared `sparse` and `topk` kernels and never walk CSR or
//! select top-k on their own.

pub mod als;
pub mod knn;
