//! One file per algorithm. Models use the shared `sparse` and `topk` kernels and never walk CSR or
//! select top-k on their own; the SGD models share sampling and generators in `sgd`.

pub mod als;
pub mod bpr;
pub mod ease;
pub mod knn;
pub mod lightfm;
pub mod lmf;
pub mod sgd;
pub mod spectral;
