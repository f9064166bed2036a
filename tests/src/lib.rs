//! Shared helpers for Settle's tests and benchmark harness.
