//! The one script error enum. Every variant has a stable SCREAMING_SNAKE name that the
//! test vectors (`spec/vectors/script_cases.json`) use; the names never change once
//! published, and a peer implementation must report the same name for the same failure.

use std::fmt;
use std::str::FromStr;

macro_rules! script_errors {
    ($($(#[$meta:meta])* $variant:ident = $name:literal, $message:literal;)*) => {
        /// Why a script (or the spend of an input) failed. Fieldless and `Copy` on
        /// purpose, like Bitcoin Core's `ScriptError`: it is compared by the vectors and
        /// returned on the hot path. [`InputError`] adds which input failed.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum ScriptError {
            $($(#[$meta])* $variant,)*
        }

        impl ScriptError {
            /// Every error, in declaration order.
            pub const ALL: &'static [ScriptError] = &[$(ScriptError::$variant,)*];

            /// The stable name used by the test vectors, e.g. `"SIG_INVALID"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ScriptError::$variant => $name,)*
                }
            }

            /// The error with the stable name `name`, if there is one.
            pub fn from_name(name: &str) -> Option<ScriptError> {
                match name {
                    $($name => Some(ScriptError::$variant),)*
                    _ => None,
                }
            }

            /// A lowercase description of the failure.
            pub const fn message(self) -> &'static str {
                match self {
                    $(ScriptError::$variant => $message,)*
                }
            }
        }
    };
}

script_errors! {
    /// The script finished with a false top item.
    EvalFalse = "EVAL_FALSE", "script finished with a false value on the stack";
    /// `OP_RETURN` was executed.
    OpReturn = "OP_RETURN", "executed OP_RETURN";
    /// A script exceeds `MAX_SCRIPT_BYTES`.
    ScriptSize = "SCRIPT_SIZE", "script is larger than 10000 bytes";
    /// A push or an initial stack item exceeds `MAX_ELEMENT_BYTES`.
    PushSize = "PUSH_SIZE", "stack element is larger than 520 bytes";
    /// More than `MAX_OPS_PER_SCRIPT` non-push operations.
    OpCount = "OP_COUNT", "script has more than 201 non-push operations (multisig keys included)";
    /// More than `MAX_STACK_ITEMS` on the main and alt stacks.
    StackSize = "STACK_SIZE", "more than 1000 items on the main and alt stacks together";
    /// Multisig `m` outside `1..=n`.
    SigCount = "SIG_COUNT", "multisig signature count m is not between 1 and the key count n";
    /// Multisig `n` outside `1..=MAX_MULTISIG_KEYS`.
    PubkeyCount = "PUBKEY_COUNT", "multisig key count n is not between 1 and 20";
    /// `OP_VERIFY` on a false value.
    Verify = "VERIFY", "OP_VERIFY found a false value";
    /// `OP_EQUALVERIFY` on unequal items.
    EqualVerify = "EQUALVERIFY", "OP_EQUALVERIFY found unequal items";
    /// `OP_CHECKSIGVERIFY` with an empty signature.
    CheckSigVerify = "CHECKSIGVERIFY", "OP_CHECKSIGVERIFY got an empty signature";
    /// `OP_CHECKMULTISIGVERIFY` with too few valid signatures.
    CheckMultiSigVerify = "CHECKMULTISIGVERIFY", "OP_CHECKMULTISIGVERIFY found fewer valid signatures than required";
    /// `OP_NUMEQUALVERIFY` on unequal numbers.
    NumEqualVerify = "NUMEQUALVERIFY", "OP_NUMEQUALVERIFY found unequal numbers";
    /// An undefined opcode (executed or not), or a push that runs past the end.
    BadOpcode = "BAD_OPCODE", "undefined opcode or a push running past the end of the script";
    /// Too few stack items for an operation, or a `PICK`/`ROLL` index out of range.
    InvalidStackOperation = "INVALID_STACK_OPERATION", "operation needs more stack items than there are";
    /// `OP_FROMALTSTACK` on an empty alt stack.
    InvalidAltstackOperation = "INVALID_ALTSTACK_OPERATION", "OP_FROMALTSTACK on an empty alt stack";
    /// `OP_ELSE`/`OP_ENDIF` without `OP_IF`, an `OP_IF` never closed, or `OP_IF` on an
    /// empty stack.
    UnbalancedConditional = "UNBALANCED_CONDITIONAL", "unbalanced OP_IF/OP_NOTIF/OP_ELSE/OP_ENDIF";
    /// A negative operand to `OP_CHECKLOCKTIMEVERIFY`/`OP_CHECKSEQUENCEVERIFY`.
    NegativeLocktime = "NEGATIVE_LOCKTIME", "negative lock time operand";
    /// The transaction's lock time or the input's sequence does not satisfy the script.
    UnsatisfiedLocktime = "UNSATISFIED_LOCKTIME", "the transaction's lock time or the input's sequence does not satisfy the script's lock";
    /// A push or a number operand not in its shortest encoding.
    MinimalData = "MINIMALDATA", "push or number operand not in its minimal encoding";
    /// An `OP_IF`/`OP_NOTIF` argument other than empty or `0x01`.
    MinimalIf = "MINIMALIF", "OP_IF/OP_NOTIF argument must be empty or exactly 0x01";
    /// A number operand longer than 4 bytes (5 for lock times).
    NumberOverflow = "NUMBER_OVERFLOW", "number operand longer than 4 bytes (5 for lock time operands)";
    /// A non-empty signature that is not 64 or 65 bytes.
    SigSize = "SIG_SIZE", "signature is not 64 or 65 bytes";
    /// A 65-byte signature whose hash type byte is not one of the five explicit types.
    SigHashtype = "SIG_HASHTYPE", "invalid signature hash type byte (ALL is the 64-byte form, never an explicit 0x01)";
    /// A non-empty signature that does not verify.
    SigInvalid = "SIG_INVALID", "signature verification failed";
    /// A key that is not 32 bytes, or not a valid x-only point when a signature is
    /// checked against it.
    PubkeyType = "PUBKEY_TYPE", "public key is not a valid 32-byte x-only key";
    /// The script did not leave exactly one item.
    Cleanstack = "CLEANSTACK", "script must leave exactly one item on the stack";
    /// The witness script does not hash to the pay-to-script-hash program.
    WitnessProgramMismatch = "WITNESS_PROGRAM_MISMATCH", "witness script does not hash to the pay-to-script-hash program";
    /// A pay-to-key or pay-to-script-hash spend with no witness.
    WitnessEmpty = "WITNESS_EMPTY", "witness is empty but the output program needs at least one item";
    /// The spent output uses a reserved program version.
    UnknownProgramVersion = "UNKNOWN_PROGRAM_VERSION", "spent output uses a reserved program version and cannot be spent";
    /// The input checked more non-empty signatures than its witness size pays for
    /// (`limits::BYTES_PER_SIG_CHECK`).
    SigCheckBudget = "SIG_CHECK_BUDGET", "input checks more signatures than its witness size allows (one per 96 bytes of input)";
    /// The spent output is a burn.
    Unspendable = "UNSPENDABLE", "spent output is a burn (starts with OP_RETURN) and can never be spent";
    /// A SINGLE signature on an input with no output at the same index.
    SighashSingleNoOutput = "SIGHASH_SINGLE_NO_OUTPUT", "signature with hash type SINGLE on an input that has no output at the same index";
    /// An input index beyond the transaction's inputs.
    InputIndex = "INPUT_INDEX", "input index out of range";
    /// Spent outputs not given one per input.
    SpentCount = "SPENT_COUNT", "spent outputs must be given exactly one per input";
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.name())
    }
}

impl std::error::Error for ScriptError {}

/// A name that is not one of [`ScriptError::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown script error name {0:?}")]
pub struct UnknownErrorName(pub String);

impl FromStr for ScriptError {
    type Err = UnknownErrorName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScriptError::from_name(s).ok_or_else(|| UnknownErrorName(s.chars().take(64).collect()))
    }
}

/// A transaction input whose spend failed, and why.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[error("input {input}: {error}")]
pub struct InputError {
    /// The index of the failing input. For [`ScriptError::SpentCount`] it is the first
    /// index at which the inputs and the spent outputs disagree.
    pub input: usize,
    pub error: ScriptError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for e in ScriptError::ALL {
            assert!(seen.insert(e.name()), "duplicate name {}", e.name());
            assert_eq!(e.name().parse::<ScriptError>(), Ok(*e));
            assert!(
                e.name()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            );
        }
        assert!("OK".parse::<ScriptError>().is_err());
        assert_eq!(ScriptError::ALL.len(), 35);
    }

    #[test]
    fn messages_are_lowercase_and_name_the_error() {
        for e in ScriptError::ALL {
            let first = e.message().chars().next().expect("non-empty message");
            assert!(
                !first.is_ascii_uppercase() || e.message().starts_with("OP_"),
                "{}",
                e.message()
            );
            assert!(e.to_string().ends_with(&format!("({})", e.name())));
        }
        let err = InputError {
            input: 3,
            error: ScriptError::SigInvalid,
        };
        assert_eq!(
            err.to_string(),
            "input 3: signature verification failed (SIG_INVALID)"
        );
    }
}
