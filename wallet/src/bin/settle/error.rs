//! The CLI's error: a stable kind (for scripts reading `--json` output) and a message for
//! people. Messages are lowercase, say what was wrong and, where it helps, what to do.

use std::fmt;

use settle_rpc::{ClientError, codes};
use settle_wallet::coins::BuildError;
use settle_wallet::descriptor::DescriptorError;
use settle_wallet::offer::OfferError;
use settle_wallet::pst::{PstDecodeError, PstError};
use settle_wallet::state::StateError;
use settle_wallet::store::StoreError;

/// Stable error kinds; `--json` prints them as `error.kind`.
pub mod kind {
    pub const USAGE: &str = "usage";
    pub const NO_WALLET: &str = "no_wallet";
    pub const WALLET_EXISTS: &str = "wallet_exists";
    pub const WRONG_PASSPHRASE: &str = "wrong_passphrase";
    pub const WALLET_FILE: &str = "wallet_file";
    pub const WALLET_BUSY: &str = "wallet_busy";
    pub const PASSPHRASE: &str = "passphrase";
    pub const MNEMONIC: &str = "mnemonic";
    pub const NODE_UNREACHABLE: &str = "node_unreachable";
    pub const BAD_CREDENTIALS: &str = "bad_credentials";
    pub const WRONG_CHAIN: &str = "wrong_chain";
    pub const NODE: &str = "node";
    pub const REJECTED: &str = "rejected";
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    pub const UNKNOWN_ASSET: &str = "unknown_asset";
    pub const BAD_AMOUNT: &str = "bad_amount";
    pub const BAD_ADDRESS: &str = "bad_address";
    pub const BAD_PST: &str = "bad_pst";
    pub const FOREIGN_PST: &str = "foreign_pst";
    pub const PST: &str = "pst";
    pub const INCOMPLETE: &str = "incomplete";
    pub const OFFER: &str = "offer";
    pub const ISSUER_KEY: &str = "issuer_key";
    pub const MULTISIG: &str = "multisig";
    pub const BUILD: &str = "build";
    pub const IO: &str = "io";
    /// The signing policy refused: the PST asks for more than the flow agreed to.
    pub const REFUSED: &str = "refused";
    /// A co-signing step needs confirmation: --yes, or a terminal to ask on.
    pub const NOT_CONFIRMED: &str = "not_confirmed";
}

#[derive(Debug)]
pub struct CliError {
    pub kind: &'static str,
    pub message: String,
}

impl CliError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        Self::new(kind::USAGE, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let k = match &e {
            StoreError::WrongPassphrase => kind::WRONG_PASSPHRASE,
            StoreError::AlreadyExists(_) => kind::WALLET_EXISTS,
            StoreError::Io { .. } => kind::IO,
            _ => kind::WALLET_FILE,
        };
        let message = match &e {
            StoreError::WrongPassphrase => {
                "wrong passphrase: the wallet file did not open (check SETTLE_PASSPHRASE or \
                 what you typed)"
                    .to_owned()
            }
            other => other.to_string(),
        };
        CliError::new(k, message)
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Store(s) => s.into(),
            other => CliError::new(kind::WALLET_FILE, other.to_string()),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let k = match &e {
            ClientError::Unreachable { .. } | ClientError::Timeout { .. } => kind::NODE_UNREACHABLE,
            ClientError::BadCredentials { .. } | ClientError::Cookie { .. } => {
                kind::BAD_CREDENTIALS
            }
            ClientError::Rpc(r) if r.code == codes::TX_REJECTED => kind::REJECTED,
            _ => kind::NODE,
        };
        let message = match &e {
            ClientError::Rpc(r) if r.code == codes::TX_REJECTED => {
                format!("the node rejected the transaction: {}", r.message)
            }
            ClientError::Rpc(r) => format!("the node answered with an error: {}", r.message),
            other => other.to_string(),
        };
        CliError::new(k, message)
    }
}

impl From<settle_wallet::policy::PolicyError> for CliError {
    fn from(e: settle_wallet::policy::PolicyError) -> Self {
        match e {
            settle_wallet::policy::PolicyError::Pst(p) => p.into(),
            other => CliError::new(kind::REFUSED, other.to_string()),
        }
    }
}

impl From<PstDecodeError> for CliError {
    fn from(e: PstDecodeError) -> Self {
        CliError::new(
            kind::BAD_PST,
            format!("not a valid pst ({}): {e}", e.name()),
        )
    }
}

impl From<PstError> for CliError {
    fn from(e: PstError) -> Self {
        let k = match &e {
            PstError::Incomplete(_) => kind::INCOMPLETE,
            PstError::ChainMismatch { .. } | PstError::NetworkMismatch { .. } => kind::FOREIGN_PST,
            _ => kind::PST,
        };
        CliError::new(k, e.to_string())
    }
}

impl From<OfferError> for CliError {
    fn from(e: OfferError) -> Self {
        match e {
            OfferError::Build(b) => b.into(),
            OfferError::Pst(p) => p.into(),
            OfferError::Policy(p) => p.into(),
            other => CliError::new(kind::OFFER, other.to_string()),
        }
    }
}

impl From<BuildError> for CliError {
    fn from(e: BuildError) -> Self {
        // Insufficient funds is normally reformatted with the asset's precision by the
        // caller (`Assets::insufficient`); this is the fallback in units.
        let k = match &e {
            BuildError::InsufficientFunds { .. } => kind::INSUFFICIENT_FUNDS,
            BuildError::ZeroAmount { .. } => kind::BAD_AMOUNT,
            _ => kind::BUILD,
        };
        CliError::new(k, e.to_string())
    }
}

impl From<DescriptorError> for CliError {
    fn from(e: DescriptorError) -> Self {
        CliError::new(kind::MULTISIG, e.to_string())
    }
}

impl From<settle_wallet::keys::KeyError> for CliError {
    fn from(e: settle_wallet::keys::KeyError) -> Self {
        CliError::new(kind::MNEMONIC, e.to_string())
    }
}
