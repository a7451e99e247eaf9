//! The Python extension module `tacitrec._core`. Each binding borrows and validates its arrays with
//! the GIL held, runs the kernel with the GIL released, and hands the Rust-owned result to NumPy
//! without copying. Logic belongs in the kernels, not here.

mod als;
mod bpr;
mod build;
mod convert;
mod defaults;
mod ease;
mod errors;
mod ids;
mod interrupt;
mod knn;
mod lightfm;
mod lmf;
mod metrics;
mod spectral;
mod topk;

use pyo3::prelude::*;

/// Forgets the cached thread pools: registered by the package with
/// `os.register_at_fork(after_in_child=...)`, since a forked child has none of their threads.
#[pyfunction]
fn _after_fork_in_child() {
    crate::parallel::forget_pools();
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // rust-numpy loads NumPy's C API on the first array it touches, and its borrow checker's
    // shared state on the first borrow, and panics if either fails (an import interrupted by
    // Ctrl-C, say): load both now, while the module is imported, so that no later call can
    // panic there.
    drop(numpy::PyArrayMethods::readonly(
        &numpy::PyArray1::<f32>::zeros(m.py(), 0, false),
    ));
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_THREADS", crate::parallel::MAX_THREADS)?;
    m.add("DEFAULTS", defaults::defaults(m.py())?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    topk::register(m)?;
    als::register(m)?;
    metrics::register(m)?;
    knn::register(m)?;
    bpr::register(m)?;
    lmf::register(m)?;
    lightfm::register(m)?;
    ease::register(m)?;
    spectral::register(m)?;
    ids::register(m)?;
    build::register(m)?;
    Ok(())
}
