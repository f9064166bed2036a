//! Verifying the spends of a transaction's inputs, and the pure lock time helpers the
//! node uses to decide whether a transaction may enter a block.

use secp256k1::{SECP256K1, XOnlyPublicKey, schnorr};
use settle_assets::encode::compact_size_len;
use settle_assets::transaction::{LOCKTIME_THRESHOLD, SEQUENCE_FINAL};
use settle_assets::{ChainId, Transaction, TxOut};

use crate::error::{InputError, ScriptError};
use crate::interpreter::{Checker, Stack, check_initial_stack, check_sig, execute};
use crate::limits::{
    BYTES_PER_SIG_CHECK, KEY_BYTES, MAX_STACK_ITEMS, SIG_BYTES, SIG_CHECK_BASE_BYTES,
};
use crate::num::cast_to_bool;
use crate::opcodes::OP_CHECKSIG;
use crate::sighash::{PrecomputedTx, SighashType, sha256};
use crate::templates::{ScriptKindRef, classify_ref};

/// Set on a sequence: no relative lock (BIP68), and `OP_CHECKSEQUENCEVERIFY` fails.
pub const SEQUENCE_LOCKTIME_DISABLE_FLAG: u32 = 1 << 31;
/// Set on a sequence: the relative lock counts 512-second units, else blocks.
pub const SEQUENCE_LOCKTIME_TYPE_FLAG: u32 = 1 << 22;
/// The bits of a sequence that hold the relative lock value.
pub const SEQUENCE_LOCKTIME_MASK: u32 = 0x0000_ffff;
/// Time-based relative locks count units of 2^9 = 512 seconds.
pub const SEQUENCE_LOCKTIME_GRANULARITY: u32 = 9;

/// Checks signatures and lock times for one input of a prepared transaction. Digests are
/// cached per hash type, so a multisig with several signatures of one type hashes once.
/// It also keeps the input's signature-check budget ([`sig_check_budget`]): the
/// interpreter has no loops, but one signature and key duplicated on the stack could
/// otherwise be checked 200 times per script for the price of 100 bytes.
#[derive(Debug)]
pub struct TransactionChecker<'c, 'a> {
    cache: &'c PrecomputedTx<'a>,
    input: usize,
    sequence: u32,
    script_code_hash: [u8; 32],
    digests: [Option<[u8; 32]>; 6],
    sig_checks_left: usize,
}

/// The encoded size of a witness: its item count and every item with its length prefix.
pub fn witness_encoded_bytes(witness: &[Vec<u8>]) -> usize {
    let items: usize = witness
        .iter()
        .map(|item| compact_size_len(item.len() as u64) + item.len())
        .sum();
    compact_size_len(witness.len() as u64) + items
}

/// How many non-empty signatures an input with this witness may check:
/// `(SIG_CHECK_BASE_BYTES + witness bytes) / BYTES_PER_SIG_CHECK` (`spec/script.md`,
/// "Signature-check budget"). Every check is paid for by the input's own bytes, so the
/// checks of a transaction or a block never exceed its size divided by
/// [`BYTES_PER_SIG_CHECK`].
pub fn sig_check_budget(witness: &[Vec<u8>]) -> usize {
    (SIG_CHECK_BASE_BYTES + witness_encoded_bytes(witness)) / BYTES_PER_SIG_CHECK
}

impl<'c, 'a> TransactionChecker<'c, 'a> {
    /// A checker for input `input` running a script whose SHA-256 is
    /// `script_code_hash`; `INPUT_INDEX` if there is no such input.
    pub fn new(
        cache: &'c PrecomputedTx<'a>,
        input: usize,
        script_code_hash: [u8; 32],
    ) -> Result<Self, ScriptError> {
        let txin = cache
            .tx()
            .inputs
            .get(input)
            .ok_or(ScriptError::InputIndex)?;
        Ok(TransactionChecker {
            cache,
            input,
            sequence: txin.sequence,
            script_code_hash,
            digests: [None; 6],
            sig_checks_left: sig_check_budget(&txin.witness.0),
        })
    }

    fn digest(&mut self, hash_type: SighashType) -> Result<[u8; 32], ScriptError> {
        if let Some(d) = self.digests[hash_type.index()] {
            return Ok(d);
        }
        let d = self
            .cache
            .sighash_with_code_hash(self.input, hash_type, &self.script_code_hash)?;
        self.digests[hash_type.index()] = Some(d);
        Ok(d)
    }
}

impl Checker for TransactionChecker<'_, '_> {
    fn check_signature(
        &mut self,
        signature: &[u8; SIG_BYTES],
        hash_type: SighashType,
        key: &[u8; KEY_BYTES],
    ) -> Result<(), ScriptError> {
        // Spent before anything else about the check, so that a failing check costs
        // budget too and the result never depends on the order of the other rules.
        self.sig_checks_left = self
            .sig_checks_left
            .checked_sub(1)
            .ok_or(ScriptError::SigCheckBudget)?;
        let key = XOnlyPublicKey::from_byte_array(*key).map_err(|_| ScriptError::PubkeyType)?;
        let digest = self.digest(hash_type)?;
        let sig = schnorr::Signature::from_byte_array(*signature);
        SECP256K1
            .verify_schnorr(&sig, &digest, &key)
            .map_err(|_| ScriptError::SigInvalid)
    }

    fn check_lock_time(&self, lock_time: i64) -> Result<(), ScriptError> {
        check_lock_time(self.cache.tx().lock_time, self.sequence, lock_time)
    }

    fn check_sequence(&self, sequence: i64) -> Result<(), ScriptError> {
        check_sequence(self.sequence, sequence)
    }
}

/// BIP65 against the transaction's fields: the operand and the transaction's lock time
/// must both be heights or both be times, the operand must not exceed the lock time, and
/// the input must not be final (a final input would disable the lock time).
pub fn check_lock_time(tx_lock_time: u32, sequence: u32, operand: i64) -> Result<(), ScriptError> {
    let threshold = i64::from(LOCKTIME_THRESHOLD);
    let tx_lock_time = i64::from(tx_lock_time);
    if (tx_lock_time < threshold) != (operand < threshold) {
        return Err(ScriptError::UnsatisfiedLocktime);
    }
    if operand > tx_lock_time {
        return Err(ScriptError::UnsatisfiedLocktime);
    }
    if sequence == SEQUENCE_FINAL {
        return Err(ScriptError::UnsatisfiedLocktime);
    }
    Ok(())
}

/// BIP112 against the input's sequence. An operand with the disable flag passes (it is
/// reserved for future use); otherwise the sequence must enable a relative lock of the
/// same type and at least the operand's value. Unlike Bitcoin there is no transaction
/// version condition: version 1, the only version, has BIP68 semantics.
pub fn check_sequence(tx_sequence: u32, operand: i64) -> Result<(), ScriptError> {
    if operand & i64::from(SEQUENCE_LOCKTIME_DISABLE_FLAG) != 0 {
        return Ok(());
    }
    if tx_sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0 {
        return Err(ScriptError::UnsatisfiedLocktime);
    }
    let mask = i64::from(SEQUENCE_LOCKTIME_TYPE_FLAG | SEQUENCE_LOCKTIME_MASK);
    let type_flag = i64::from(SEQUENCE_LOCKTIME_TYPE_FLAG);
    let required = operand & mask;
    let available = i64::from(tx_sequence) & mask;
    if (required < type_flag) != (available < type_flag) {
        return Err(ScriptError::UnsatisfiedLocktime);
    }
    if required > available {
        return Err(ScriptError::UnsatisfiedLocktime);
    }
    Ok(())
}

/// The clean-stack rule applied after every spend: exactly one item left
/// (`CLEANSTACK`), and it is true (`EVAL_FALSE`).
pub fn check_clean_stack(stack: &Stack) -> Result<(), ScriptError> {
    match stack.as_slice() {
        [item] if cast_to_bool(item) => Ok(()),
        [_] => Err(ScriptError::EvalFalse),
        _ => Err(ScriptError::Cleanstack),
    }
}

/// The script a pay-to-key output stands for: `<key> OP_CHECKSIG`.
pub fn p2k_equivalent_script(key: &[u8; KEY_BYTES]) -> Vec<u8> {
    let mut script = Vec::with_capacity(KEY_BYTES + 2);
    script.push(0x20);
    script.extend_from_slice(key);
    script.push(OP_CHECKSIG);
    script
}

/// A pay-to-key spend: the same result as running [`p2k_equivalent_script`] on the
/// (non-empty) witness and applying the clean-stack rule, step for step, without
/// building the script or copying the witness (this is the hot path of verification).
fn verify_p2k<C: Checker + ?Sized>(
    key: &[u8; KEY_BYTES],
    witness: &[Vec<u8>],
    checker: &mut C,
) -> Result<(), ScriptError> {
    let Some(signature) = witness.last() else {
        return Err(ScriptError::WitnessEmpty);
    };
    check_initial_stack(witness)?;
    // After the key is pushed.
    if witness.len() + 1 > MAX_STACK_ITEMS {
        return Err(ScriptError::StackSize);
    }
    // OP_CHECKSIG pops key and signature and pushes the result: the stack keeps
    // `witness.len()` items.
    let valid = check_sig(checker, signature, key)?;
    if witness.len() != 1 {
        return Err(ScriptError::Cleanstack);
    }
    if valid {
        Ok(())
    } else {
        Err(ScriptError::EvalFalse)
    }
}

/// Verifies the spend of input `input`: its witness against the output it spends (see
/// `spec/script.md`, "Output programs"). A null (issuance-only) input spends nothing and
/// passes; its issuance is checked by the node with [`verify_issuance_signature`].
///
/// [`verify_issuance_signature`]: crate::sighash::verify_issuance_signature
pub fn verify_input(cache: &PrecomputedTx<'_>, input: usize) -> Result<(), ScriptError> {
    let txin = cache
        .tx()
        .inputs
        .get(input)
        .ok_or(ScriptError::InputIndex)?;
    if txin.prevout.is_null() {
        return Ok(());
    }
    let script_pubkey = &cache
        .spent_output(input)
        .ok_or(ScriptError::InputIndex)?
        .script_pubkey;
    let witness = &txin.witness.0;
    match classify_ref(script_pubkey) {
        ScriptKindRef::Burn => Err(ScriptError::Unspendable),
        ScriptKindRef::Reserved { .. } => Err(ScriptError::UnknownProgramVersion),
        ScriptKindRef::PayToKey(key) => {
            if witness.is_empty() {
                return Err(ScriptError::WitnessEmpty);
            }
            let mut checker = TransactionChecker::new(cache, input, sha256(script_pubkey))?;
            verify_p2k(key, witness, &mut checker)
        }
        ScriptKindRef::PayToScriptHash(program) => {
            let Some((script, args)) = witness.split_last() else {
                return Err(ScriptError::WitnessEmpty);
            };
            if script.len() > crate::limits::MAX_SCRIPT_BYTES {
                return Err(ScriptError::ScriptSize);
            }
            if sha256(script) != *program {
                return Err(ScriptError::WitnessProgramMismatch);
            }
            let mut checker = TransactionChecker::new(cache, input, *program)?;
            let mut stack = args.to_vec();
            execute(script, &mut stack, &mut checker)?;
            check_clean_stack(&stack)
        }
        ScriptKindRef::Bare => {
            let mut checker = TransactionChecker::new(cache, input, sha256(script_pubkey))?;
            let mut stack = witness.clone();
            execute(script_pubkey, &mut stack, &mut checker)?;
            check_clean_stack(&stack)
        }
    }
}

/// Verifies every non-null input of `tx`, whose inputs spend `spent` (one per input;
/// the entry of a null input is ignored). Stops at the first failing input.
pub fn verify_transaction(
    tx: &Transaction,
    spent: &[TxOut],
    chain_id: ChainId,
) -> Result<(), InputError> {
    let cache = PrecomputedTx::new(tx, spent, chain_id).map_err(|error| InputError {
        input: tx.inputs.len().min(spent.len()),
        error,
    })?;
    for (input, txin) in tx.inputs.iter().enumerate() {
        if txin.prevout.is_null() {
            continue;
        }
        verify_input(&cache, input).map_err(|error| InputError { input, error })?;
    }
    Ok(())
}

/// Whether `tx` may be included in a block of height `height` and time `time` as far
/// as its absolute lock time goes (Bitcoin's `IsFinalTx`): a lock time of 0, a lock
/// time below the block's height (heights) or time (times), or all inputs final.
pub fn is_final(tx: &Transaction, height: u32, time: u64) -> bool {
    if tx.lock_time == 0 {
        return true;
    }
    let limit = if tx.lock_time < LOCKTIME_THRESHOLD {
        u64::from(height)
    } else {
        time
    };
    if u64::from(tx.lock_time) < limit {
        return true;
    }
    tx.inputs
        .iter()
        .all(|input| input.sequence == SEQUENCE_FINAL)
}

/// Where a spent coin was confirmed: the height and time of the block that created it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct CoinConfirmation {
    pub height: u32,
    pub time: u64,
}

/// The BIP68 relative locks of a transaction: the last block height and the last block
/// time at which it is still locked. `None` means no lock of that kind.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SequenceLock {
    pub min_height: Option<u64>,
    pub min_time: Option<u64>,
}

impl SequenceLock {
    /// Whether a block of height `height` and time `time` may include the transaction.
    pub fn is_satisfied(&self, height: u32, time: u64) -> bool {
        self.min_height.is_none_or(|h| u64::from(height) > h)
            && self.min_time.is_none_or(|t| time > t)
    }
}

/// Computes the BIP68 relative locks of `tx` given where each input's coin was
/// confirmed (one entry per input; null inputs' entries are ignored). Inputs whose
/// sequence has the disable flag, and locks of value 0, add no constraint. A value of
/// `v` blocks means the coin must have `v` confirmations (height > coin height + v - 1);
/// a time value of `v` means `v * 512` seconds after the coin's block time.
pub fn sequence_lock(
    tx: &Transaction,
    coins: &[CoinConfirmation],
) -> Result<SequenceLock, ScriptError> {
    if coins.len() != tx.inputs.len() {
        return Err(ScriptError::SpentCount);
    }
    let mut lock = SequenceLock::default();
    for (input, coin) in tx.inputs.iter().zip(coins) {
        let sequence = input.sequence;
        if input.prevout.is_null() || sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG != 0 {
            continue;
        }
        let value = u64::from(sequence & SEQUENCE_LOCKTIME_MASK);
        if value == 0 {
            continue;
        }
        if sequence & SEQUENCE_LOCKTIME_TYPE_FLAG != 0 {
            let until = coin
                .time
                .saturating_add((value << SEQUENCE_LOCKTIME_GRANULARITY) - 1);
            lock.min_time = Some(lock.min_time.map_or(until, |t| t.max(until)));
        } else {
            let until = u64::from(coin.height) + value - 1;
            lock.min_height = Some(lock.min_height.map_or(until, |h| h.max(until)));
        }
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::{OutPoint, TxIn, Txid};

    #[test]
    fn lock_time_rules() {
        use ScriptError::UnsatisfiedLocktime as U;
        assert_eq!(check_lock_time(100, 0, 100), Ok(()));
        assert_eq!(check_lock_time(100, 0, 0), Ok(()));
        assert_eq!(check_lock_time(100, 0, 101), Err(U));
        assert_eq!(check_lock_time(100, SEQUENCE_FINAL, 50), Err(U));
        assert_eq!(
            check_lock_time(600_000_000, 0, 100),
            Err(U),
            "time vs height"
        );
        assert_eq!(
            check_lock_time(100, 0, 600_000_000),
            Err(U),
            "height vs time"
        );
        assert_eq!(check_lock_time(600_000_000, 0, 500_000_000), Ok(()));
        assert_eq!(check_lock_time(u32::MAX, 0, 0x1_0000_0000), Err(U));
    }

    #[test]
    fn sequence_rules() {
        use ScriptError::UnsatisfiedLocktime as U;
        let time = SEQUENCE_LOCKTIME_TYPE_FLAG;
        assert_eq!(check_sequence(10, 10), Ok(()));
        assert_eq!(check_sequence(10, 11), Err(U));
        assert_eq!(check_sequence(time | 10, 10), Err(U), "time vs blocks");
        assert_eq!(check_sequence(10, i64::from(time | 5)), Err(U));
        assert_eq!(check_sequence(time | 10, i64::from(time | 5)), Ok(()));
        assert_eq!(check_sequence(SEQUENCE_FINAL, 1), Err(U));
        assert_eq!(check_sequence(0, 1 << 31), Ok(()), "disabled operand");
        // Bits outside the mask are ignored on both sides.
        assert_eq!(check_sequence(0x0001_0005, 0x0002_0005), Ok(()));
    }

    fn tx(lock_time: u32, sequences: &[u32]) -> Transaction {
        Transaction {
            version: 1,
            inputs: sequences
                .iter()
                .enumerate()
                .map(|(i, s)| TxIn {
                    sequence: *s,
                    ..TxIn::spending(OutPoint::new(
                        Txid([1; 32]),
                        u32::try_from(i).expect("few inputs"),
                    ))
                })
                .collect(),
            outputs: vec![],
            lock_time,
            expiry_height: 0,
        }
    }

    /// Signatures are "valid" when their first byte is 1, for the equivalence test.
    struct Toy;
    impl Checker for Toy {
        fn check_signature(
            &mut self,
            sig: &[u8; SIG_BYTES],
            _: SighashType,
            _: &[u8; KEY_BYTES],
        ) -> Result<(), ScriptError> {
            if sig[0] == 1 {
                Ok(())
            } else {
                Err(ScriptError::SigInvalid)
            }
        }
        fn check_lock_time(&self, _: i64) -> Result<(), ScriptError> {
            Ok(())
        }
        fn check_sequence(&self, _: i64) -> Result<(), ScriptError> {
            Ok(())
        }
    }

    #[test]
    fn pay_to_key_path_equals_running_key_checksig() {
        let key = [7u8; 32];
        let script = p2k_equivalent_script(&key);
        let items: Vec<Vec<u8>> = vec![
            vec![],
            vec![1; 64],
            vec![2; 64],
            vec![1; 63],
            [vec![1; 64], vec![0x83]].concat(),
            [vec![1; 64], vec![0x01]].concat(),
            [vec![2; 64], vec![0x02]].concat(),
            vec![0; 521],
            vec![5],
        ];
        let mut witnesses: Vec<Vec<Vec<u8>>> = Vec::new();
        for a in &items {
            witnesses.push(vec![a.clone()]);
            for b in &items {
                witnesses.push(vec![a.clone(), b.clone()]);
            }
        }
        witnesses.push(vec![vec![1; 64]; MAX_STACK_ITEMS]);
        witnesses.push(vec![vec![1; 64]; MAX_STACK_ITEMS + 1]);
        for w in &witnesses {
            let mut stack = w.clone();
            let generic =
                execute(&script, &mut stack, &mut Toy).and_then(|()| check_clean_stack(&stack));
            assert_eq!(verify_p2k(&key, w, &mut Toy), generic, "{} items", w.len());
        }
        assert_eq!(
            verify_p2k(&key, &[], &mut Toy),
            Err(ScriptError::WitnessEmpty)
        );
    }

    #[test]
    fn finality() {
        assert!(is_final(&tx(0, &[0]), 1, 0));
        assert!(!is_final(&tx(100, &[0]), 100, 0));
        assert!(is_final(&tx(100, &[0]), 101, 0));
        assert!(is_final(&tx(100, &[SEQUENCE_FINAL]), 1, 0));
        assert!(!is_final(&tx(100, &[SEQUENCE_FINAL, 0]), 1, 0));
        assert!(!is_final(&tx(600_000_000, &[0]), 1_000_000, 600_000_000));
        assert!(is_final(&tx(600_000_000, &[0]), 1, 600_000_001));
    }

    #[test]
    fn relative_locks() {
        let t = tx(0, &[5, SEQUENCE_LOCKTIME_TYPE_FLAG | 2, SEQUENCE_FINAL, 0]);
        let coins = [
            CoinConfirmation {
                height: 100,
                time: 1_000,
            },
            CoinConfirmation {
                height: 90,
                time: 2_000,
            },
            CoinConfirmation { height: 1, time: 1 },
            CoinConfirmation {
                height: 500,
                time: 9_999,
            },
        ];
        let lock = sequence_lock(&t, &coins).expect("counts match");
        assert_eq!(lock.min_height, Some(104));
        assert_eq!(lock.min_time, Some(2_000 + 1024 - 1));
        assert!(!lock.is_satisfied(104, 10_000));
        assert!(!lock.is_satisfied(105, 3_023));
        assert!(lock.is_satisfied(105, 3_024));
        assert_eq!(sequence_lock(&t, &coins[..1]), Err(ScriptError::SpentCount));
        assert!(SequenceLock::default().is_satisfied(0, 0));
    }
}
