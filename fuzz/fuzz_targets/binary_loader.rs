#![no_main]

use libfuzzer_sys::fuzz_target;

// The checks live in the main crate (src/fuzz_checks.rs) so the stable corpus replay test runs them too.
fuzz_target!(|data: &[u8]| llama_index_rs::fuzz_checks::binary_loader(data));
