#![no_main]
//! `cargo fuzz run --features libfuzzer contract` (see fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| settle_fuzz::contract(data));
