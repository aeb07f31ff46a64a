//! Freeing large things off the caller's thread.

/// Drops `value` on a short-lived background thread. Freeing a loaded store (tens of thousands of
/// allocations) or closing a replaced file (the last close frees its blocks) takes milliseconds that
/// the caller, often holding the GIL, need not wait for. If no thread can be started, `value` is
/// dropped here.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("llama-index-rs-release".into())
        .spawn(move || drop(value));
}
