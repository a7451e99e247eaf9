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
    /// An allocation of `bytes` for `what` failed, or exceeds what any machine can address;
    /// `cause` names the parameter or input size that asks for it (maps to `MemoryError`).
    #[error("cannot allocate {} for {what}: {cause}", human_bytes(*.bytes))]
    OutOfMemory {
        what: String,
        bytes: u128,
        cause: String,
    },
    /// The call was interrupted (a signal is pending in Python) and stopped early; its outputs
    /// are partly written (maps to the pending exception, `KeyboardInterrupt` for Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

/// `bytes` for people: "74.5 GiB (80000000000 bytes)".
fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {} ({bytes} bytes)", UNITS[unit])
    }
}

/// A vector of `len` copies of `value`, or [`Error::OutOfMemory`] (instead of an abort) naming
/// `what` it is for and the `cause` (the parameter or input size that asks for it, computed only
/// on failure). Every allocation whose size a user controls goes through here or
/// [`try_with_capacity`].
pub fn try_vec<T: Clone>(
    len: usize,
    value: T,
    what: &str,
    cause: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let mut v = try_with_capacity(len, what, cause)?;
    v.resize(len, value);
    Ok(v)
}

/// Numbers whose all-zero bit pattern is the value zero.
pub trait Zeroable: Copy {}
impl Zeroable for f32 {}
impl Zeroable for f64 {}
impl Zeroable for i32 {}
impl Zeroable for i64 {}
impl Zeroable for u32 {}
impl Zeroable for u64 {}

/// The size from which [`try_zeroed`] advises huge pages: 4 MiB, NumPy's threshold. Such an
/// allocation is fresh memory from the operating system, each small page of it faulted in on first
/// touch. On the benchmarks' VMs those faults made most of what a kNN fit's first call in a
/// process cost beyond its later ones (BM25, 80k x 10k clustered: 12,000 faults, 0.41-0.49 CPU s
/// against 0.36 for a later call; with huge pages 0.37-0.44). An array only partly touched (a
/// per-thread accumulator) then holds whole 2 MiB pages: the kNN fit's peak at 1M x 1M items was
/// the same (1596 MB).
const HUGE_FROM: usize = 4 << 20;

/// A vector of `len` zeros, or [`Error::OutOfMemory`] as [`try_vec`]. Allocated zeroed, as
/// `vec![0; len]` is: the operating system's pages come zero-filled, so no time is spent writing
/// zeros to memory the caller may only partly touch (a kNN accumulator, a scoring tile). From
/// [`HUGE_FROM`] bytes on, the memory is advised onto huge pages (see
/// [`advise_huge_pages`](crate::simd::advise_huge_pages)), as NumPy does for its arrays.
pub fn try_zeroed<T: Zeroable>(
    len: usize,
    what: &str,
    cause: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let oom = || Error::out_of_memory::<T>(len as u128, what, cause());
    if len == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let Ok(layout) = std::alloc::Layout::array::<T>(len) else {
        return Err(oom());
    };
    // SAFETY: the layout has a non-zero size (len > 0 and T is not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(oom());
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `len` values of T,
    // and all-zero bits are a valid T (Zeroable), so all `len` values are initialised.
    let v = unsafe { Vec::from_raw_parts(ptr, len, len) };
    if layout.size() >= HUGE_FROM {
        crate::simd::advise_huge_pages(&v);
    }
    Ok(v)
}

/// `0..len` as `u32` ids (an identity order or labelling, to be permuted), or
/// [`Error::OutOfMemory`] as [`try_vec`]. `len` must fit in `u32`.
pub fn try_ids(len: usize, what: &str, cause: impl FnOnce() -> String) -> Result<Vec<u32>> {
    let mut v = try_with_capacity(len, what, cause)?;
    v.extend(0..len as u32);
    Ok(v)
}

/// An empty vector with room for exactly `len` elements, or [`Error::OutOfMemory`].
pub fn try_with_capacity<T>(
    len: usize,
    what: &str,
    cause: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::out_of_memory::<T>(len as u128, what, cause()))?;
    Ok(v)
}

/// `a * b` elements, or [`Error::OutOfMemory`] when the product overflows (no machine could
/// hold it).
pub fn checked_len<T>(
    a: usize,
    b: usize,
    what: &str,
    cause: impl FnOnce() -> String,
) -> Result<usize> {
    a.checked_mul(b)
        .filter(|n| n.checked_mul(std::mem::size_of::<T>().max(1)).is_some())
        .ok_or_else(|| Error::out_of_memory::<T>(a as u128 * b as u128, what, cause()))
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

    /// [`Error::OutOfMemory`] for `len` elements of `T`.
    pub fn out_of_memory<T>(len: u128, what: &str, cause: impl ToString) -> Self {
        Error::OutOfMemory {
            what: what.to_string(),
            bytes: len.saturating_mul(std::mem::size_of::<T>() as u128),
            cause: cause.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_allocations_are_errors_naming_size_and_cause() {
        let e = try_vec(usize::MAX / 2, 0u8, "a buffer", || "K=7".to_string());
        let Err(e @ Error::OutOfMemory { .. }) = e else {
            panic!("expected OutOfMemory, got {e:?}"); // ok: test
        };
        let msg = e.to_string();
        assert!(msg.contains("a buffer") && msg.contains("K=7"), "{msg}");
        assert!(msg.contains("EiB") || msg.contains("PiB"), "{msg}");
        let e = checked_len::<u64>(usize::MAX / 4, 3, "x", || "N=3".to_string());
        assert!(matches!(e, Err(Error::OutOfMemory { .. })));
        assert_eq!(try_vec(3, 1u8, "x", String::new), Ok(vec![1, 1, 1]));
        assert_eq!(try_zeroed::<f64>(3, "x", String::new), Ok(vec![0.0; 3]));
        assert_eq!(try_zeroed::<i32>(0, "x", String::new), Ok(vec![]));
        assert!(matches!(
            try_zeroed::<u64>(usize::MAX / 4, "x", String::new),
            Err(Error::OutOfMemory { .. })
        ));
        assert_eq!(human_bytes(10), "10 bytes");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB (3221225472 bytes)");
    }
}
