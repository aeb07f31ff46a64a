//! Reading a Python `list` of `float`s (what LlamaIndex hands over as a node's embedding) into f32.
//!
//! Through the stable ABI each value costs two calls (`PyList_GetItem`, `PyFloat_AsDouble`) plus a
//! reference count round trip: `add` of 10k x 768 spent 80% of its time there. The list and float
//! object layouts (`ob_item`, `ob_fval`) have not changed since CPython 3.0 in the builds that can
//! load an abi3 module (not free-threaded, not trace-refs), but the limited API does not promise
//! them, so they are used only after a self-check against the API functions on live objects; if the
//! check fails the API path runs. Either way no Python code runs while a list is read (only exact
//! `float` items are accepted), so it cannot change under the loop.

use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyList};

use crate::vectors::OwnedRows;

/// From this many floats on, `rows_from_float_lists` reads on the pool: at ~4 ns a float (each a
/// separate heap object) that is ~0.5 ms of work, more than waking the pool costs.
const PARALLEL_FLOATS: usize = 1 << 17;

/// How many items ahead `read_exact_floats` prefetches the float objects. Each value sits in its own
/// heap object behind a pointer, and the hardware prefetchers do not run ahead of pointer loads: 8
/// ahead took 10-20% less time than none for 10k x 768 lists (median of 25, three alternating
/// rounds; 16 and 32 were no better).
const PREFETCH_AHEAD: usize = 8;

/// `PyListObject`'s layout: `PyObject_VAR_HEAD`, then the item array.
#[repr(C)]
struct ListLayout {
    ob_refcnt: ffi::Py_ssize_t,
    ob_type: *mut ffi::PyTypeObject,
    ob_size: ffi::Py_ssize_t,
    ob_item: *mut *mut ffi::PyObject,
}

/// `PyFloatObject`'s layout: `PyObject_HEAD`, then the value.
#[repr(C)]
struct FloatLayout {
    ob_refcnt: ffi::Py_ssize_t,
    ob_type: *mut ffi::PyTypeObject,
    ob_fval: f64,
}

/// Whether `ListLayout` and `FloatLayout` describe this interpreter's objects, checked once on live
/// objects against what the API functions return.
fn layouts_verified(py: Python<'_>) -> bool {
    static VERIFIED: OnceLock<bool> = OnceLock::new();
    *VERIFIED.get_or_init(|| {
        let probe = [1.5, -2.25, 1e300, f64::from_bits(0x0123_4567_89ab_cdef)];
        let Ok(list) = PyList::new(py, probe) else { return false };
        // SAFETY: `list` is a live list of live floats and the GIL is held; the reads stay inside the
        // objects as long as the layouts are at least as large as declared, which holds for every
        // CPython `list` (5 words) and `float` (3 words) object.
        unsafe {
            let raw = list.as_ptr().cast::<ListLayout>();
            if ffi::PyList_Size(list.as_ptr()) != (*raw).ob_size || (*raw).ob_size != probe.len() as ffi::Py_ssize_t {
                return false;
            }
            probe.iter().enumerate().all(|(i, &want)| {
                let item = ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t);
                !item.is_null()
                    && *(*raw).ob_item.add(i) == item
                    && ffi::Py_TYPE(item) == std::ptr::addr_of_mut!(ffi::PyFloat_Type)
                    && (*item.cast::<FloatLayout>()).ob_fval.to_bits() == want.to_bits()
                    && ffi::PyFloat_AsDouble(item).to_bits() == want.to_bits()
            })
        }
    })
}

/// Appends `row`'s values (converted by `from_f64`) if it is an exact `list` of exact `float`s, else
/// returns false (with some values possibly appended: the caller truncates and takes the general
/// path).
#[inline]
pub(crate) fn extend_from_float_list<T>(
    data: &mut Vec<T>,
    row: &Bound<'_, PyAny>,
    from_f64: impl Fn(f64) -> T,
) -> bool {
    let Ok(list) = row.cast_exact::<PyList>() else {
        return false;
    };
    let n = list.len();
    data.reserve(n);
    if !layouts_verified(row.py()) {
        for item in list.iter() {
            match item.cast_exact::<PyFloat>() {
                Ok(x) => data.push(from_f64(x.value())),
                Err(_) => return false,
            }
        }
        return true;
    }
    // SAFETY: the layouts were verified on this interpreter; the GIL is held and no Python code runs
    // in the loop, so the list keeps its `n` items and each item stays alive while it is read.
    unsafe {
        read_exact_floats((*list.as_ptr().cast::<ListLayout>()).ob_item, n, |_, x| {
            data.push(from_f64(x))
        })
    }
}

/// Hands the values of the `n` items at `items` to `put(index, value)` in order while they are
/// exact floats; false at the first item that is not one. No Python API call, no reference count:
/// callable from any thread.
///
/// # Safety
/// `layouts_verified` returned true; `items` points to `n` live objects that nothing changes or
/// frees during the call.
unsafe fn read_exact_floats(items: *const *mut ffi::PyObject, n: usize, mut put: impl FnMut(usize, f64)) -> bool {
    let float_type = std::ptr::addr_of_mut!(ffi::PyFloat_Type);
    for j in 0..n {
        #[cfg(target_arch = "x86_64")]
        if j + PREFETCH_AHEAD < n {
            // SAFETY: a hint on the address of a live item (in bounds: checked above); never faults.
            unsafe {
                let ahead = (*items.add(j + PREFETCH_AHEAD)).cast::<i8>();
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ahead);
            }
        }
        // SAFETY: per the function contract; the first two words of every object match
        // `FloatLayout`'s, and `ob_fval` is read only from an exact float.
        let item = unsafe { (*items.add(j)).cast::<FloatLayout>() };
        if unsafe { (*item).ob_type } != float_type {
            return false;
        }
        put(j, unsafe { (*item).ob_fval });
    }
    true
}

/// A list's item array, shared with the pool threads of `rows_from_float_lists`.
struct Items(*const *mut ffi::PyObject);

// SAFETY: only read, by pool threads, while the thread that made it holds the GIL and waits for them
// (see `rows_from_float_lists`).
unsafe impl Send for Items {}
unsafe impl Sync for Items {}

/// `lists` as rows when every one is an exact `list` of `dim` exact `float`s (else `None`: the
/// caller takes the general path, which also reports what is wrong). Large batches are read by the
/// pool while this thread holds the GIL and blocks in the pool call, so no Python code can run:
/// every list keeps its items and every float its value while the workers read them through the
/// verified layouts. The workers touch no reference counts and call no Python API.
pub(crate) fn rows_from_float_lists(py: Python<'_>, lists: &[Bound<'_, PyAny>], dim: usize) -> Option<OwnedRows> {
    if !layouts_verified(py) {
        return None;
    }
    let mut items = Vec::with_capacity(lists.len());
    for row in lists {
        let list = row.cast_exact::<PyList>().ok()?;
        if list.len() != dim {
            return None;
        }
        // SAFETY: a live list (GIL held) with the verified layout.
        items.push(Items(unsafe { (*list.as_ptr().cast::<ListLayout>()).ob_item }));
    }
    let parallel = lists.len() * dim >= PARALLEL_FLOATS;
    OwnedRows::filled(lists.len(), dim, parallel, |i, out| {
        // SAFETY: layouts verified; list i has `dim` = `out.len()` live items, and nothing can change
        // or free them (see the function comment).
        unsafe { read_exact_floats(items[i].0, out.len(), |j, x| out[j] = x as f32) }
    })
}
