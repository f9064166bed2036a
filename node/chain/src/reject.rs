//! Why a transaction was refused, classified so the network layer knows whom to blame.

use std::fmt;

/// The class of a rejection. It tells the caller what to do with the transaction and
/// with the peer that sent it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectClass {
    /// Breaks a consensus rule: never valid in any block at or after this height. A
    /// peer that relays it is at fault (except for `expired`, which a peer may relay
    /// in good faith a moment before the expiry height passes).
    Consensus,
    /// Valid, but this node's local policy refuses it (mempool limits, a full block).
    Policy,
    /// Spends a coin (or reissues an asset) this node does not know: the parent may not
    /// have arrived yet, or the coin was spent in an earlier block.
    MissingInputs,
    /// Conflicts with another transaction: spends a coin an earlier transaction in the
    /// same block (or in the mempool) already spends.
    Conflict,
    /// Not valid yet (lock time, relative lock time), but may become valid later.
    Premature,
}

impl RejectClass {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectClass::Consensus => "consensus",
            RejectClass::Policy => "policy",
            RejectClass::MissingInputs => "missing_inputs",
            RejectClass::Conflict => "conflict",
            RejectClass::Premature => "premature",
        }
    }
}

impl fmt::Display for RejectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused transaction: the class, a stable code (see `spec/chain.md` for the list)
/// and a message naming the input, outpoint, asset and amounts involved.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    pub class: RejectClass,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(class: RejectClass, code: &'static str, message: impl Into<String>) -> Self {
        Rejection {
            class,
            code,
            message: message.into(),
        }
    }

    pub fn consensus(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RejectClass::Consensus, code, message)
    }

    pub fn policy(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RejectClass::Policy, code, message)
    }

    pub fn missing_inputs(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RejectClass::MissingInputs, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RejectClass::Conflict, code, message)
    }

    pub fn premature(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RejectClass::Premature, code, message)
    }
}

/// Every rejection code this crate produces, with its class: the table in
/// `spec/chain.md` and the tests are checked against it.
pub const CODES: &[(&str, RejectClass)] = &[
    ("bad-version", RejectClass::Consensus),
    ("no-inputs", RejectClass::Consensus),
    ("no-outputs", RejectClass::Consensus),
    ("oversize", RejectClass::Consensus),
    ("zero-output", RejectClass::Consensus),
    ("zero-issuance", RejectClass::Consensus),
    ("duplicate-input", RejectClass::Consensus),
    ("null-input", RejectClass::Consensus),
    ("null-input-witness", RejectClass::Consensus),
    ("bad-contract", RejectClass::Consensus),
    ("duplicate-asset", RejectClass::Consensus),
    ("expired", RejectClass::Consensus),
    ("non-final", RejectClass::Premature),
    ("double-spend", RejectClass::Conflict),
    ("missing-inputs", RejectClass::MissingInputs),
    ("non-bip68-final", RejectClass::Premature),
    ("unknown-asset", RejectClass::MissingInputs),
    ("not-reissuable", RejectClass::Consensus),
    ("unauthorised-issuer", RejectClass::Consensus),
    ("bad-issuer-signature", RejectClass::Consensus),
    ("supply-overflow", RejectClass::Consensus),
    ("unbalanced", RejectClass::Consensus),
    ("script-failed", RejectClass::Consensus),
    ("block-full", RejectClass::Policy),
    ("bad-membership", RejectClass::Consensus),
    ("membership-activation", RejectClass::Consensus),
    ("membership-threshold", RejectClass::Consensus),
    ("membership-base", RejectClass::Conflict),
    ("membership-pending", RejectClass::Conflict),
];
