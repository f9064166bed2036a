//! Addresses: the bech32m text form of an output program, with a per-network prefix.
//!
//! `address = bech32m(hrp, [version] ++ program)`: the data part is the bytes of the
//! version followed by the program, converted to 5-bit groups like any bech32 payload
//! (the version is a whole byte, not a separate 5-bit symbol as in segwit). Every
//! version uses the bech32m checksum. See `spec/addresses.md`.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::{
    CheckedHrpstring, ChecksumError, UncheckedHrpstring, UncheckedHrpstringError,
};
use bech32::{Bech32, Bech32m, Hrp};
use secp256k1::XOnlyPublicKey;

use crate::opcodes::{OP_0, OP_1};
use crate::templates::{ScriptKindRef, classify_ref, p2k_from_bytes, p2sh_from_hash};

/// Pay-to-script-hash: the program is `SHA256(witness script)`.
pub const VERSION_SCRIPT_HASH: u8 = 0;
/// Pay-to-key: the program is a 32-byte x-only key.
pub const VERSION_KEY: u8 = 1;
/// Program length of both defined versions.
pub const PROGRAM_BYTES: usize = 32;

/// A Settle network. Each has its own address prefix, so coins cannot be sent to an
/// address of the wrong network by mistake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Network {
    Main,
    Test,
    Dev,
}

impl Network {
    pub const ALL: [Network; 3] = [Network::Main, Network::Test, Network::Dev];

    /// The bech32 human-readable part of addresses on this network.
    pub const fn hrp(self) -> &'static str {
        match self {
            Network::Main => "stl",
            Network::Test => "tstl",
            Network::Dev => "dstl",
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Network::Main => "main",
            Network::Test => "test",
            Network::Dev => "dev",
        }
    }

    /// The network whose prefix is `hrp` (lowercase).
    pub fn from_hrp(hrp: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.hrp() == hrp)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network name that is not main, test or dev.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network {0:?}: expected main, test or dev")]
pub struct NetworkParseError(pub String);

impl FromStr for Network {
    type Err = NetworkParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| NetworkParseError(s.chars().take(40).collect()))
    }
}

impl serde::Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a string or script is not a valid address. [`AddressError::name`] gives a stable
/// name for the vectors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("malformed address: {0}")]
    Malformed(String),
    #[error("unknown address prefix {0:?}: expected stl (main), tstl (test) or dstl (dev)")]
    UnknownPrefix(String),
    #[error("address is for the {found} network (prefix {}), not the {expected} network (prefix {})", found.hrp(), expected.hrp())]
    WrongNetwork { expected: Network, found: Network },
    #[error("address has a bech32 checksum; settle addresses use bech32m")]
    NotBech32m,
    #[error("invalid address checksum (mistyped or truncated?)")]
    Checksum,
    #[error("invalid padding at the end of the address data")]
    Padding,
    #[error("address has no version byte")]
    MissingVersion,
    #[error(
        "unknown address version {0}: only 0 (pay-to-script-hash) and 1 (pay-to-key) are defined"
    )]
    UnknownVersion(u8),
    #[error("version {version} address program is {length} bytes, expected {PROGRAM_BYTES}")]
    ProgramLength { version: u8, length: usize },
    #[error("pay-to-key address program is not a valid x-only public key")]
    InvalidKey,
    #[error("output script is not pay-to-key or pay-to-script-hash and has no address")]
    NotAddressable,
}

impl AddressError {
    /// A stable name for the test vectors.
    pub fn name(&self) -> &'static str {
        match self {
            AddressError::Malformed(_) => "MALFORMED",
            AddressError::UnknownPrefix(_) => "UNKNOWN_PREFIX",
            AddressError::WrongNetwork { .. } => "WRONG_NETWORK",
            AddressError::NotBech32m => "NOT_BECH32M",
            AddressError::Checksum => "CHECKSUM",
            AddressError::Padding => "PADDING",
            AddressError::MissingVersion => "MISSING_VERSION",
            AddressError::UnknownVersion(_) => "UNKNOWN_VERSION",
            AddressError::ProgramLength { .. } => "PROGRAM_LENGTH",
            AddressError::InvalidKey => "INVALID_KEY",
            AddressError::NotAddressable => "NOT_ADDRESSABLE",
        }
    }
}

/// A pay-to-key or pay-to-script-hash output program on a network. Fields are private
/// so every `Address` is valid and displays without error.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Address {
    network: Network,
    version: u8,
    program: Vec<u8>,
}

impl Address {
    /// Checks and builds an address. A pay-to-key program must be a valid x-only key.
    pub fn new(network: Network, version: u8, program: Vec<u8>) -> Result<Address, AddressError> {
        if version != VERSION_KEY && version != VERSION_SCRIPT_HASH {
            return Err(AddressError::UnknownVersion(version));
        }
        let key: [u8; PROGRAM_BYTES] =
            program
                .as_slice()
                .try_into()
                .map_err(|_| AddressError::ProgramLength {
                    version,
                    length: program.len(),
                })?;
        if version == VERSION_KEY && XOnlyPublicKey::from_byte_array(key).is_err() {
            return Err(AddressError::InvalidKey);
        }
        Ok(Address {
            network,
            version,
            program,
        })
    }

    /// The pay-to-key address of `key`.
    pub fn p2k(network: Network, key: &XOnlyPublicKey) -> Address {
        Address {
            network,
            version: VERSION_KEY,
            program: key.serialize().to_vec(),
        }
    }

    /// The pay-to-script-hash address of `script`.
    pub fn p2sh(network: Network, script: &[u8]) -> Address {
        Address {
            network,
            version: VERSION_SCRIPT_HASH,
            program: crate::sighash::sha256(script).to_vec(),
        }
    }

    /// The address of an output script, if it is pay-to-key or pay-to-script-hash.
    pub fn from_script_pubkey(network: Network, script: &[u8]) -> Result<Address, AddressError> {
        match classify_ref(script) {
            ScriptKindRef::PayToKey(key) => Address::new(network, VERSION_KEY, key.to_vec()),
            ScriptKindRef::PayToScriptHash(hash) => {
                Address::new(network, VERSION_SCRIPT_HASH, hash.to_vec())
            }
            _ => Err(AddressError::NotAddressable),
        }
    }

    /// The output script that pays to this address.
    pub fn script_pubkey(&self) -> Vec<u8> {
        let mut program = [0u8; PROGRAM_BYTES];
        program.copy_from_slice(&self.program);
        if self.version == VERSION_KEY {
            p2k_from_bytes(&program)
        } else {
            p2sh_from_hash(&program)
        }
    }

    pub fn network(&self) -> Network {
        self.network
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn program(&self) -> &[u8] {
        &self.program
    }

    /// The version's opcode in the output script (`OP_0` or `OP_1`).
    pub fn version_opcode(&self) -> u8 {
        if self.version == VERSION_KEY {
            OP_1
        } else {
            OP_0
        }
    }

    /// Parses an address that must be for `network`.
    pub fn parse_for(s: &str, network: Network) -> Result<Address, AddressError> {
        s.parse::<Address>()?.require_network(network)
    }

    /// Returns the address if it is for `network`, else says which network it is for.
    pub fn require_network(self, network: Network) -> Result<Address, AddressError> {
        if self.network == network {
            Ok(self)
        } else {
            Err(AddressError::WrongNetwork {
                expected: network,
                found: self.network,
            })
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse(self.network.hrp()).map_err(|_| fmt::Error)?;
        let mut data = Vec::with_capacity(1 + self.program.len());
        data.push(self.version);
        data.extend_from_slice(&self.program);
        // Cannot fail: a valid address is far below bech32's length limit.
        bech32::encode_lower_to_fmt::<Bech32m, _>(f, hrp, &data).map_err(|_| fmt::Error)
    }
}

fn malformed(e: UncheckedHrpstringError) -> AddressError {
    AddressError::Malformed(match e {
        UncheckedHrpstringError::Char(c) => c.to_string(),
        UncheckedHrpstringError::Hrp(h) => format!("invalid prefix: {h}"),
        other => other.to_string(),
    })
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unchecked = UncheckedHrpstring::new(s).map_err(malformed)?;
        let hrp = unchecked.hrp().to_lowercase();
        let network =
            Network::from_hrp(&hrp).ok_or_else(|| AddressError::UnknownPrefix(hrp.clone()))?;
        match unchecked.validate_checksum::<Bech32m>() {
            Ok(()) => {}
            Err(ChecksumError::CodeLength(e)) => {
                return Err(AddressError::Malformed(e.to_string()));
            }
            Err(_) if unchecked.has_valid_checksum::<Bech32>() => {
                return Err(AddressError::NotBech32m);
            }
            Err(_) => return Err(AddressError::Checksum),
        }
        let checked: CheckedHrpstring<'_> = unchecked.remove_checksum::<Bech32m>();
        checked
            .validate_segwit_padding()
            .map_err(|_| AddressError::Padding)?;
        let mut bytes = checked.byte_iter();
        let version = bytes.next().ok_or(AddressError::MissingVersion)?;
        Address::new(network, version, bytes.collect())
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
