#![no_main]
//! libFuzzer entry point of `tabula_fuzz::config` (see ../../src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| tabula_fuzz::config(data));
