//! Shared helpers for Settle's tests and benchmark harness.

pub mod asset_vectors;
