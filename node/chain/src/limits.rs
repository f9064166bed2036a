//! Hard limits of the chain. Every count and size that comes from outside is bounded by
//! one of these before anything is allocated for it. A chain spec may set lower limits
//! (`[limits]`), never higher ones.

/// The only block header version defined so far.
pub const BLOCK_VERSION: u32 = 1;
/// Size of an encoded header in bytes: version 4, height 8, prev hash 32, time 8, merkle
/// root 32, UTXO commitment 32, validator-set hash 32, proposer 32.
pub const HEADER_BYTES: usize = 180;
/// Most transactions one block may hold.
pub const MAX_BLOCK_TXS: usize = 100_000;
/// Largest block (header, transaction count and transactions; the certificate is
/// bounded separately by [`MAX_VALIDATORS`]) in bytes.
pub const MAX_BLOCK_BYTES: usize = 16_000_000;
/// Most validators a validator set may hold (and so signatures in a certificate).
pub const MAX_VALIDATORS: usize = 128;
/// Largest total voting power: keeps `3 * power` and sums far from overflow.
pub const MAX_TOTAL_VOTING_POWER: u64 = 1 << 60;
/// Most keys the issuer registry may list for one asset class.
pub const MAX_ISSUERS_PER_CLASS: usize = 1_000;
/// Most genesis allocations.
pub const MAX_ALLOCATIONS: usize = 10_000;
/// Largest chain spec file in bytes.
pub const MAX_CHAIN_SPEC_BYTES: usize = 4_000_000;
/// Longest chain or validator name in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Size of one encoded commit signature: x-only key 32 + BIP340 signature 64.
pub const COMMIT_SIGNATURE_BYTES: usize = 96;
/// Largest encoded certificate: height 8, round 4, block hash 32, count (at most 3
/// bytes), signatures.
pub const MAX_CERTIFICATE_BYTES: usize = 8 + 4 + 32 + 3 + MAX_VALIDATORS * COMMIT_SIGNATURE_BYTES;
/// Smallest `max_clock_drift_ms` a chain spec may set: below a second, ordinary clock
/// error between honest validators (NTP keeps them within milliseconds, a restarted
/// machine may be off by more) would make them refuse each other's proposals.
pub const MIN_CLOCK_DRIFT_MS: u64 = 1_000;
/// Largest `max_clock_drift_ms` a chain spec may set: one hour. A longer drift would let
/// one proposer open every time lock of the next hour at once.
pub const MAX_CLOCK_DRIFT_MS: u64 = 3_600_000;
/// The default `max_clock_drift_ms`: 30 seconds.
pub const DEFAULT_CLOCK_DRIFT_MS: u32 = 30_000;
