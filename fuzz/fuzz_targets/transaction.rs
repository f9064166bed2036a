#![no_main]
//! `cargo fuzz run --features libfuzzer transaction` (see fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| settle_fuzz::transaction(data));
