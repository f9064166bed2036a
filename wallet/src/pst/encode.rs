//! The binary and base64 forms of a PST (`spec/pst.md` is normative).
//!
//! ```text
//! pst    = magic "stlpst\xff" | version 0x01 | global map | input map * n_in | output map * n_out
//! map    = entry* | 0x00
//! entry  = compact(len key) | key | compact(len value) | value      (len key >= 1)
//! key    = type byte | key data
//! ```
//!
//! Within a map, keys are strictly ascending (bytewise), so each PST has exactly one
//! encoding and a repeated key is an error. Unknown key types are kept and written back
//! unchanged. Every length is checked against a named limit before anything is
//! allocated, and every defined field is checked for its meaning (a preimage must hash
//! to its key, a witness script to its output's program, a signature key must be a valid
//! point), so a decoded PST is always internally consistent.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use secp256k1::XOnlyPublicKey;
use settle_assets::encode::{Reader, write_compact_size, write_var_bytes};
use settle_assets::limits::{MAX_TX_SIZE_BYTES, MAX_WITNESS_ITEM_BYTES, MAX_WITNESS_ITEMS};
use settle_assets::{ChainId, DecodeError, Transaction, TxOut, Witness, deserialize, serialize};
use settle_script::limits::{MAX_ELEMENT_BYTES, MAX_SCRIPT_BYTES};
use settle_script::sighash::sha256;
use settle_script::{Network, ScriptKind, SighashType, classify};

use super::{PartialSig, Pst, PstInput, PstOutput, XOnly};
use crate::keys::{ChildNumber, DerivationPath, Fingerprint, KeyOrigin, MAX_PATH_DEPTH};

/// The first bytes of every PST.
pub const MAGIC: [u8; 7] = *b"stlpst\xff";
/// The only format version defined so far.
pub const VERSION: u8 = 1;

/// Largest binary PST accepted.
pub const MAX_PST_BYTES: usize = 4_000_000;
/// Largest base64 PST accepted (the base64 of [`MAX_PST_BYTES`], plus surrounding space).
pub const MAX_PST_BASE64_CHARS: usize = MAX_PST_BYTES / 3 * 4 + 8 + 1_024;
/// Most entries in one map.
pub const MAX_MAP_ENTRIES: usize = 512;
/// Longest key of any entry.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value of any entry (the unsigned transaction is the largest defined value).
pub const MAX_VALUE_BYTES: usize = MAX_TX_SIZE_BYTES;
/// Longest text value (expiry note, owner, label), in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 256;

/// Global key types.
pub mod global {
    pub const UNSIGNED_TX: u8 = 0x00;
    pub const CHAIN_ID: u8 = 0x01;
    pub const NETWORK: u8 = 0x02;
    pub const EXPIRY_NOTE: u8 = 0x03;
}

/// Per-input key types.
pub mod input {
    pub const SPENT_OUTPUT: u8 = 0x00;
    pub const PARTIAL_SIG: u8 = 0x01;
    pub const WITNESS_SCRIPT: u8 = 0x02;
    pub const SHA256_PREIMAGE: u8 = 0x03;
    pub const KEY_ORIGIN: u8 = 0x04;
    pub const OWNER: u8 = 0x05;
    pub const FINAL_WITNESS: u8 = 0x06;
    pub const ISSUANCE_SIG: u8 = 0x07;
}

/// Per-output key types.
pub mod output {
    pub const LABEL: u8 = 0x00;
    pub const KEY_ORIGIN: u8 = 0x01;
    pub const WITNESS_SCRIPT: u8 = 0x02;
}

/// The network byte of the global map.
pub fn network_byte(network: Network) -> u8 {
    match network {
        Network::Main => 0,
        Network::Test => 1,
        Network::Dev => 2,
    }
}

/// The network a network byte names.
pub fn network_from_byte(b: u8) -> Option<Network> {
    match b {
        0 => Some(Network::Main),
        1 => Some(Network::Test),
        2 => Some(Network::Dev),
        _ => None,
    }
}

/// Which map of a PST something is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Location {
    Global,
    Input(usize),
    Output(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Global => f.write_str("global map"),
            Location::Input(i) => write!(f, "input {i}"),
            Location::Output(i) => write!(f, "output {i}"),
        }
    }
}

/// Why bytes are not a valid PST. [`PstDecodeError::name`] is a stable name used by the
/// test vectors in `spec/vectors/pst.json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PstDecodeError {
    #[error("pst is {size} bytes, more than the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("not a pst: bad magic bytes")]
    BadMagic,
    #[error("unsupported pst version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("malformed pst ({location}): {error}")]
    Encoding {
        location: Location,
        error: DecodeError,
    },
    #[error("{location} has more than {max} entries")]
    TooManyEntries { location: Location, max: usize },
    #[error("{location} repeats a key of type {key_type:#04x}")]
    DuplicateKey { location: Location, key_type: u8 },
    #[error("{location} keys are not in ascending order")]
    KeyOrder { location: Location },
    #[error("{location} lacks the required {field}")]
    MissingField {
        location: Location,
        field: &'static str,
    },
    #[error("{location} has an invalid key for {field}: {detail}")]
    BadKey {
        location: Location,
        field: &'static str,
        detail: String,
    },
    #[error("{location} has an invalid {field}: {detail}")]
    BadValue {
        location: Location,
        field: &'static str,
        detail: String,
    },
    #[error("the pst's transaction is not unsigned: input {input} has witness data")]
    NotUnsigned { input: usize },
    #[error("input {input} has a preimage that does not hash to its key")]
    PreimageMismatch { input: usize },
    #[error("{location} has a witness script whose hash is not the output's program")]
    WitnessScriptMismatch { location: Location },
    #[error("{count} trailing bytes after the last map")]
    TrailingBytes { count: usize },
    #[error("invalid base64: {0}")]
    Base64(String),
}

impl PstDecodeError {
    /// A stable name for the test vectors.
    pub fn name(&self) -> &'static str {
        match self {
            PstDecodeError::TooLarge { .. } => "TOO_LARGE",
            PstDecodeError::BadMagic => "BAD_MAGIC",
            PstDecodeError::UnsupportedVersion(_) => "UNSUPPORTED_VERSION",
            PstDecodeError::Encoding { .. } => "ENCODING",
            PstDecodeError::TooManyEntries { .. } => "TOO_MANY_ENTRIES",
            PstDecodeError::DuplicateKey { .. } => "DUPLICATE_KEY",
            PstDecodeError::KeyOrder { .. } => "KEY_ORDER",
            PstDecodeError::MissingField { .. } => "MISSING_FIELD",
            PstDecodeError::BadKey { .. } => "BAD_KEY",
            PstDecodeError::BadValue { .. } => "BAD_VALUE",
            PstDecodeError::NotUnsigned { .. } => "NOT_UNSIGNED",
            PstDecodeError::PreimageMismatch { .. } => "PREIMAGE_MISMATCH",
            PstDecodeError::WitnessScriptMismatch { .. } => "WITNESS_SCRIPT_MISMATCH",
            PstDecodeError::TrailingBytes { .. } => "TRAILING_BYTES",
            PstDecodeError::Base64(_) => "BASE64",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(t: u8, data: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + data.len());
    k.push(t);
    k.extend_from_slice(data);
    k
}

fn write_map(out: &mut Vec<u8>, map: &Map) {
    for (k, v) in map {
        write_var_bytes(out, k);
        write_var_bytes(out, v);
    }
    out.push(0x00);
}

/// The value of a key-origin entry: fingerprint, then each path step as u32 LE.
pub fn encode_origin(origin: &KeyOrigin) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + 4 * origin.path.len());
    v.extend_from_slice(&origin.master_fingerprint.0);
    for c in origin.path.children() {
        v.extend_from_slice(&c.raw().to_le_bytes());
    }
    v
}

/// The encoding of a witness stack: count, then each item as var-bytes.
pub fn encode_witness(w: &Witness) -> Vec<u8> {
    let mut v = Vec::new();
    write_compact_size(&mut v, w.0.len() as u64);
    for item in &w.0 {
        write_var_bytes(&mut v, item);
    }
    v
}

fn input_map(inp: &PstInput) -> Map {
    let mut m = inp.unknown.clone();
    if let Some(spent) = &inp.spent_output {
        m.insert(key(input::SPENT_OUTPUT, &[]), serialize(spent));
    }
    for (k, sig) in &inp.partial_sigs {
        let mut v = sig.signature.to_vec();
        v.push(sig.hash_type.to_byte());
        m.insert(key(input::PARTIAL_SIG, k), v);
    }
    if let Some(ws) = &inp.witness_script {
        m.insert(key(input::WITNESS_SCRIPT, &[]), ws.clone());
    }
    for (h, pre) in &inp.sha256_preimages {
        m.insert(key(input::SHA256_PREIMAGE, h), pre.clone());
    }
    for (k, origin) in &inp.key_origins {
        m.insert(key(input::KEY_ORIGIN, k), encode_origin(origin));
    }
    if let Some(owner) = &inp.owner {
        m.insert(key(input::OWNER, &[]), owner.as_bytes().to_vec());
    }
    if let Some(w) = &inp.final_witness {
        m.insert(key(input::FINAL_WITNESS, &[]), encode_witness(w));
    }
    if let Some(sig) = &inp.issuance_signature {
        m.insert(key(input::ISSUANCE_SIG, &[]), sig.to_vec());
    }
    m
}

fn output_map(out: &PstOutput) -> Map {
    let mut m = out.unknown.clone();
    if let Some(label) = &out.label {
        m.insert(key(output::LABEL, &[]), label.as_bytes().to_vec());
    }
    for (k, origin) in &out.key_origins {
        m.insert(key(output::KEY_ORIGIN, k), encode_origin(origin));
    }
    if let Some(ws) = &out.witness_script {
        m.insert(key(output::WITNESS_SCRIPT, &[]), ws.clone());
    }
    m
}

impl Pst {
    /// The binary form.
    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.tx.size_bytes());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        let mut g = self.unknown.clone();
        g.insert(key(global::UNSIGNED_TX, &[]), serialize(&self.tx));
        g.insert(key(global::CHAIN_ID, &[]), self.chain_id.0.to_vec());
        g.insert(key(global::NETWORK, &[]), vec![network_byte(self.network)]);
        if let Some(note) = &self.expiry_note {
            g.insert(key(global::EXPIRY_NOTE, &[]), note.as_bytes().to_vec());
        }
        write_map(&mut out, &g);
        for inp in &self.inputs {
            write_map(&mut out, &input_map(inp));
        }
        for o in &self.outputs {
            write_map(&mut out, &output_map(o));
        }
        out
    }

    /// The base64 text form (standard alphabet, padded).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.serialize())
    }

    /// Parses the base64 text form; surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Pst, PstDecodeError> {
        if text.len() > MAX_PST_BASE64_CHARS {
            return Err(PstDecodeError::TooLarge {
                size: text.len(),
                max: MAX_PST_BASE64_CHARS,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| PstDecodeError::Base64(e.to_string()))?;
        Pst::deserialize(&bytes)
    }

    /// Parses the binary form strictly (see the module documentation).
    pub fn deserialize(bytes: &[u8]) -> Result<Pst, PstDecodeError> {
        decode(bytes)
    }
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

fn read_map(r: &mut Reader<'_>, location: Location) -> Result<Map, PstDecodeError> {
    let enc = |error| PstDecodeError::Encoding { location, error };
    let mut map = Map::new();
    let mut last: Option<Vec<u8>> = None;
    loop {
        let key_len = r.read_compact_size("key length").map_err(enc)?;
        if key_len == 0 {
            return Ok(map);
        }
        if map.len() == MAX_MAP_ENTRIES {
            return Err(PstDecodeError::TooManyEntries {
                location,
                max: MAX_MAP_ENTRIES,
            });
        }
        if key_len > MAX_KEY_BYTES as u64 {
            return Err(enc(DecodeError::TooLarge {
                what: "key",
                size: key_len,
                max: MAX_KEY_BYTES,
            }));
        }
        // Bounded by MAX_KEY_BYTES just above.
        #[allow(clippy::cast_possible_truncation)]
        let k = r.read_bytes(key_len as usize, "key").map_err(enc)?.to_vec();
        let v = r
            .read_var_bytes("value", MAX_VALUE_BYTES)
            .map_err(enc)?
            .to_vec();
        if let Some(prev) = &last {
            if *prev == k {
                return Err(PstDecodeError::DuplicateKey {
                    location,
                    key_type: k[0],
                });
            }
            if *prev > k {
                return Err(PstDecodeError::KeyOrder { location });
            }
        }
        last = Some(k.clone());
        map.insert(k, v);
    }
}

fn bad_value(location: Location, field: &'static str, detail: impl Into<String>) -> PstDecodeError {
    PstDecodeError::BadValue {
        location,
        field,
        detail: detail.into(),
    }
}

fn require_empty_keydata(
    location: Location,
    field: &'static str,
    k: &[u8],
) -> Result<(), PstDecodeError> {
    if k.len() == 1 {
        Ok(())
    } else {
        Err(PstDecodeError::BadKey {
            location,
            field,
            detail: format!("expected no key data, got {} bytes", k.len() - 1),
        })
    }
}

fn xonly_keydata(
    location: Location,
    field: &'static str,
    k: &[u8],
) -> Result<XOnly, PstDecodeError> {
    let data: XOnly = k[1..].try_into().map_err(|_| PstDecodeError::BadKey {
        location,
        field,
        detail: format!("expected a 32-byte x-only key, got {} bytes", k.len() - 1),
    })?;
    XOnlyPublicKey::from_byte_array(data).map_err(|_| PstDecodeError::BadKey {
        location,
        field,
        detail: "not a valid x-only public key".into(),
    })?;
    Ok(data)
}

fn text(location: Location, field: &'static str, v: &[u8]) -> Result<String, PstDecodeError> {
    if v.len() > MAX_TEXT_BYTES {
        return Err(bad_value(
            location,
            field,
            format!("{} bytes, more than the limit of {MAX_TEXT_BYTES}", v.len()),
        ));
    }
    String::from_utf8(v.to_vec()).map_err(|_| bad_value(location, field, "not UTF-8"))
}

fn witness_script(location: Location, v: &[u8]) -> Result<Vec<u8>, PstDecodeError> {
    if v.len() > MAX_SCRIPT_BYTES {
        return Err(bad_value(
            location,
            "witness script",
            format!(
                "{} bytes, more than the limit of {MAX_SCRIPT_BYTES}",
                v.len()
            ),
        ));
    }
    Ok(v.to_vec())
}

/// Parses a key-origin value.
pub fn decode_origin(location: Location, v: &[u8]) -> Result<KeyOrigin, PstDecodeError> {
    if v.len() < 4 || !v.len().is_multiple_of(4) {
        return Err(bad_value(
            location,
            "key origin",
            format!(
                "{} bytes is not a 4-byte fingerprint and 4-byte path steps",
                v.len()
            ),
        ));
    }
    let depth = v.len() / 4 - 1;
    if depth > MAX_PATH_DEPTH {
        return Err(bad_value(
            location,
            "key origin",
            format!("path of {depth} steps exceeds the limit of {MAX_PATH_DEPTH}"),
        ));
    }
    let mut fp = [0u8; 4];
    fp.copy_from_slice(&v[..4]);
    let children = v[4..]
        .chunks_exact(4)
        .map(|c| ChildNumber::from_raw(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let path = DerivationPath::from_children(children)
        .map_err(|e| bad_value(location, "key origin", e.to_string()))?;
    Ok(KeyOrigin {
        master_fingerprint: Fingerprint(fp),
        path,
    })
}

/// Parses a witness stack value.
pub fn decode_witness(location: Location, v: &[u8]) -> Result<Witness, PstDecodeError> {
    let enc = |error| PstDecodeError::Encoding { location, error };
    let mut r = Reader::new(v);
    let count = r
        .read_count("witness items", MAX_WITNESS_ITEMS, 1)
        .map_err(enc)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(
            r.read_var_bytes("witness item", MAX_WITNESS_ITEM_BYTES)
                .map_err(enc)?
                .to_vec(),
        );
    }
    if r.remaining() != 0 {
        return Err(enc(DecodeError::TrailingBytes {
            what: "final witness",
            count: r.remaining(),
        }));
    }
    Ok(Witness(items))
}

fn check_p2sh_script(
    location: Location,
    script_pubkey: &[u8],
    script: &[u8],
) -> Result<(), PstDecodeError> {
    match classify(script_pubkey) {
        ScriptKind::PayToScriptHash(h) if h != sha256(script) => {
            Err(PstDecodeError::WitnessScriptMismatch { location })
        }
        _ => Ok(()),
    }
}

fn decode_input(map: Map, index: usize, tx: &Transaction) -> Result<PstInput, PstDecodeError> {
    let location = Location::Input(index);
    let txin = &tx.inputs[index];
    let mut inp = PstInput::default();
    for (k, v) in map {
        match k[0] {
            input::SPENT_OUTPUT => {
                require_empty_keydata(location, "spent output", &k)?;
                if txin.prevout.is_null() {
                    return Err(bad_value(
                        location,
                        "spent output",
                        "a null (issuance-only) input spends nothing",
                    ));
                }
                let out: TxOut = deserialize(&v)
                    .map_err(|error| PstDecodeError::Encoding { location, error })?;
                inp.spent_output = Some(out);
            }
            input::PARTIAL_SIG => {
                let key = xonly_keydata(location, "partial signature", &k)?;
                if v.len() != 65 {
                    return Err(bad_value(
                        location,
                        "partial signature",
                        format!(
                            "expected 64 signature bytes and a sighash byte, got {} bytes",
                            v.len()
                        ),
                    ));
                }
                let hash_type = SighashType::from_byte(v[64]).ok_or_else(|| {
                    bad_value(
                        location,
                        "partial signature",
                        format!("unknown sighash type {:#04x}", v[64]),
                    )
                })?;
                let mut signature = [0u8; 64];
                signature.copy_from_slice(&v[..64]);
                inp.partial_sigs.insert(
                    key,
                    PartialSig {
                        signature,
                        hash_type,
                    },
                );
            }
            input::WITNESS_SCRIPT => {
                require_empty_keydata(location, "witness script", &k)?;
                inp.witness_script = Some(witness_script(location, &v)?);
            }
            input::SHA256_PREIMAGE => {
                let hash: [u8; 32] = k[1..].try_into().map_err(|_| PstDecodeError::BadKey {
                    location,
                    field: "sha256 preimage",
                    detail: format!("expected a 32-byte hash, got {} bytes", k.len() - 1),
                })?;
                if v.len() > MAX_ELEMENT_BYTES {
                    return Err(bad_value(
                        location,
                        "sha256 preimage",
                        format!(
                            "{} bytes, more than the limit of {MAX_ELEMENT_BYTES}",
                            v.len()
                        ),
                    ));
                }
                if sha256(&v) != hash {
                    return Err(PstDecodeError::PreimageMismatch { input: index });
                }
                inp.sha256_preimages.insert(hash, v);
            }
            input::KEY_ORIGIN => {
                let key = xonly_keydata(location, "key origin", &k)?;
                inp.key_origins.insert(key, decode_origin(location, &v)?);
            }
            input::OWNER => {
                require_empty_keydata(location, "owner", &k)?;
                inp.owner = Some(text(location, "owner", &v)?);
            }
            input::FINAL_WITNESS => {
                require_empty_keydata(location, "final witness", &k)?;
                inp.final_witness = Some(decode_witness(location, &v)?);
            }
            input::ISSUANCE_SIG => {
                require_empty_keydata(location, "issuance signature", &k)?;
                if txin.issuance.is_none() {
                    return Err(bad_value(
                        location,
                        "issuance signature",
                        "the input carries no issuance",
                    ));
                }
                let sig: [u8; 64] = v.as_slice().try_into().map_err(|_| {
                    bad_value(
                        location,
                        "issuance signature",
                        format!("expected 64 bytes, got {}", v.len()),
                    )
                })?;
                inp.issuance_signature = Some(sig);
            }
            _ => {
                inp.unknown.insert(k, v);
            }
        }
    }
    if let (Some(spent), Some(ws)) = (&inp.spent_output, &inp.witness_script) {
        check_p2sh_script(location, &spent.script_pubkey, ws)?;
    }
    Ok(inp)
}

fn decode_output(map: Map, index: usize, tx: &Transaction) -> Result<PstOutput, PstDecodeError> {
    let location = Location::Output(index);
    let mut out = PstOutput::default();
    for (k, v) in map {
        match k[0] {
            output::LABEL => {
                require_empty_keydata(location, "label", &k)?;
                out.label = Some(text(location, "label", &v)?);
            }
            output::KEY_ORIGIN => {
                let key = xonly_keydata(location, "key origin", &k)?;
                out.key_origins.insert(key, decode_origin(location, &v)?);
            }
            output::WITNESS_SCRIPT => {
                require_empty_keydata(location, "witness script", &k)?;
                let ws = witness_script(location, &v)?;
                check_p2sh_script(location, &tx.outputs[index].script_pubkey, &ws)?;
                out.witness_script = Some(ws);
            }
            _ => {
                out.unknown.insert(k, v);
            }
        }
    }
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Pst, PstDecodeError> {
    if bytes.len() > MAX_PST_BYTES {
        return Err(PstDecodeError::TooLarge {
            size: bytes.len(),
            max: MAX_PST_BYTES,
        });
    }
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(PstDecodeError::BadMagic);
    }
    let mut r = Reader::new(&bytes[MAGIC.len()..]);
    let version = r
        .read_u8("version")
        .map_err(|error| PstDecodeError::Encoding {
            location: Location::Global,
            error,
        })?;
    if version != VERSION {
        return Err(PstDecodeError::UnsupportedVersion(version));
    }
    let location = Location::Global;
    let mut g = read_map(&mut r, location)?;
    let missing = |field| PstDecodeError::MissingField { location, field };

    let tx_bytes = g
        .remove(&key(global::UNSIGNED_TX, &[]))
        .ok_or_else(|| missing("unsigned transaction"))?;
    let tx: Transaction =
        deserialize(&tx_bytes).map_err(|error| PstDecodeError::Encoding { location, error })?;
    for (i, txin) in tx.inputs.iter().enumerate() {
        let signed = txin
            .issuance
            .as_ref()
            .is_some_and(|x| x.signature.is_some());
        if !txin.witness.is_empty() || signed {
            return Err(PstDecodeError::NotUnsigned { input: i });
        }
    }
    let chain_bytes = g
        .remove(&key(global::CHAIN_ID, &[]))
        .ok_or_else(|| missing("chain id"))?;
    let chain_id = ChainId(chain_bytes.as_slice().try_into().map_err(|_| {
        bad_value(
            location,
            "chain id",
            format!("expected 32 bytes, got {}", chain_bytes.len()),
        )
    })?);
    let network_bytes = g
        .remove(&key(global::NETWORK, &[]))
        .ok_or_else(|| missing("network"))?;
    let network = match network_bytes.as_slice() {
        [b] => network_from_byte(*b)
            .ok_or_else(|| bad_value(location, "network", format!("unknown network byte {b}")))?,
        other => {
            return Err(bad_value(
                location,
                "network",
                format!("expected 1 byte, got {}", other.len()),
            ));
        }
    };
    let expiry_note = match g.remove(&key(global::EXPIRY_NOTE, &[])) {
        Some(v) => Some(text(location, "expiry note", &v)?),
        None => None,
    };
    // Any remaining entry with a defined type byte has a key with extra data.
    if let Some(k) = g.keys().find(|k| k[0] <= global::EXPIRY_NOTE) {
        return Err(PstDecodeError::BadKey {
            location,
            field: "global field",
            detail: format!("type {:#04x} takes no key data", k[0]),
        });
    }

    let mut inputs = Vec::with_capacity(tx.inputs.len());
    for i in 0..tx.inputs.len() {
        let map = read_map(&mut r, Location::Input(i))?;
        inputs.push(decode_input(map, i, &tx)?);
    }
    let mut outputs = Vec::with_capacity(tx.outputs.len());
    for i in 0..tx.outputs.len() {
        let map = read_map(&mut r, Location::Output(i))?;
        outputs.push(decode_output(map, i, &tx)?);
    }
    if r.remaining() != 0 {
        return Err(PstDecodeError::TrailingBytes {
            count: r.remaining(),
        });
    }
    Ok(Pst {
        tx,
        chain_id,
        network,
        expiry_note,
        unknown: g,
        inputs,
        outputs,
    })
}
