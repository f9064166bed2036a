//! The chain's clock bound (`spec/consensus.md`, "Clock"; `spec/chain.md`, "Block
//! time"). Validity only asks a block's time to exceed its parent's, which every node
//! can check at any later time. What keeps the chain's time near real time is a
//! vote-time rule: a validator refuses to vote for a proposal dated more than the
//! chain's `max_clock_drift_ms` ahead of its own clock, and never proposes such a block
//! itself. Without it, one proposer could date a block years ahead and every time lock
//! and HTLC refund would open at once, for good (block times never go back).
//!
//! There is no lower bound: a block dated in the past (but after its parent) only
//! delays time locks until the next honest proposer, and a bound that a block can fall
//! out of as time passes would let a value the validators are locked on become
//! unvotable in a later round.

/// Why a validator will not vote for (or propose) a block because of its time.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ClockError {
    #[error(
        "block time {time_ms} ms is {ahead_ms} ms ahead of this node's clock ({now_ms} ms); the chain spec allows {max_drift_ms} ms (limits.max_clock_drift_ms)"
    )]
    TooFarAhead {
        time_ms: u64,
        now_ms: u64,
        ahead_ms: u64,
        max_drift_ms: u32,
    },
}

/// The latest block time a node whose clock reads `now_ms` may propose or vote for.
pub fn latest_acceptable_time_ms(now_ms: u64, max_drift_ms: u32) -> u64 {
    now_ms.saturating_add(u64::from(max_drift_ms))
}

/// Checks a proposal's (or a block this node is about to propose) `time_ms` against
/// this node's clock `now_ms`: at most `max_drift_ms` ahead.
pub fn check_block_time(time_ms: u64, now_ms: u64, max_drift_ms: u32) -> Result<(), ClockError> {
    if time_ms <= latest_acceptable_time_ms(now_ms, max_drift_ms) {
        return Ok(());
    }
    Err(ClockError::TooFarAhead {
        time_ms,
        now_ms,
        ahead_ms: time_ms - now_ms,
        max_drift_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_inclusive_and_only_ahead() {
        let now = 1_700_000_000_000;
        assert_eq!(check_block_time(now + 30_000, now, 30_000), Ok(()));
        assert_eq!(
            check_block_time(now + 30_001, now, 30_000),
            Err(ClockError::TooFarAhead {
                time_ms: now + 30_001,
                now_ms: now,
                ahead_ms: 30_001,
                max_drift_ms: 30_000,
            })
        );
        // Far behind is not this rule's business (the parent rule bounds it).
        assert_eq!(check_block_time(1, now, 30_000), Ok(()));
        // A clock reading near the end of time does not overflow.
        assert_eq!(check_block_time(u64::MAX, u64::MAX - 5, 1_000), Ok(()));
    }

    #[test]
    fn the_message_names_the_spec_field() {
        let e = check_block_time(100_000, 0, 1_000).expect_err("ahead");
        assert!(e.to_string().contains("limits.max_clock_drift_ms"), "{e}");
    }
}
