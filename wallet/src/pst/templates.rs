//! Recognising the standard witness scripts the finalizer knows how to satisfy.
//!
//! A script is recognised only if rebuilding it from the parts read out of it with the
//! script crate's own template functions gives back exactly the same bytes, so the
//! finalizer can never misread a script that merely looks similar.

use secp256k1::XOnlyPublicKey;
use settle_script::instruction::{Instruction, Instructions};
use settle_script::opcodes::{OP_0, OP_1, OP_16, OP_CHECKSIG};
use settle_script::{htlc_script, multisig_script};

/// A witness script the finalizer can build a witness for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WitnessTemplate {
    /// `<key> OP_CHECKSIG`: one signature.
    SingleKey { key: [u8; 32] },
    /// `<m> <k1> .. <kn> <n> OP_CHECKMULTISIG`: one slot per key, at least `m` signed.
    Multisig {
        threshold: usize,
        keys: Vec<[u8; 32]>,
    },
    /// The hashed timelock contract of `settle_script::htlc_script`.
    Htlc {
        hash: [u8; 32],
        recipient: [u8; 32],
        refund: [u8; 32],
        timeout_lock_time: u32,
    },
}

fn small_int(ins: &Instruction<'_>) -> Option<i64> {
    match ins {
        Instruction::Push { opcode: OP_0, .. } => Some(0),
        Instruction::Op(op) if (OP_1..=OP_16).contains(op) => Some(i64::from(op - OP_1 + 1)),
        _ => None,
    }
}

fn number(ins: &Instruction<'_>) -> Option<i64> {
    small_int(ins).or_else(|| match ins {
        Instruction::Push { data, .. } => settle_script::num::decode(data, 5).ok(),
        Instruction::Op(_) => None,
    })
}

fn key(ins: &Instruction<'_>) -> Option<XOnlyPublicKey> {
    match ins {
        Instruction::Push { data, .. } => {
            let bytes: [u8; 32] = (*data).try_into().ok()?;
            XOnlyPublicKey::from_byte_array(bytes).ok()
        }
        Instruction::Op(_) => None,
    }
}

fn hash(ins: &Instruction<'_>) -> Option<[u8; 32]> {
    match ins {
        Instruction::Push { data, .. } => (*data).try_into().ok(),
        Instruction::Op(_) => None,
    }
}

/// Recognises `script`, or `None` if it is not one of the standard templates.
pub fn recognise(script: &[u8]) -> Option<WitnessTemplate> {
    let ins: Vec<Instruction<'_>> = Instructions::new(script)
        .map(|r| r.map(|(_, i)| i))
        .collect::<Result<_, _>>()
        .ok()?;
    // <key> OP_CHECKSIG
    if let [k, Instruction::Op(OP_CHECKSIG)] = ins.as_slice() {
        let k = key(k)?;
        let mut rebuilt = vec![0x20];
        rebuilt.extend_from_slice(&k.serialize());
        rebuilt.push(OP_CHECKSIG);
        return (rebuilt == script).then_some(WitnessTemplate::SingleKey { key: k.serialize() });
    }
    // Multisig: m, keys, n, OP_CHECKMULTISIG.
    if ins.len() >= 4
        && let (Some(m), Some(n)) = (small_int(&ins[0]), small_int(&ins[ins.len() - 2]))
        && let Some(keys) = ins[1..ins.len() - 2]
            .iter()
            .map(key)
            .collect::<Option<Vec<XOnlyPublicKey>>>()
        && let (Ok(m), Ok(n)) = (usize::try_from(m), usize::try_from(n))
        && n == keys.len()
        && multisig_script(m, &keys).ok().as_deref() == Some(script)
    {
        return Some(WitnessTemplate::Multisig {
            threshold: m,
            keys: keys.iter().map(XOnlyPublicKey::serialize).collect(),
        });
    }
    // HTLC: OP_IF OP_SHA256 <hash> OP_EQUALVERIFY <recipient> OP_CHECKSIG OP_ELSE <timeout>
    //       OP_CHECKLOCKTIMEVERIFY OP_DROP <refund> OP_CHECKSIG OP_ENDIF
    if ins.len() == 13 {
        let h = hash(&ins[2])?;
        let recipient = key(&ins[4])?;
        let timeout = u32::try_from(number(&ins[7])?).ok()?;
        let refund = key(&ins[10])?;
        if htlc_script(h, &recipient, &refund, timeout) == script {
            return Some(WitnessTemplate::Htlc {
                hash: h,
                recipient: recipient.serialize(),
                refund: refund.serialize(),
                timeout_lock_time: timeout,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn k(i: u8) -> XOnlyPublicKey {
        SigningKey::from_secret_bytes([i; 32])
            .expect("key")
            .x_only()
    }

    #[test]
    fn recognises_the_standard_scripts_exactly() {
        let ms = multisig_script(2, &[k(1), k(2), k(3)]).expect("ms");
        assert_eq!(
            recognise(&ms),
            Some(WitnessTemplate::Multisig {
                threshold: 2,
                keys: vec![k(1).serialize(), k(2).serialize(), k(3).serialize()]
            })
        );
        for timeout in [0, 5, 16, 17, 1_000, 600_000_000, u32::MAX] {
            let htlc = htlc_script([7; 32], &k(1), &k(2), timeout);
            assert_eq!(
                recognise(&htlc),
                Some(WitnessTemplate::Htlc {
                    hash: [7; 32],
                    recipient: k(1).serialize(),
                    refund: k(2).serialize(),
                    timeout_lock_time: timeout
                }),
                "timeout {timeout}"
            );
        }
        let mut single = vec![0x20];
        single.extend_from_slice(&k(4).serialize());
        single.push(OP_CHECKSIG);
        assert_eq!(
            recognise(&single),
            Some(WitnessTemplate::SingleKey {
                key: k(4).serialize()
            })
        );
        // Lookalikes are not recognised.
        let mut bad = ms.clone();
        bad[0] = settle_script::opcodes::OP_1 + 3; // threshold 4 of 3
        assert_eq!(recognise(&bad), None);
        let mut trailing = ms;
        trailing.push(OP_CHECKSIG);
        assert_eq!(recognise(&trailing), None);
        assert_eq!(recognise(&[]), None);
        assert_eq!(recognise(&[0x4c]), None);
        assert_eq!(recognise(&[0x20, 1, 2]), None);
    }
}
