//! The Settle wallet library: keys, the encrypted wallet file, coin selection and the
//! transaction builder, and partially signed transactions (PSTs).
//!
//! Everything here is a pure core except the wallet file's read and write: no network, no
//! node. The CLI (`settle`) sits on top and talks to a node through the RPC types.
//! The normative text is `spec/wallet.md` and `spec/pst.md`.

#[cfg(test)]
mod attacks;
pub mod coins;
pub mod descriptor;
pub mod keys;
pub mod lending;
pub mod offer;
pub mod policy;
pub mod pst;
pub mod scan;
pub mod state;
pub mod store;
#[cfg(test)]
mod test_support;
