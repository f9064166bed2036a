//! The script interpreter: a stack machine with no loops and no backward jumps, so every
//! script runs in time bounded by its length. The rules are in `spec/script.md`.
//!
//! The interpreter knows nothing about transactions: signatures and lock times are
//! checked through a [`Checker`], which `verify` implements for a real transaction input.

use bitcoin_hashes::{hash160, sha256, sha256d};

use crate::error::ScriptError;
use crate::instruction::{Instruction, decode_at, is_minimal_push};
use crate::limits::{
    KEY_BYTES, MAX_ELEMENT_BYTES, MAX_LOCKTIME_NUM_BYTES, MAX_MULTISIG_KEYS, MAX_NUM_BYTES,
    MAX_OPS_PER_SCRIPT, MAX_SCRIPT_BYTES, MAX_STACK_ITEMS, SIG_BYTES,
};
use crate::num::{self, cast_to_bool};
use crate::opcodes::*;
use crate::sighash::SighashType;

/// The main (or alt) stack; the last element is the top.
pub type Stack = Vec<Vec<u8>>;

/// What the interpreter asks of the transaction it runs for.
pub trait Checker {
    /// Verifies a BIP340 signature with the given hash type against a 32-byte key.
    /// Sizes and the hash type byte have already been checked. Errors: `PUBKEY_TYPE`
    /// (not a valid x-only point), `SIGHASH_SINGLE_NO_OUTPUT`, `SIG_INVALID`.
    fn check_signature(
        &mut self,
        signature: &[u8; SIG_BYTES],
        hash_type: SighashType,
        key: &[u8; KEY_BYTES],
    ) -> Result<(), ScriptError>;

    /// `OP_CHECKLOCKTIMEVERIFY` with a non-negative operand.
    fn check_lock_time(&self, lock_time: i64) -> Result<(), ScriptError>;

    /// `OP_CHECKSEQUENCEVERIFY` with a non-negative operand.
    fn check_sequence(&self, sequence: i64) -> Result<(), ScriptError>;
}

/// A checker for scripts run outside any transaction (tests, tools): every non-empty
/// signature is `SIG_INVALID` and every lock is `UNSATISFIED_LOCKTIME`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTransaction;

impl Checker for NoTransaction {
    fn check_signature(
        &mut self,
        _: &[u8; SIG_BYTES],
        _: SighashType,
        _: &[u8; KEY_BYTES],
    ) -> Result<(), ScriptError> {
        Err(ScriptError::SigInvalid)
    }
    fn check_lock_time(&self, _: i64) -> Result<(), ScriptError> {
        Err(ScriptError::UnsatisfiedLocktime)
    }
    fn check_sequence(&self, _: i64) -> Result<(), ScriptError> {
        Err(ScriptError::UnsatisfiedLocktime)
    }
}

/// Splits a non-empty signature into its 64 bytes and hash type: 64 bytes is ALL; 65
/// bytes ends in an explicit hash type other than ALL (`SIG_HASHTYPE`); any other
/// length is `SIG_SIZE`.
pub fn parse_signature(sig: &[u8]) -> Result<(&[u8; SIG_BYTES], SighashType), ScriptError> {
    let (body, hash_type) = match sig.len() {
        64 => (sig, SighashType::All),
        65 => (
            &sig[..SIG_BYTES],
            SighashType::from_explicit_byte(sig[SIG_BYTES]).ok_or(ScriptError::SigHashtype)?,
        ),
        _ => return Err(ScriptError::SigSize),
    };
    let body = <&[u8; SIG_BYTES]>::try_from(body).map_err(|_| ScriptError::SigSize)?;
    Ok((body, hash_type))
}

/// One signature check as `OP_CHECKSIG` does it: the key must be 32 bytes; an empty
/// signature is `false`; anything else must verify (there is no "failed = false").
pub fn check_sig<C: Checker + ?Sized>(
    checker: &mut C,
    signature: &[u8],
    key: &[u8],
) -> Result<bool, ScriptError> {
    let key = <&[u8; KEY_BYTES]>::try_from(key).map_err(|_| ScriptError::PubkeyType)?;
    if signature.is_empty() {
        return Ok(false);
    }
    let (sig, hash_type) = parse_signature(signature)?;
    checker.check_signature(sig, hash_type, key)?;
    Ok(true)
}

/// Checks the witness items that become the initial stack: at most
/// [`MAX_STACK_ITEMS`] (`STACK_SIZE`), each at most [`MAX_ELEMENT_BYTES`] (`PUSH_SIZE`).
pub fn check_initial_stack(items: &[Vec<u8>]) -> Result<(), ScriptError> {
    if items.len() > MAX_STACK_ITEMS {
        return Err(ScriptError::StackSize);
    }
    if items.iter().any(|item| item.len() > MAX_ELEMENT_BYTES) {
        return Err(ScriptError::PushSize);
    }
    Ok(())
}

/// The `OP_IF` nesting, kept as a depth and the position of the first false branch so
/// that "is this instruction executed" is O(1) however deep the nesting.
#[derive(Debug, Default)]
struct Conditions {
    depth: usize,
    first_false: Option<usize>,
}

impl Conditions {
    fn executing(&self) -> bool {
        self.first_false.is_none()
    }
    fn push(&mut self, value: bool) {
        if !value && self.first_false.is_none() {
            self.first_false = Some(self.depth);
        }
        self.depth += 1;
    }
    fn toggle(&mut self) -> Result<(), ScriptError> {
        let top = self
            .depth
            .checked_sub(1)
            .ok_or(ScriptError::UnbalancedConditional)?;
        match self.first_false {
            None => self.first_false = Some(top),
            Some(f) if f == top => self.first_false = None,
            Some(_) => {} // an outer branch is false: this one stays unexecuted
        }
        Ok(())
    }
    fn pop(&mut self) -> Result<(), ScriptError> {
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or(ScriptError::UnbalancedConditional)?;
        if self.first_false == Some(self.depth) {
            self.first_false = None;
        }
        Ok(())
    }
}

/// Runs `script` on `stack` (which holds the initial stack on entry and the final stack
/// on success). Checks the script size and the initial stack first. The caller applies
/// the clean-stack rule.
pub fn execute<C: Checker + ?Sized>(
    script: &[u8],
    stack: &mut Stack,
    checker: &mut C,
) -> Result<(), ScriptError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(ScriptError::ScriptSize);
    }
    check_initial_stack(stack)?;
    let mut alt: Stack = Vec::new();
    let mut conditions = Conditions::default();
    let mut op_count = 0usize;
    let mut pos = 0;
    while pos < script.len() {
        let (instruction, next) = decode_at(script, pos).map_err(|_| ScriptError::BadOpcode)?;
        pos = next;
        let executing = conditions.executing();
        match instruction {
            Instruction::Push { opcode, data } => {
                // Checked whether executed or not: a script is valid or invalid as a
                // whole, never depending on the branch taken.
                if data.len() > MAX_ELEMENT_BYTES {
                    return Err(ScriptError::PushSize);
                }
                if !is_minimal_push(opcode, data) {
                    return Err(ScriptError::MinimalData);
                }
                if executing {
                    stack.push(data.to_vec());
                }
            }
            Instruction::Op(op) => {
                if !is_defined(op) {
                    return Err(ScriptError::BadOpcode);
                }
                if op > OP_16 {
                    op_count += 1;
                    if op_count > MAX_OPS_PER_SCRIPT {
                        return Err(ScriptError::OpCount);
                    }
                }
                if executing || (OP_IF..=OP_ENDIF).contains(&op) {
                    step(
                        op,
                        executing,
                        stack,
                        &mut alt,
                        &mut conditions,
                        &mut op_count,
                        checker,
                    )?;
                }
            }
        }
        if stack.len() + alt.len() > MAX_STACK_ITEMS {
            return Err(ScriptError::StackSize);
        }
    }
    if conditions.depth != 0 {
        return Err(ScriptError::UnbalancedConditional);
    }
    Ok(())
}

fn need(stack: &Stack, n: usize) -> Result<usize, ScriptError> {
    if stack.len() < n {
        Err(ScriptError::InvalidStackOperation)
    } else {
        Ok(stack.len())
    }
}

fn pop(stack: &mut Stack) -> Result<Vec<u8>, ScriptError> {
    stack.pop().ok_or(ScriptError::InvalidStackOperation)
}

fn pop_num(stack: &mut Stack, max_len: usize) -> Result<i64, ScriptError> {
    num::decode(&pop(stack)?, max_len)
}

fn push_bool(stack: &mut Stack, value: bool) {
    stack.push(if value { vec![1] } else { Vec::new() });
}

fn push_num(stack: &mut Stack, value: i64) {
    stack.push(num::encode(value));
}

/// A count or index from the stack as a `usize`, if it is in `0..limit`.
fn index_below(n: i64, limit: usize) -> Option<usize> {
    usize::try_from(n).ok().filter(|n| *n < limit)
}

#[allow(clippy::too_many_arguments)]
fn step<C: Checker + ?Sized>(
    op: u8,
    executing: bool,
    stack: &mut Stack,
    alt: &mut Stack,
    conditions: &mut Conditions,
    op_count: &mut usize,
    checker: &mut C,
) -> Result<(), ScriptError> {
    use ScriptError as E;
    match op {
        OP_1NEGATE | OP_1..=OP_16 => {
            push_num(stack, small_int_value(op).ok_or(E::BadOpcode)?);
        }
        OP_IF | OP_NOTIF => {
            let mut value = false;
            if executing {
                let arg = stack.pop().ok_or(E::UnbalancedConditional)?;
                value = match arg.as_slice() {
                    [] => false,
                    [1] => true,
                    _ => return Err(E::MinimalIf),
                };
                if op == OP_NOTIF {
                    value = !value;
                }
            }
            conditions.push(value);
        }
        OP_ELSE => conditions.toggle()?,
        OP_ENDIF => conditions.pop()?,
        OP_VERIFY => {
            if !cast_to_bool(&pop(stack)?) {
                return Err(E::Verify);
            }
        }
        OP_RETURN => return Err(E::OpReturn),

        OP_TOALTSTACK => alt.push(pop(stack)?),
        OP_FROMALTSTACK => stack.push(alt.pop().ok_or(E::InvalidAltstackOperation)?),
        OP_2DROP => {
            let len = need(stack, 2)?;
            stack.truncate(len - 2);
        }
        OP_2DUP => {
            let len = need(stack, 2)?;
            stack.extend_from_within(len - 2..);
        }
        OP_3DUP => {
            let len = need(stack, 3)?;
            stack.extend_from_within(len - 3..);
        }
        OP_2OVER => {
            let len = need(stack, 4)?;
            stack.extend_from_within(len - 4..len - 2);
        }
        OP_2SWAP => {
            let len = need(stack, 4)?;
            stack[len - 4..].rotate_left(2);
        }
        OP_IFDUP => {
            let len = need(stack, 1)?;
            if cast_to_bool(&stack[len - 1]) {
                stack.extend_from_within(len - 1..);
            }
        }
        OP_DEPTH => push_num(stack, i64::try_from(stack.len()).map_err(|_| E::StackSize)?),
        OP_DROP => {
            pop(stack)?;
        }
        OP_DUP => {
            let len = need(stack, 1)?;
            stack.extend_from_within(len - 1..);
        }
        OP_NIP => {
            let len = need(stack, 2)?;
            stack.remove(len - 2);
        }
        OP_OVER => {
            let len = need(stack, 2)?;
            stack.extend_from_within(len - 2..len - 1);
        }
        OP_PICK | OP_ROLL => {
            need(stack, 2)?;
            let n = pop_num(stack, MAX_NUM_BYTES)?;
            let depth = index_below(n, stack.len()).ok_or(E::InvalidStackOperation)?;
            let at = stack.len() - 1 - depth;
            let item = if op == OP_PICK {
                stack[at].clone()
            } else {
                stack.remove(at)
            };
            stack.push(item);
        }
        OP_ROT => {
            let len = need(stack, 3)?;
            stack[len - 3..].rotate_left(1);
        }
        OP_SWAP => {
            let len = need(stack, 2)?;
            stack.swap(len - 2, len - 1);
        }
        OP_TUCK => {
            let len = need(stack, 2)?;
            let top = stack[len - 1].clone();
            stack.insert(len - 2, top);
        }

        OP_SIZE => {
            let len = need(stack, 1)?;
            let size = stack[len - 1].len();
            push_num(stack, i64::try_from(size).map_err(|_| E::PushSize)?);
        }
        OP_EQUAL | OP_EQUALVERIFY => {
            need(stack, 2)?;
            let a = pop(stack)?;
            let b = pop(stack)?;
            if op == OP_EQUALVERIFY {
                if a != b {
                    return Err(E::EqualVerify);
                }
            } else {
                push_bool(stack, a == b);
            }
        }

        OP_1ADD | OP_1SUB | OP_NEGATE | OP_ABS | OP_NOT | OP_0NOTEQUAL => {
            let n = pop_num(stack, MAX_NUM_BYTES)?;
            let result = match op {
                OP_1ADD => n + 1,
                OP_1SUB => n - 1,
                OP_NEGATE => -n,
                OP_ABS => n.abs(),
                OP_NOT => i64::from(n == 0),
                _ => i64::from(n != 0),
            };
            push_num(stack, result);
        }
        OP_ADD
        | OP_SUB
        | OP_BOOLAND
        | OP_BOOLOR
        | OP_NUMEQUAL
        | OP_NUMEQUALVERIFY
        | OP_NUMNOTEQUAL
        | OP_LESSTHAN
        | OP_GREATERTHAN
        | OP_LESSTHANOREQUAL
        | OP_GREATERTHANOREQUAL
        | OP_MIN
        | OP_MAX => {
            need(stack, 2)?;
            let b = pop_num(stack, MAX_NUM_BYTES)?;
            let a = pop_num(stack, MAX_NUM_BYTES)?;
            let result = match op {
                OP_ADD => a + b,
                OP_SUB => a - b,
                OP_BOOLAND => i64::from(a != 0 && b != 0),
                OP_BOOLOR => i64::from(a != 0 || b != 0),
                OP_NUMEQUAL | OP_NUMEQUALVERIFY => i64::from(a == b),
                OP_NUMNOTEQUAL => i64::from(a != b),
                OP_LESSTHAN => i64::from(a < b),
                OP_GREATERTHAN => i64::from(a > b),
                OP_LESSTHANOREQUAL => i64::from(a <= b),
                OP_GREATERTHANOREQUAL => i64::from(a >= b),
                OP_MIN => a.min(b),
                _ => a.max(b),
            };
            if op == OP_NUMEQUALVERIFY {
                if result == 0 {
                    return Err(E::NumEqualVerify);
                }
            } else {
                push_num(stack, result);
            }
        }
        OP_WITHIN => {
            need(stack, 3)?;
            let max = pop_num(stack, MAX_NUM_BYTES)?;
            let min = pop_num(stack, MAX_NUM_BYTES)?;
            let x = pop_num(stack, MAX_NUM_BYTES)?;
            push_bool(stack, min <= x && x < max);
        }

        OP_SHA256 => {
            let item = pop(stack)?;
            stack.push(sha256::Hash::hash(&item).to_byte_array().to_vec());
        }
        OP_HASH160 => {
            let item = pop(stack)?;
            stack.push(hash160::Hash::hash(&item).to_byte_array().to_vec());
        }
        OP_HASH256 => {
            let item = pop(stack)?;
            stack.push(sha256d::Hash::hash(&item).to_byte_array().to_vec());
        }

        OP_CHECKSIG | OP_CHECKSIGVERIFY => {
            need(stack, 2)?;
            let key = pop(stack)?;
            let sig = pop(stack)?;
            let valid = check_sig(checker, &sig, &key)?;
            if op == OP_CHECKSIGVERIFY {
                if !valid {
                    return Err(E::CheckSigVerify);
                }
            } else {
                push_bool(stack, valid);
            }
        }
        OP_CHECKMULTISIG | OP_CHECKMULTISIGVERIFY => {
            let valid = check_multisig(stack, op_count, checker)?;
            if op == OP_CHECKMULTISIGVERIFY {
                if !valid {
                    return Err(E::CheckMultiSigVerify);
                }
            } else {
                push_bool(stack, valid);
            }
        }

        OP_CHECKLOCKTIMEVERIFY | OP_CHECKSEQUENCEVERIFY => {
            let len = need(stack, 1)?;
            let n = num::decode(&stack[len - 1], MAX_LOCKTIME_NUM_BYTES)?;
            if n < 0 {
                return Err(E::NegativeLocktime);
            }
            if op == OP_CHECKLOCKTIMEVERIFY {
                checker.check_lock_time(n)?;
            } else {
                checker.check_sequence(n)?;
            }
        }

        _ => return Err(E::BadOpcode),
    }
    Ok(())
}

/// `<slot 1> .. <slot n> <m> <key 1> .. <key n> <n> OP_CHECKMULTISIG`: slot i is the
/// signature for key i or empty. True iff at least `m` slots hold valid signatures; a
/// non-empty invalid one is an error.
fn check_multisig<C: Checker + ?Sized>(
    stack: &mut Stack,
    op_count: &mut usize,
    checker: &mut C,
) -> Result<bool, ScriptError> {
    use ScriptError as E;
    let n = pop_num(stack, MAX_NUM_BYTES)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_MULTISIG_KEYS).contains(n))
        .ok_or(E::PubkeyCount)?;
    *op_count += n;
    if *op_count > MAX_OPS_PER_SCRIPT {
        return Err(E::OpCount);
    }
    let len = need(stack, n)?;
    let keys = stack.split_off(len - n);
    let m = pop_num(stack, MAX_NUM_BYTES)?;
    let m = usize::try_from(m)
        .ok()
        .filter(|m| (1..=n).contains(m))
        .ok_or(E::SigCount)?;
    let len = need(stack, n)?;
    let slots = stack.split_off(len - n);
    if keys.iter().any(|k| k.len() != KEY_BYTES) {
        return Err(E::PubkeyType);
    }
    let mut valid = 0usize;
    for (sig, key) in slots.iter().zip(&keys) {
        if check_sig(checker, sig, key)? {
            valid += 1;
        }
    }
    Ok(valid >= m)
}

#[cfg(test)]
mod tests;
