//! The one place where Rust errors become Python exceptions (subclasses of the builtins).

use crate::error::Error;
use pyo3::exceptions::{
    PyIndexError, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::OutOfRange { .. } => PyIndexError::new_err(msg),
            Error::ThreadPool { .. } => PyRuntimeError::new_err(msg),
            Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
            // raised by the bindings' interruption path with the pending exception itself;
            // this is the fallback should a kernel report it otherwise
            Error::Interrupted => PyKeyboardInterrupt::new_err(msg),
            Error::Shape { .. }
            | Error::InvalidCsr { .. }
            | Error::NonFinite { .. }
            | Error::InvalidArgument { .. } => PyValueError::new_err(msg),
        }
    }
}
