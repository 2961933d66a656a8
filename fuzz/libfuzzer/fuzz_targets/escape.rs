#![no_main]
//! libFuzzer entry point of `tabula_fuzz::escape` (see ../../src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| tabula_fuzz::escape(data));
