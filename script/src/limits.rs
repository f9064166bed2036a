//! Hard limits of the script VM. Every one bounds the work a single input can cause, so
//! that verifying any script takes bounded time and memory (there are no loops or
//! backward jumps either). The values are consensus rules: see `spec/script.md`.

/// Largest script the VM runs: an output script, or the witness script of a
/// pay-to-script-hash spend.
pub const MAX_SCRIPT_BYTES: usize = 10_000;
/// Largest stack element: a push in a script, or an initial stack item from the
/// witness. The witness script of a pay-to-script-hash spend is not an element (it is
/// bounded by [`MAX_SCRIPT_BYTES`]).
pub const MAX_ELEMENT_BYTES: usize = 520;
/// Most items on the main and alt stacks together, checked after every instruction.
pub const MAX_STACK_ITEMS: usize = 1_000;
/// Most non-push opcodes in one script (executed or not); a multisig also counts
/// one per key, so this bounds the signature checks of one script as well.
pub const MAX_OPS_PER_SCRIPT: usize = 201;
/// Most keys in one `OP_CHECKMULTISIG`.
pub const MAX_MULTISIG_KEYS: usize = 20;
/// Longest number operand of the arithmetic opcodes, in bytes.
pub const MAX_NUM_BYTES: usize = 4;
/// Longest operand of `OP_CHECKLOCKTIMEVERIFY` and `OP_CHECKSEQUENCEVERIFY`: five bytes,
/// so that every `u32` lock time and sequence can be expressed as a positive number.
pub const MAX_LOCKTIME_NUM_BYTES: usize = 5;
/// Length of an x-only public key.
pub const KEY_BYTES: usize = 32;
/// Length of a BIP340 signature without a hash type byte (hash type ALL).
pub const SIG_BYTES: usize = 64;
/// The bytes every input carries outside its witness (36-byte outpoint, 4-byte sequence,
/// 1-byte issuance flag): the smallest encoded input. Counted towards the input's
/// signature-check budget so that a pay-to-key spend (a 66-byte witness) gets its check.
pub const SIG_CHECK_BASE_BYTES: usize = 41;
/// Bytes of an input (its witness plus [`SIG_CHECK_BASE_BYTES`]) that pay for one
/// signature check. An input may check at most
/// `(SIG_CHECK_BASE_BYTES + witness bytes) / BYTES_PER_SIG_CHECK` non-empty signatures,
/// so no transaction or block makes a node check more than one signature per 96 bytes
/// (see `spec/script.md`, "Signature-check budget").
pub const BYTES_PER_SIG_CHECK: usize = 96;
