//! Hard limits of the data model. Every count and size that comes from outside is
//! bounded by one of these before anything is allocated for it.

/// Largest serialized transaction, witness included, in bytes.
pub const MAX_TX_SIZE_BYTES: usize = 400_000;
/// Most inputs one transaction may have.
pub const MAX_TX_INPUTS: usize = 2_500;
/// Most outputs one transaction may have.
pub const MAX_TX_OUTPUTS: usize = 2_500;
/// Largest output script.
pub const MAX_SCRIPT_PUBKEY_BYTES: usize = 10_000;
/// Most witness stack items for one input.
pub const MAX_WITNESS_ITEMS: usize = 100;
/// Largest single witness item (a witness script can be this large).
pub const MAX_WITNESS_ITEM_BYTES: usize = 10_000;
/// Largest canonical asset contract.
pub const MAX_CONTRACT_BYTES: usize = 4_096;
/// Largest value a compact size may announce at all, whatever it counts.
pub const MAX_COMPACT_SIZE: u64 = 0x0200_0000;
/// Most decimal places an asset may have: 10^18 still fits in the amount range.
pub const MAX_PRECISION: u8 = 18;
