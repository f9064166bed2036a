#![no_main]
//! `cargo fuzz run --features libfuzzer chain_spec` (see fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| settle_fuzz::chain_spec(data));
