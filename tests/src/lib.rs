//! Shared helpers for Settle's tests and benchmark harness.

pub mod asset_vectors;
pub mod lending;
pub mod node;
pub mod rogue;
pub mod wallet;
