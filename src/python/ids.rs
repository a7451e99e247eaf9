//! Bindings of the streaming id encoder (`src/ids.rs`).

use super::convert::slice;
use crate::error::{try_zeroed, Error};
use crate::ids::{IdKind, IdTable};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

/// Arrow string offsets: int32 (`string`) or int64 (`large_string`).
#[derive(FromPyObject)]
enum Offsets<'py> {
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
}

fn codes(n: usize, what: &str) -> Result<Vec<i32>, Error> {
    try_zeroed(n, "id codes", || format!("{n} values of {what}"))
}

/// The distinct ids seen so far (`kind` "int" or "bytes"), their codes in order of first
/// appearance and how many rows each had.
#[pyclass(module = "tacitrec._core", name = "IdTable")]
pub struct PyIdTable(IdTable);

#[pymethods]
impl PyIdTable {
    #[new]
    fn new(kind: &str) -> PyResult<Self> {
        let kind = match kind {
            "int" => IdKind::Ints,
            "bytes" => IdKind::Bytes,
            _ => return Err(Error::invalid("kind", "must be 'int' or 'bytes'").into()),
        };
        Ok(PyIdTable(IdTable::new(kind)))
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    /// The codes of integer ids (int32), each counted.
    fn encode_ints<'py>(
        &mut self,
        py: Python<'py>,
        what: &str,
        values: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let v = slice(what, &values)?;
        let mut out = codes(v.len(), what)?;
        let t = &mut self.0;
        py.detach(|| t.encode_ints(what, v, &mut out))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// The codes of the strings of Arrow's layout (`offsets` into the bytes `data`), each
    /// counted when `count`.
    fn encode_bytes<'py>(
        &mut self,
        py: Python<'py>,
        what: &str,
        offsets: Offsets<'py>,
        data: PyReadonlyArray1<'py, u8>,
        count: bool,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let bytes = slice(what, &data)?;
        let t = &mut self.0;
        let out = match &offsets {
            Offsets::I32(o) => {
                let o = slice(what, o)?;
                let mut out = codes(o.len().saturating_sub(1), what)?;
                py.detach(|| t.encode_bytes(what, o, bytes, &mut out, count))?;
                out
            }
            Offsets::I64(o) => {
                let o = slice(what, o)?;
                let mut out = codes(o.len().saturating_sub(1), what)?;
                py.detach(|| t.encode_bytes(what, o, bytes, &mut out, count))?;
                out
            }
        };
        Ok(PyArray1::from_vec(py, out))
    }

    /// `dict_codes[indices]`, each counted: the rows of a dictionary-encoded column.
    fn take_counted<'py>(
        &mut self,
        py: Python<'py>,
        what: &str,
        dict_codes: PyReadonlyArray1<'py, i32>,
        indices: PyReadonlyArray1<'py, i32>,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let d = slice(what, &dict_codes)?;
        let i = slice(what, &indices)?;
        let mut out = codes(i.len(), what)?;
        let t = &mut self.0;
        py.detach(|| t.take_counted(what, d, i, &mut out))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Frees the hash index: ids, codes and counts stay; nothing more can be encoded.
    fn release_index(&mut self) {
        self.0.release_index();
    }

    /// Rows per id, by code (int64).
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.0.counts())
    }

    /// `(order, rank)`: the codes of the counted ids sorted by id (int64), and each code's
    /// position among them (int32, -1 when never counted).
    fn sorted_codes<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i32>>) {
        let t = &self.0;
        let (order, rank) = py.detach(|| t.sorted_codes());
        (PyArray1::from_vec(py, order), PyArray1::from_vec(py, rank))
    }

    /// The integer ids by code.
    fn int_keys<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_slice(py, self.0.int_keys())
    }

    /// The string ids of the codes `order` as `(code points uint32 of len(order) x width,
    /// width)`: NumPy's `<U{width}` array once viewed so.
    fn utf32_keys<'py>(
        &self,
        py: Python<'py>,
        what: &str,
        order: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<(Bound<'py, PyArray1<u32>>, usize)> {
        let o = slice("order", &order)?;
        let t = &self.0;
        let (codes, width) = py.detach(|| t.utf32_keys(what, o))?;
        Ok((PyArray1::from_vec(py, codes), width))
    }

    /// The string ids by code as `(offsets int64, bytes uint8)` (Arrow's large_string layout).
    fn byte_keys<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<u8>>) {
        let (starts, bytes) = self.0.byte_keys();
        let offsets: Vec<i64> = starts.iter().map(|&s| s as i64).collect();
        (
            PyArray1::from_vec(py, offsets),
            PyArray1::from_slice(py, bytes),
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIdTable>()
}
