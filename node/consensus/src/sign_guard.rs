//! The double-sign guard: the last vote and proposal a validator signed, kept on disk
//! so that no crash can make it sign a conflicting one (`spec/consensus.md`,
//! "After a crash").
//!
//! For each step (prevote, precommit, proposal) the guard keeps the highest height
//! signed and the value signed in each round of it. Before a signature is returned, the new record is
//! written to a temporary file, synced, and renamed over the state file (then the
//! directory is synced), so the file always holds a complete record that is never
//! older than a signature that left the signer. Signing the identical message again
//! is allowed (a restarted validator re-sends what it signed, and Malachite replays a
//! height from round 0); a different value at a recorded height and round, or a
//! height below the recorded one, is refused with an error naming both. Tendermint's `priv_validator_state.json` plays
//! the same part.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::types::{BlockId, Height};

/// Name of the state file in the consensus directory.
pub const SIGNED_STATE_FILE: &str = "signed_state";
/// First line of the state file: its format and version.
const STATE_MAGIC: &str = "settle-signed-state 1";
/// Most rounds of one height recorded per step (a height this long is not seen in
/// practice; beyond it the guard refuses to sign rather than forget).
pub const MAX_ROUNDS_RECORDED: usize = 1_024;
/// Largest state file read back: three steps of [`MAX_ROUNDS_RECORDED`] lines of at
/// most about 110 bytes; anything larger is not ours.
const MAX_STATE_FILE_BYTES: u64 = 3 * 1_024 * 128 + 4_096;

/// What a signature is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    Prevote,
    Precommit,
    /// A proposal, and the signature closing its part stream (both sign the same
    /// height, round, proof-of-lock round and block).
    Proposal,
}

impl Step {
    const ALL: [Step; 3] = [Step::Prevote, Step::Precommit, Step::Proposal];

    fn name(self) -> &'static str {
        match self {
            Step::Prevote => "prevote",
            Step::Precommit => "precommit",
            Step::Proposal => "proposal",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The signed value: a block, nil, or for a proposal a block with its proof-of-lock
/// round (-1: none).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SignedValue {
    Nil,
    Block(BlockId),
    Proposal { pol_round: i64, block: BlockId },
}

impl fmt::Display for SignedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignedValue::Nil => write!(f, "nil"),
            SignedValue::Block(id) => write!(f, "{}", hex::encode(id.0)),
            SignedValue::Proposal { pol_round, block } => {
                write!(f, "{}@pol{pol_round}", hex::encode(block.0))
            }
        }
    }
}

/// One signature, as recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Record {
    pub height: Height,
    pub round: u32,
    pub value: SignedValue,
}

/// Why the guard would not let a signature out.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "refusing to sign a {step} for {new} at height {height} round {round}: this validator already signed {old} there (double signing)"
    )]
    Conflict {
        step: &'static str,
        height: Height,
        round: u32,
        old: SignedValue,
        new: SignedValue,
    },
    #[error(
        "refusing to sign a {step} at height {height} round {round}: this validator already signed one at height {last_height} round {last_round} (its state went backwards)"
    )]
    Regression {
        step: &'static str,
        height: Height,
        round: u32,
        last_height: Height,
        last_round: u32,
    },
    #[error("the double-sign guard could not record a signature in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the double-sign guard's state file {path} is damaged ({reason}); refusing to sign")]
    Damaged { path: PathBuf, reason: String },
}

/// What one step signed: its height, and the value of every round signed at it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct StepState {
    height: Height,
    rounds: BTreeMap<u32, SignedValue>,
}

type State = [StepState; 3];

/// The guard over one validator's signatures.
#[derive(Debug)]
pub struct SignGuard {
    path: PathBuf,
    records: Mutex<State>,
}

impl SignGuard {
    /// Opens (or starts) the state file `dir/signed_state`. A damaged file is an
    /// error: signing without knowing what was signed is what the guard prevents.
    pub fn open(dir: &Path) -> Result<SignGuard, GuardError> {
        let path = dir.join(SIGNED_STATE_FILE);
        let records = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => return Err(GuardError::Io { path, source }),
            Ok(meta) if meta.len() > MAX_STATE_FILE_BYTES => {
                return Err(GuardError::Damaged {
                    path,
                    reason: format!("{} bytes", meta.len()),
                });
            }
            Ok(_) => {
                let text = std::fs::read_to_string(&path).map_err(|source| GuardError::Io {
                    path: path.clone(),
                    source,
                })?;
                parse_state(&text).map_err(|reason| GuardError::Damaged {
                    path: path.clone(),
                    reason,
                })?
            }
        };
        Ok(SignGuard {
            path,
            records: Mutex::new(records),
        })
    }

    /// What this validator signed for `step` at `height` and `round`, if anything.
    pub fn signed_at(&self, step: Step, height: Height, round: u32) -> Option<SignedValue> {
        let records = self.lock();
        let state = &records[step.index()];
        (state.height == height)
            .then(|| state.rounds.get(&round).copied())
            .flatten()
    }

    /// The highest height `step` signed at.
    pub fn last_height(&self, step: Step) -> Height {
        self.lock()[step.index()].height
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere mid-check; the records are
        // plain values, still whole.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets a signature for `step` at `record` out, after recording it durably, or
    /// refuses it.
    pub fn check_and_record(&self, step: Step, record: Record) -> Result<(), GuardError> {
        let mut records = self.lock();
        let state = &records[step.index()];
        if record.height < state.height {
            return Err(GuardError::Regression {
                step: step.name(),
                height: record.height,
                round: record.round,
                last_height: state.height,
                last_round: state.rounds.keys().next_back().copied().unwrap_or(0),
            });
        }
        let mut next = state.clone();
        if record.height > state.height {
            next = StepState {
                height: record.height,
                rounds: BTreeMap::new(),
            };
        }
        match next.rounds.get(&record.round) {
            Some(old) if *old == record.value => return Ok(()),
            Some(old) => {
                return Err(GuardError::Conflict {
                    step: step.name(),
                    height: record.height,
                    round: record.round,
                    old: *old,
                    new: record.value,
                });
            }
            None => {}
        }
        if next.rounds.len() >= MAX_ROUNDS_RECORDED {
            // Only in a height that ran for thousands of rounds: refuse rather than
            // forget.
            return Err(GuardError::Regression {
                step: step.name(),
                height: record.height,
                round: record.round,
                last_height: next.height,
                last_round: next.rounds.keys().next_back().copied().unwrap_or(0),
            });
        }
        next.rounds.insert(record.round, record.value);
        let mut all = records.clone();
        all[step.index()] = next;
        self.write(&all)?;
        *records = all;
        Ok(())
    }

    /// Replaces the state file atomically and durably.
    fn write(&self, records: &State) -> Result<(), GuardError> {
        let io = |source| GuardError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(format_state(records).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

fn format_state(records: &State) -> String {
    let mut out = format!("{STATE_MAGIC}\n");
    for step in Step::ALL {
        let state = &records[step.index()];
        if state.rounds.is_empty() && state.height == Height(0) {
            continue;
        }
        // A height with no round yet is kept with an empty line of its own.
        out.push_str(&format!("{} {} height - -\n", step.name(), state.height.0));
        for (round, value) in &state.rounds {
            let value = match value {
                SignedValue::Nil => "nil -".to_string(),
                SignedValue::Block(id) => format!("block {}", hex::encode(id.0)),
                SignedValue::Proposal { pol_round, block } => {
                    format!("proposal{pol_round} {}", hex::encode(block.0))
                }
            };
            out.push_str(&format!(
                "{} {} {round} {value}\n",
                step.name(),
                state.height.0
            ));
        }
    }
    out
}

fn parse_value(kind: &str, value: &str) -> Result<SignedValue, String> {
    let block = || -> Result<BlockId, String> {
        let bytes = hex::decode(value).map_err(|_| format!("value {value:?}"))?;
        Ok(BlockId(
            bytes.try_into().map_err(|_| format!("value {value:?}"))?,
        ))
    };
    Ok(match kind {
        "nil" => SignedValue::Nil,
        "block" => SignedValue::Block(block()?),
        _ => {
            let pol_round = kind
                .strip_prefix("proposal")
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| format!("value kind {kind:?}"))?;
            SignedValue::Proposal {
                pol_round,
                block: block()?,
            }
        }
    })
}

fn parse_state(text: &str) -> Result<State, String> {
    let mut lines = text.lines();
    if lines.next() != Some(STATE_MAGIC) {
        return Err("it does not start with the expected header".into());
    }
    let mut records = State::default();
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let &[step, height, round, kind, value] = fields.as_slice() else {
            return Err(format!("line {line:?} does not have five fields"));
        };
        let step = Step::ALL
            .into_iter()
            .find(|s| s.name() == step)
            .ok_or_else(|| format!("unknown step {step:?}"))?;
        let height = Height(height.parse().map_err(|_| format!("height {height:?}"))?);
        let state = &mut records[step.index()];
        if height < state.height {
            return Err(format!("line {line:?} goes back in height"));
        }
        if height > state.height {
            *state = StepState {
                height,
                rounds: BTreeMap::new(),
            };
        }
        if round == "height" {
            continue;
        }
        let round = round.parse().map_err(|_| format!("round {round:?}"))?;
        state.rounds.insert(round, parse_value(kind, value)?);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(b: u8) -> SignedValue {
        SignedValue::Block(BlockId([b; 32]))
    }

    fn at(height: u64, round: u32, value: SignedValue) -> Record {
        Record {
            height: Height(height),
            round,
            value,
        }
    }

    #[test]
    fn the_same_vote_is_signed_again_and_a_conflicting_one_is_refused_after_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = SignGuard::open(dir.path()).expect("open");
        guard
            .check_and_record(Step::Precommit, at(11, 0, block(0xa)))
            .expect("first precommit");
        guard
            .check_and_record(Step::Prevote, at(11, 0, SignedValue::Nil))
            .expect("a prevote is another step");
        drop(guard);

        // As after a crash: only the file is left.
        let guard = SignGuard::open(dir.path()).expect("reopen");
        guard
            .check_and_record(Step::Precommit, at(11, 0, block(0xa)))
            .expect("re-signing the identical precommit");
        let err = guard
            .check_and_record(Step::Precommit, at(11, 0, block(0xb)))
            .expect_err("a second block at one height and round");
        let text = err.to_string();
        assert!(
            text.contains("height 11 round 0")
                && text.contains(&hex::encode([0xa; 32]))
                && text.contains(&hex::encode([0xb; 32])),
            "{text}"
        );
        let err = guard
            .check_and_record(Step::Prevote, at(11, 0, block(0xa)))
            .expect_err("nil then a block");
        assert!(matches!(err, GuardError::Conflict { .. }), "{err}");
        let err = guard
            .check_and_record(Step::Precommit, at(10, 3, block(0xc)))
            .expect_err("a lower height");
        assert!(matches!(err, GuardError::Regression { .. }), "{err}");
        guard
            .check_and_record(Step::Precommit, at(11, 1, block(0xb)))
            .expect("a later round may carry another value");
        // A restarted engine replays the height from round 0: what it signed there is
        // signed again, anything else still refused.
        drop(guard);
        let guard = SignGuard::open(dir.path()).expect("reopen");
        guard
            .check_and_record(Step::Precommit, at(11, 0, block(0xa)))
            .expect("round 0 again, identical");
        assert!(
            guard
                .check_and_record(Step::Precommit, at(11, 0, SignedValue::Nil))
                .is_err()
        );
        assert_eq!(
            guard.signed_at(Step::Precommit, Height(11), 1),
            Some(block(0xb))
        );
        guard
            .check_and_record(Step::Precommit, at(12, 0, block(0xd)))
            .expect("the next height");
        assert_eq!(guard.signed_at(Step::Precommit, Height(11), 1), None);
        assert_eq!(guard.last_height(Step::Precommit), Height(12));
    }

    #[test]
    fn proposals_are_guarded_with_their_lock_round() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = SignGuard::open(dir.path()).expect("open");
        let p = |pol_round, b| SignedValue::Proposal {
            pol_round,
            block: BlockId([b; 32]),
        };
        guard
            .check_and_record(Step::Proposal, at(5, 0, p(-1, 1)))
            .expect("a proposal");
        guard
            .check_and_record(Step::Proposal, at(5, 0, p(-1, 1)))
            .expect("the same proposal again (restream)");
        assert!(
            guard
                .check_and_record(Step::Proposal, at(5, 0, p(-1, 2)))
                .is_err()
        );
        drop(guard);
        let guard = SignGuard::open(dir.path()).expect("reopen");
        assert_eq!(
            guard.signed_at(Step::Proposal, Height(5), 0),
            Some(p(-1, 1))
        );
    }

    #[test]
    fn a_damaged_state_file_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in [
            "garbage",
            "settle-signed-state 1\nprevote x 0 nil -\n",
            "settle-signed-state 1\nprevote 1 0 block 00\n",
            "settle-signed-state 1\nvote 1 0 nil -\n",
        ] {
            std::fs::write(dir.path().join(SIGNED_STATE_FILE), bad).expect("write");
            let err = SignGuard::open(dir.path()).expect_err(bad);
            assert!(matches!(err, GuardError::Damaged { .. }), "{bad}: {err}");
        }
    }
}
