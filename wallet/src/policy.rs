//! The signing policy (`spec/pst.md`, section 8): the one place where the wallet decides
//! which inputs of a PST it signs, and how.
//!
//! A flow (send, offer, multisig, lending) names the coins it agreed to spend, by
//! outpoint, each with its sighash type; [`sign`] signs those and nothing else. A key that
//! merely *derives* (a key origin written into the PST by whoever sent it, or a loan key
//! whose script appears in another input) is never a reason to sign: an input that asks
//! for one of this wallet's keys without being named refuses the whole PST, naming the
//! input, so the user learns that the counterparty tried.

use std::collections::BTreeMap;

use settle_assets::{OutPoint, TxOut};
use settle_script::SighashType;

use crate::keys::{SigningKey, WalletKeys};
use crate::pst::{Pst, PstError, XOnly};

/// Why the wallet refused to sign. Nothing was signed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "input {input} (coin {outpoint}) asks this wallet to sign, but it is not a coin this \
         step agreed to spend: refusing to sign anything in this pst"
    )]
    NotAgreed { input: usize, outpoint: OutPoint },
    #[error(
        "input {input} (coin {outpoint}) would be signed {hash_type}, which leaves every output \
         unsigned (anyone can redirect the coin); only an explicit allow-sighash-none permits it"
    )]
    SighashNone {
        input: usize,
        outpoint: OutPoint,
        hash_type: SighashType,
    },
    #[error(
        "input {input} (coin {outpoint}): the pst says it spends {claimed}, but the coin is \
         {actual}"
    )]
    WrongCoin {
        input: usize,
        outpoint: OutPoint,
        claimed: String,
        actual: String,
    },
    #[error("input {input} issues an asset, which this step did not agree to")]
    Issuance { input: usize },
    #[error(transparent)]
    Pst(#[from] PstError),
}

/// What one named input may be signed with.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Allowed {
    hash_type: SighashType,
    /// The coin as the wallet knows it, when it does: the PST's own description must match.
    coin: Option<TxOut>,
    /// Whether this input may carry an issuance (the lender's position issuance).
    issuance: bool,
}

/// The inputs a flow agreed to sign, by outpoint.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SigningPolicy {
    inputs: BTreeMap<OutPoint, Allowed>,
    allow_none: bool,
}

impl SigningPolicy {
    /// Signs nothing.
    pub fn new() -> SigningPolicy {
        SigningPolicy::default()
    }

    /// Every outpoint in `outpoints`, signed `ALL`.
    pub fn all(outpoints: impl IntoIterator<Item = OutPoint>) -> SigningPolicy {
        let mut p = SigningPolicy::new();
        for o in outpoints {
            p = p.with(o, SighashType::All);
        }
        p
    }

    /// Allows `outpoint`, signed `hash_type`.
    pub fn with(mut self, outpoint: OutPoint, hash_type: SighashType) -> SigningPolicy {
        self.inputs.insert(
            outpoint,
            Allowed {
                hash_type,
                coin: None,
                issuance: false,
            },
        );
        self
    }

    /// Allows `outpoint` (signed `hash_type`), which must spend exactly `coin`.
    pub fn with_coin(mut self, outpoint: OutPoint, coin: TxOut, hash_type: SighashType) -> Self {
        self.inputs.insert(
            outpoint,
            Allowed {
                hash_type,
                coin: Some(coin),
                issuance: false,
            },
        );
        self
    }

    /// Lets the input spending `outpoint` carry an issuance (it must already be allowed).
    pub fn with_issuance(mut self, outpoint: OutPoint) -> SigningPolicy {
        if let Some(a) = self.inputs.get_mut(&outpoint) {
            a.issuance = true;
        }
        self
    }

    /// Permits sighash NONE (the outputs unsigned) on the inputs named with it.
    pub fn allow_sighash_none(mut self) -> SigningPolicy {
        self.allow_none = true;
        self
    }

    /// Whether `outpoint` is named.
    pub fn allows(&self, outpoint: &OutPoint) -> bool {
        self.inputs.contains_key(outpoint)
    }

    /// The named outpoints.
    pub fn outpoints(&self) -> impl Iterator<Item = &OutPoint> {
        self.inputs.keys()
    }
}

/// The keys of this wallet (and of `extra`, such as a loan key) that input `input` asks
/// for: key origins that derive to the key they name, and extra keys its script holds.
fn keys_asked<'a>(
    pst: &Pst,
    input: usize,
    keys: Option<&WalletKeys>,
    extra: &[&'a SigningKey],
) -> Vec<(XOnly, Signer<'a>)> {
    let mut found = Vec::new();
    let inp = &pst.inputs()[input];
    for (x, origin) in &inp.key_origins {
        if let Some(Ok(derived)) = keys.and_then(|k| k.derive_origin(origin))
            && derived.key.x_only_bytes() == *x
        {
            found.push((*x, Signer::Derived(Box::new(derived.key))));
        }
    }
    for k in extra {
        let x = k.x_only_bytes();
        if found.iter().all(|(f, _)| *f != x) && pst.key_in_input_script(input, &x) {
            found.push((x, Signer::Extra(k)));
        }
    }
    found
}

enum Signer<'a> {
    Derived(Box<SigningKey>),
    Extra(&'a SigningKey),
}

impl Signer<'_> {
    fn key(&self) -> &SigningKey {
        match self {
            Signer::Derived(k) => k,
            Signer::Extra(k) => k,
        }
    }
}

/// Refuses the PST when an input breaks the policy (see [`sign`]).
fn check(
    pst: &Pst,
    asked: &[Vec<(XOnly, Signer<'_>)>],
    policy: &SigningPolicy,
) -> Result<(), PolicyError> {
    for (i, txin) in pst.unsigned_tx().inputs.iter().enumerate() {
        let outpoint = txin.prevout;
        let Some(allowed) = policy.inputs.get(&outpoint).filter(|_| !outpoint.is_null()) else {
            if !asked[i].is_empty() {
                return Err(PolicyError::NotAgreed { input: i, outpoint });
            }
            continue;
        };
        if txin.issuance.is_some() && !allowed.issuance {
            return Err(PolicyError::Issuance { input: i });
        }
        if leaves_outputs_unsigned(allowed.hash_type) && !policy.allow_none {
            return Err(PolicyError::SighashNone {
                input: i,
                outpoint,
                hash_type: allowed.hash_type,
            });
        }
        if let Some(coin) = &allowed.coin {
            let claimed = pst.inputs()[i].spent_output.as_ref();
            if claimed != Some(coin) {
                return Err(PolicyError::WrongCoin {
                    input: i,
                    outpoint,
                    claimed: claimed.map_or("an unknown coin".into(), describe),
                    actual: describe(coin),
                });
            }
        }
    }
    Ok(())
}

/// NONE and NONE|ANYONECANPAY: no output is covered.
pub fn leaves_outputs_unsigned(t: SighashType) -> bool {
    t.to_byte() & 0x7f == 0x02
}

fn describe(o: &TxOut) -> String {
    format!(
        "{} units of {} to script {}",
        o.amount.units(),
        o.asset,
        hex::encode(&o.script_pubkey)
    )
}

/// Signs, with this wallet's keys and the flow's `extra` keys, exactly the inputs the
/// policy names, each with its sighash type. Refuses the whole PST (signing nothing) when
/// an input not named asks for one of these keys, a named input carries an issuance the
/// policy does not allow, a named coin is not what the PST says, or NONE is asked without
/// the explicit permission. Returns (input, key) for each signature made.
pub fn sign(
    pst: &mut Pst,
    keys: Option<&WalletKeys>,
    extra: &[&SigningKey],
    policy: &SigningPolicy,
) -> Result<Vec<(usize, XOnly)>, PolicyError> {
    let asked: Vec<Vec<(XOnly, Signer<'_>)>> = (0..pst.inputs().len())
        .map(|i| keys_asked(pst, i, keys, extra))
        .collect();
    check(pst, &asked, policy)?;
    let mut next = pst.clone();
    let mut signed = Vec::new();
    for (i, wanted) in asked.iter().enumerate() {
        let outpoint = pst.unsigned_tx().inputs[i].prevout;
        let Some(allowed) = policy.inputs.get(&outpoint) else {
            continue;
        };
        if pst.inputs()[i].final_witness.is_some() {
            continue;
        }
        for (x, signer) in wanted {
            next.sign_input(i, signer.key(), allowed.hash_type)?;
            signed.push((i, *x));
        }
    }
    *pst = next;
    Ok(signed)
}
