//! The crate's one error type. Variants carry the names, shapes and ids involved so that the
//! Python layer can raise a message that tells the user what to fix. Mapped to Python exceptions in
//! one place: `src/python/errors.rs`.

use thiserror::Error;

/// Result alias used by every kernel.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum Error {
    /// An array has the wrong length or shape (maps to `ValueError`).
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    /// An id or index is negative or beyond its bound (maps to `IndexError`).
    #[error("{what}: index {index} is out of range for size {bound}")]
    OutOfRange {
        what: String,
        index: i64,
        bound: usize,
    },
    /// A CSR structure is malformed: indptr not monotone, not starting at 0, or not ending at nnz
    /// (maps to `ValueError`).
    #[error("{what}: invalid CSR structure: {reason}")]
    InvalidCsr { what: String, reason: String },
    /// A value is NaN or infinite where finite numbers are required (maps to `ValueError`).
    #[error("{what}: contains a non-finite value (NaN or inf) at position {position}")]
    NonFinite { what: String, position: usize },
    /// An argument has a value the kernel cannot use (maps to `ValueError`).
    #[error("{what}: {reason}")]
    InvalidArgument { what: String, reason: String },
    /// The thread pool could not be created (maps to `RuntimeError`).
    #[error("could not create a thread pool with {threads} threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}

impl Error {
    pub fn shape(what: &str, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            what: what.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    pub fn out_of_range(what: &str, index: i64, bound: usize) -> Self {
        Error::OutOfRange {
            what: what.to_string(),
            index,
            bound,
        }
    }

    pub fn invalid_csr(what: &str, reason: impl ToString) -> Self {
        Error::InvalidCsr {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn invalid(what: &str, reason: impl ToString) -> Self {
        Error::InvalidArgument {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Fails with [`Error::NonFinite`] if any value is NaN or infinite.
pub fn check_finite(what: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(position) => Err(Error::NonFinite {
            what: what.to_string(),
            position,
        }),
    }
}
