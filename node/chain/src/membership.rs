//! Membership: who validates and which nodes may connect, and how a threshold of the
//! validators changes that by transaction (`spec/chain.md`, "Membership changes").
//!
//! The chain spec fixes the membership at genesis. A membership transaction
//! ([`settle_assets::transaction::MEMBERSHIP_TX_VERSION`]) carries a
//! [`MembershipChange`]: edits to the validator set and the permitted node keys, the
//! height from which they apply, the hash of the membership they edit, and signatures
//! of validators holding more than two thirds of the voting power in force. A change
//! confirmed in block `h` is *pending* until its activation height `a > h`; the block at
//! height `a` is the first decided by the new validator set, and from it on every node
//! admits or drops peers by the new permitted set. No restart is involved.
//!
//! Everything here is pure: the store keeps a [`MembershipState`] per height at which
//! it changed, and validation returns the new state as an effect.

use secp256k1::{Keypair, XOnlyPublicKey};
use settle_assets::amount::Amount;
use settle_assets::encode::{Decode, DecodeError, Encode, Reader, write_compact_size};
use settle_assets::hash::{AssetId, ChainId, Tag, Txid};
use settle_assets::transaction::{MEMBERSHIP_TX_VERSION, Transaction, TxOut};

use crate::certificate::{
    CertificateError, CommitSignature, Validator, ValidatorSet, decode_signatures,
    encode_signatures, verify_signatures,
};
use crate::limits::{COMMIT_SIGNATURE_BYTES, MAX_VALIDATORS};
use crate::reject::Rejection;

/// Tag of the membership hash (the state a change edits).
pub static MEMBERSHIP_TAG: Tag = Tag::new("Settle/Membership");
/// Tag of the digest validators sign to approve a change.
pub static MEMBERSHIP_CHANGE_TAG: Tag = Tag::new("Settle/MembershipChange");

/// The only membership-change body version defined so far.
pub const MEMBERSHIP_CHANGE_VERSION: u8 = 1;
/// Most edits one change may make. With [`MAX_VALIDATORS`] this keeps a change signed
/// by a quorum of equal-power validators inside one output script (checked below).
pub const MAX_MEMBERSHIP_OPS: usize = 32;
/// Most node keys the permitted set may hold besides the validators.
pub const MAX_PERMITTED_NODES: usize = 1_000;
/// Latest activation a change may name, in blocks after the block that confirms it:
/// far enough for operators to prepare, near enough that a change cannot lie dormant.
pub const MAX_ACTIVATION_DELAY_BLOCKS: u64 = 100_000;
/// Encoded size of one edit: tag, key, power.
const OP_BYTES: usize = 1 + 32 + 8;
/// Encoded size of a body without edits or signatures: version, activation height,
/// base hash, two counts of at most three bytes.
const BODY_FIXED_BYTES: usize = 1 + 8 + 32 + 3 + 3;

// A change with the most edits and signatures from a quorum of MAX_VALIDATORS
// equal-power validators must fit in one output script (10,000 bytes with OP_RETURN).
const _: () = assert!(
    1 + BODY_FIXED_BYTES
        + MAX_MEMBERSHIP_OPS * OP_BYTES
        + (MAX_VALIDATORS * 2 / 3 + 1) * COMMIT_SIGNATURE_BYTES
        <= settle_assets::limits::MAX_SCRIPT_PUBKEY_BYTES
);

/// The validator set and the other node keys that may connect.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Membership {
    pub validators: ValidatorSet,
    /// Node keys permitted besides the validators: sorted, distinct, none of them a
    /// validator's key.
    pub permitted: Vec<[u8; 32]>,
}

impl Membership {
    /// Checks and sorts `permitted` (validators' keys are dropped from it: they are
    /// permitted anyway).
    pub fn new(
        validators: ValidatorSet,
        mut permitted: Vec<[u8; 32]>,
    ) -> Result<Membership, MembershipError> {
        permitted.sort_unstable();
        permitted.dedup();
        permitted.retain(|k| validators.get(k).is_none());
        if permitted.len() > MAX_PERMITTED_NODES {
            return Err(MembershipError::TooManyPermitted {
                count: permitted.len(),
            });
        }
        if let Some(bad) = permitted
            .iter()
            .find(|k| XOnlyPublicKey::from_byte_array(**k).is_err())
        {
            return Err(MembershipError::InvalidKey(hex::encode(bad)));
        }
        Ok(Membership {
            validators,
            permitted,
        })
    }

    /// `TaggedHash("Settle/Membership", validator_set_hash ‖ compact_size(n) ‖ n
    /// permitted keys in order)`.
    pub fn hash(&self) -> [u8; 32] {
        let mut data = Vec::with_capacity(32 + 3 + 32 * self.permitted.len());
        data.extend_from_slice(&self.validators.hash());
        write_compact_size(&mut data, self.permitted.len() as u64);
        for key in &self.permitted {
            data.extend_from_slice(key);
        }
        MEMBERSHIP_TAG.hash(&data)
    }

    /// Whether the node with x-only key `key` may connect.
    pub fn permits(&self, key: &[u8; 32]) -> bool {
        self.validators.get(key).is_some() || self.permitted.binary_search(key).is_ok()
    }

    /// Every node key that may connect: the validators', then the permitted ones.
    pub fn node_keys(&self) -> Vec<[u8; 32]> {
        self.validators
            .validators()
            .iter()
            .map(|v| v.key)
            .chain(self.permitted.iter().copied())
            .collect()
    }
}

/// A change confirmed on chain that has not reached its activation height yet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PendingChange {
    /// The first height decided by the new membership.
    pub activation_height: u64,
    /// The membership transaction that made it.
    pub txid: Txid,
    pub membership: Membership,
}

/// The membership after some block: the one in force and a change waiting for its
/// height, if any. At most one change is pending at a time.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MembershipState {
    pub current: Membership,
    pub pending: Option<PendingChange>,
}

impl MembershipState {
    /// No change pending.
    pub fn settled(current: Membership) -> Self {
        MembershipState {
            current,
            pending: None,
        }
    }

    /// The state as the block at `height` finds it: a pending change due at or before
    /// `height` has taken effect.
    pub fn at_height(&self, height: u64) -> MembershipState {
        match &self.pending {
            Some(p) if p.activation_height <= height => Self::settled(p.membership.clone()),
            _ => self.clone(),
        }
    }

    /// The membership that decides the block at `height`.
    pub fn in_force_at(&self, height: u64) -> &Membership {
        match &self.pending {
            Some(p) if p.activation_height <= height => &p.membership,
            _ => &self.current,
        }
    }
}

/// One edit of a membership.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MembershipOp {
    /// Adds a validator, changes its power, or with power zero removes it.
    SetValidator { key: [u8; 32], power: u64 },
    /// Permits a node key to connect.
    Permit { key: [u8; 32] },
    /// Withdraws a node key's permission; its connections are dropped.
    Revoke { key: [u8; 32] },
}

const OP_SET_VALIDATOR: u8 = 1;
const OP_PERMIT: u8 = 2;
const OP_REVOKE: u8 = 3;

impl MembershipOp {
    fn key(&self) -> &[u8; 32] {
        match self {
            MembershipOp::SetValidator { key, .. }
            | MembershipOp::Permit { key }
            | MembershipOp::Revoke { key } => key,
        }
    }
}

impl Encode for MembershipOp {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, power) = match self {
            MembershipOp::SetValidator { power, .. } => (OP_SET_VALIDATOR, *power),
            MembershipOp::Permit { .. } => (OP_PERMIT, 0),
            MembershipOp::Revoke { .. } => (OP_REVOKE, 0),
        };
        out.push(tag);
        out.extend_from_slice(self.key());
        out.extend_from_slice(&power.to_le_bytes());
    }
}

impl Decode for MembershipOp {
    const NAME: &'static str = "membership edit";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.read_u8("membership edit kind")?;
        let key = r.read_array::<32>("membership edit key")?;
        let power = r.read_u64("membership edit power")?;
        match (tag, power) {
            (OP_SET_VALIDATOR, power) => Ok(MembershipOp::SetValidator { key, power }),
            (OP_PERMIT, 0) => Ok(MembershipOp::Permit { key }),
            (OP_REVOKE, 0) => Ok(MembershipOp::Revoke { key }),
            (OP_PERMIT | OP_REVOKE, _) => Err(DecodeError::Invalid {
                what: "membership edit power",
                detail: "a permit or revoke edit carries power 0".into(),
            }),
            (other, _) => Err(DecodeError::Invalid {
                what: "membership edit kind",
                detail: format!("{other} is not 1 (set validator), 2 (permit) or 3 (revoke)"),
            }),
        }
    }
}

/// A proposed membership change and the validators' signatures approving it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MembershipChange {
    /// The first height the new membership decides.
    pub activation_height: u64,
    /// [`Membership::hash`] of the membership the edits apply to.
    pub base: [u8; 32],
    pub ops: Vec<MembershipOp>,
    /// Signatures over [`MembershipChange::digest`], sorted by validator key.
    pub signatures: Vec<CommitSignature>,
}

impl MembershipChange {
    /// The signed part: version, activation height, base and edits.
    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.push(MEMBERSHIP_CHANGE_VERSION);
        out.extend_from_slice(&self.activation_height.to_le_bytes());
        out.extend_from_slice(&self.base);
        write_compact_size(out, self.ops.len() as u64);
        for op in &self.ops {
            op.encode(out);
        }
    }

    /// `TaggedHash("Settle/MembershipChange", chain_id ‖ unsigned body)`: what each
    /// validator signs. The chain id keeps a change from being replayed on another chain;
    /// the base hash keeps it from being replayed on this one once applied.
    pub fn digest(&self, chain_id: &ChainId) -> [u8; 32] {
        let mut data = chain_id.as_bytes().to_vec();
        self.encode_unsigned(&mut data);
        MEMBERSHIP_CHANGE_TAG.hash(&data)
    }

    /// Adds (or replaces) `keypair`'s signature, keeping the list sorted by key.
    pub fn sign(&mut self, keypair: &Keypair, chain_id: &ChainId) {
        let digest = self.digest(chain_id);
        let sig = secp256k1::SECP256K1.sign_schnorr_no_aux_rand(&digest, keypair);
        let validator = keypair.x_only_public_key().0.serialize();
        self.signatures.retain(|s| s.validator != validator);
        self.signatures.push(CommitSignature {
            validator,
            signature: sig.to_byte_array(),
        });
        self.signatures.sort_by_key(|s| s.validator);
    }

    /// The membership transaction carrying this change.
    pub fn to_transaction(&self) -> Transaction {
        let mut script = vec![settle_assets::OP_RETURN];
        self.encode(&mut script);
        Transaction {
            version: MEMBERSHIP_TX_VERSION,
            inputs: Vec::new(),
            outputs: vec![TxOut {
                asset: AssetId::ZERO,
                amount: Amount::ZERO,
                script_pubkey: script,
            }],
            lock_time: 0,
            expiry_height: 0,
        }
    }

    /// The change a membership transaction carries.
    pub fn from_transaction(tx: &Transaction) -> Result<MembershipChange, MembershipError> {
        let body = tx.membership_body().ok_or(MembershipError::NotMembership)?;
        settle_assets::encode::deserialize(body).map_err(MembershipError::Decode)
    }

    /// The membership that results from applying the edits, in order, to `base`.
    pub fn apply(&self, base: &Membership) -> Result<Membership, MembershipError> {
        let mut validators: Vec<Validator> = base.validators.validators().to_vec();
        let mut permitted = base.permitted.clone();
        for (index, op) in self.ops.iter().enumerate() {
            if XOnlyPublicKey::from_byte_array(*op.key()).is_err() {
                return Err(MembershipError::InvalidKey(hex::encode(op.key())));
            }
            match *op {
                MembershipOp::SetValidator { key, power } => {
                    let found = validators.iter().position(|v| v.key == key);
                    match (found, power) {
                        (Some(i), 0) => {
                            validators.remove(i);
                        }
                        (Some(i), power) => validators[i].power = power,
                        (None, 0) => {
                            return Err(MembershipError::NoOp {
                                index,
                                reason: format!("{} is not a validator", hex::encode(key)),
                            });
                        }
                        (None, power) => validators.push(Validator {
                            name: format!("validator-{}", hex::encode(&key[..4])),
                            key,
                            power,
                        }),
                    }
                }
                MembershipOp::Permit { key } => {
                    if permitted.contains(&key) {
                        return Err(MembershipError::NoOp {
                            index,
                            reason: format!("{} is already permitted", hex::encode(key)),
                        });
                    }
                    permitted.push(key);
                }
                MembershipOp::Revoke { key } => {
                    let Some(i) = permitted.iter().position(|k| *k == key) else {
                        return Err(MembershipError::NoOp {
                            index,
                            reason: format!(
                                "{} is not in the permitted set (a validator is removed \
                                 with power 0)",
                                hex::encode(key)
                            ),
                        });
                    };
                    permitted.remove(i);
                }
            }
        }
        let validators = ValidatorSet::new(validators)
            .map_err(|e| MembershipError::ValidatorSet(e.to_string()))?;
        Membership::new(validators, permitted)
    }

    /// Checks the change for inclusion in the block at `height`, whose parent left the
    /// membership in `state`; returns the pending change it makes. The order of checks
    /// is that of `spec/chain.md`, "Membership changes".
    pub fn check(
        &self,
        state: &MembershipState,
        height: u64,
        chain_id: &ChainId,
        txid: Txid,
    ) -> Result<PendingChange, Rejection> {
        let state = state.at_height(height);
        if let Some(p) = &state.pending {
            return Err(Rejection::conflict(
                "membership-pending",
                format!(
                    "membership change {} is already pending until height {}",
                    p.txid, p.activation_height
                ),
            ));
        }
        let latest = height.saturating_add(MAX_ACTIVATION_DELAY_BLOCKS);
        if self.activation_height <= height || self.activation_height > latest {
            return Err(Rejection::consensus(
                "membership-activation",
                format!(
                    "activation height {} must be after the including block ({height}) and \
                     at most {latest}",
                    self.activation_height
                ),
            ));
        }
        let current_hash = state.current.hash();
        if self.base != current_hash {
            return Err(Rejection::conflict(
                "membership-base",
                format!(
                    "the change edits membership {} but the membership in force is {}",
                    hex::encode(self.base),
                    hex::encode(current_hash)
                ),
            ));
        }
        let membership = self
            .apply(&state.current)
            .map_err(|e| Rejection::consensus("bad-membership", e.to_string()))?;
        verify_signatures(
            &self.signatures,
            &self.digest(chain_id),
            &state.current.validators,
        )
        .map_err(|e| match e {
            CertificateError::InsufficientPower { signed, total } => Rejection::consensus(
                "membership-threshold",
                format!(
                    "the signers hold voting power {signed} of {total}: more than two \
                     thirds of the validators in force must sign"
                ),
            ),
            other => Rejection::consensus("bad-membership", other.to_string()),
        })?;
        Ok(PendingChange {
            activation_height: self.activation_height,
            txid,
            membership,
        })
    }
}

impl Encode for MembershipChange {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_unsigned(out);
        encode_signatures(&self.signatures, out);
    }
}

impl Decode for MembershipChange {
    const NAME: &'static str = "membership change";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.read_u8("membership change version")?;
        if version != MEMBERSHIP_CHANGE_VERSION {
            return Err(DecodeError::Invalid {
                what: "membership change version",
                detail: format!("{version} is not {MEMBERSHIP_CHANGE_VERSION}"),
            });
        }
        let activation_height = r.read_u64("activation height")?;
        let base = r.read_array::<32>("membership base hash")?;
        let count = r.read_count("membership edits", MAX_MEMBERSHIP_OPS, OP_BYTES)?;
        let mut ops = Vec::with_capacity(count);
        for _ in 0..count {
            ops.push(MembershipOp::decode(r)?);
        }
        let signatures = decode_signatures(r, "membership signatures")?;
        Ok(MembershipChange {
            activation_height,
            base,
            ops,
            signatures,
        })
    }
}

/// Why a membership change or membership is not valid.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("not a membership transaction")]
    NotMembership,
    #[error("membership change does not decode: {0}")]
    Decode(DecodeError),
    #[error("key {0} is not a valid x-only public key")]
    InvalidKey(String),
    #[error("edit {index} changes nothing: {reason}")]
    NoOp { index: usize, reason: String },
    #[error("the resulting validator set is not valid: {0}")]
    ValidatorSet(String),
    #[error("{count} permitted node keys exceed the limit of {MAX_PERMITTED_NODES}")]
    TooManyPermitted { count: usize },
}

// ---- Storage encoding of a membership state ----

fn encode_membership(m: &Membership, out: &mut Vec<u8>) {
    write_compact_size(out, m.validators.len() as u64);
    for v in m.validators.validators() {
        settle_assets::encode::write_var_bytes(out, v.name.as_bytes());
        out.extend_from_slice(&v.key);
        out.extend_from_slice(&v.power.to_le_bytes());
    }
    write_compact_size(out, m.permitted.len() as u64);
    for key in &m.permitted {
        out.extend_from_slice(key);
    }
}

fn decode_membership(r: &mut Reader<'_>) -> Result<Membership, DecodeError> {
    let invalid = |detail: String| DecodeError::Invalid {
        what: "membership",
        detail,
    };
    let count = r.read_count("validators", MAX_VALIDATORS, 1 + 32 + 8)?;
    let mut validators = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.read_var_bytes("validator name", 4 * crate::limits::MAX_NAME_CHARS)?;
        validators.push(Validator {
            name: String::from_utf8_lossy(name).into_owned(),
            key: r.read_array("validator key")?,
            power: r.read_u64("validator power")?,
        });
    }
    let validators = ValidatorSet::new(validators).map_err(|e| invalid(e.to_string()))?;
    let count = r.read_count("permitted keys", MAX_PERMITTED_NODES, 32)?;
    let mut permitted = Vec::with_capacity(count);
    for _ in 0..count {
        permitted.push(r.read_array("permitted key")?);
    }
    Membership::new(validators, permitted).map_err(|e| invalid(e.to_string()))
}

impl Encode for MembershipState {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_membership(&self.current, out);
        match &self.pending {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                out.extend_from_slice(&p.activation_height.to_le_bytes());
                p.txid.encode(out);
                encode_membership(&p.membership, out);
            }
        }
    }
}

impl Decode for MembershipState {
    const NAME: &'static str = "membership state";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let current = decode_membership(r)?;
        let pending = match r.read_u8("pending flag")? {
            0 => None,
            1 => Some(PendingChange {
                activation_height: r.read_u64("activation height")?,
                txid: Txid::decode(r)?,
                membership: decode_membership(r)?,
            }),
            other => {
                return Err(DecodeError::Invalid {
                    what: "pending flag",
                    detail: format!("{other} is not 0 or 1"),
                });
            }
        };
        Ok(MembershipState { current, pending })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::encode::serialize;

    fn keypair(i: u8) -> Keypair {
        Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [i + 1; 32]).expect("key")
    }

    fn key(i: u8) -> [u8; 32] {
        keypair(i).x_only_public_key().0.serialize()
    }

    fn four() -> Membership {
        let validators = (0..4)
            .map(|i| Validator {
                name: format!("v{i}"),
                key: key(i),
                power: 1,
            })
            .collect();
        Membership::new(ValidatorSet::new(validators).expect("set"), vec![key(9)])
            .expect("membership")
    }

    fn change(base: &Membership, ops: Vec<MembershipOp>, at: u64) -> MembershipChange {
        MembershipChange {
            activation_height: at,
            base: base.hash(),
            ops,
            signatures: Vec::new(),
        }
    }

    #[test]
    fn a_quorum_of_signatures_makes_a_pending_change() {
        let chain = ChainId([7; 32]);
        let m = four();
        let state = MembershipState::settled(m.clone());
        let mut c = change(
            &m,
            vec![
                MembershipOp::SetValidator {
                    key: key(3),
                    power: 0,
                },
                MembershipOp::Revoke { key: key(9) },
                MembershipOp::Permit { key: key(8) },
            ],
            20,
        );
        for i in 0..2 {
            c.sign(&keypair(i), &chain);
        }
        let err = c.check(&state, 10, &chain, Txid::ZERO).expect_err("2 of 4");
        assert_eq!(err.code, "membership-threshold");
        c.sign(&keypair(2), &chain);
        let pending = c.check(&state, 10, &chain, Txid::ZERO).expect("3 of 4");
        assert_eq!(pending.membership.validators.len(), 3);
        assert!(!pending.membership.permits(&key(3)));
        assert!(!pending.membership.permits(&key(9)));
        assert!(pending.membership.permits(&key(8)));

        // Round trip through the transaction.
        let tx = c.to_transaction();
        assert!(settle_assets::check::check_transaction(&tx).is_ok());
        assert_eq!(MembershipChange::from_transaction(&tx), Ok(c.clone()));

        // Pending until height 20, then in force.
        let after = MembershipState {
            current: m.clone(),
            pending: Some(pending),
        };
        assert_eq!(after.in_force_at(19), &m);
        assert_eq!(after.in_force_at(20).validators.len(), 3);
        assert_eq!(
            deserialize_state(&serialize(&after)),
            after,
            "storage round trip"
        );
        // A second change while one is pending is refused; so is the first again.
        let err = c
            .check(&after, 11, &chain, Txid::ZERO)
            .expect_err("pending");
        assert_eq!(err.code, "membership-pending");
        let err = c
            .check(&after, 21, &chain, Txid::ZERO)
            .expect_err("replayed");
        assert_eq!(err.code, "membership-activation");
    }

    fn deserialize_state(bytes: &[u8]) -> MembershipState {
        settle_assets::encode::deserialize(bytes).expect("decodes")
    }

    #[test]
    fn bad_changes_are_refused_with_the_reason() {
        let chain = ChainId([7; 32]);
        let m = four();
        let state = MembershipState::settled(m.clone());
        let signed = |mut c: MembershipChange| {
            for i in 0..4 {
                c.sign(&keypair(i), &chain);
            }
            c
        };
        let remove_all = (0..4)
            .map(|i| MembershipOp::SetValidator {
                key: key(i),
                power: 0,
            })
            .collect();
        let cases = [
            (change(&m, vec![], 5), 5, "membership-activation"),
            (
                change(&m, vec![], 10 + MAX_ACTIVATION_DELAY_BLOCKS + 1),
                10,
                "membership-activation",
            ),
            (
                change(
                    &four_other(),
                    vec![MembershipOp::Permit { key: key(8) }],
                    20,
                ),
                10,
                "membership-base",
            ),
            (
                change(&m, vec![MembershipOp::Permit { key: key(9) }], 20),
                10,
                "bad-membership",
            ),
            (change(&m, remove_all, 20), 10, "bad-membership"),
        ];
        for (c, height, code) in cases {
            let err = signed(c.clone())
                .check(&state, height, &chain, Txid::ZERO)
                .expect_err(code);
            assert_eq!(err.code, code, "{c:?}: {err}");
        }
        // A signature by a non-validator, and one over another chain.
        let mut c = change(&m, vec![MembershipOp::Permit { key: key(8) }], 20);
        c.sign(&keypair(7), &chain);
        assert_eq!(
            c.check(&state, 10, &chain, Txid::ZERO).expect_err("x").code,
            "bad-membership"
        );
        let c = signed(change(&m, vec![MembershipOp::Permit { key: key(8) }], 20));
        assert!(c.check(&state, 10, &ChainId([8; 32]), Txid::ZERO).is_err());
    }

    fn four_other() -> Membership {
        Membership::new(four().validators, Vec::new()).expect("membership")
    }

    #[test]
    fn malformed_bodies_do_not_decode() {
        let m = four();
        let c = change(&m, vec![MembershipOp::Permit { key: key(8) }], 20);
        let bytes = serialize(&c);
        for cut in 0..bytes.len() {
            assert!(settle_assets::encode::deserialize::<MembershipChange>(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(settle_assets::encode::deserialize::<MembershipChange>(&bad).is_err());
        let mut bad = bytes;
        bad[1 + 8 + 32 + 1] = 7; // the edit's kind
        assert!(settle_assets::encode::deserialize::<MembershipChange>(&bad).is_err());
    }
}
