//! The transactions whose scripts this node has verified, so a block made of
//! transactions it already admitted to its mempool is not verified twice (like Bitcoin
//! Core's script execution cache). Sound because a wtxid fixes the witnesses and the
//! outpoints spent, an outpoint names one output forever, and a script's verdict
//! depends on nothing else: the chain id is fixed and lock times are checked apart.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use settle_assets::hash::Wtxid;

/// Most wtxids remembered (32 bytes each, twice: about 6 MiB). More than a mempool's
/// worth of a few blocks; the oldest are forgotten first.
pub const MAX_SCRIPT_CACHE_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
struct Entries {
    set: HashSet<Wtxid>,
    order: VecDeque<Wtxid>,
}

/// A bounded set of wtxids whose scripts verified.
#[derive(Debug, Default)]
pub struct ScriptCache {
    entries: Mutex<Entries>,
}

impl ScriptCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Both collections are updated together before anything can panic.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the scripts of `wtxid` verified.
    pub fn insert(&self, wtxid: Wtxid) {
        let mut e = self.lock();
        if !e.set.insert(wtxid) {
            return;
        }
        e.order.push_back(wtxid);
        if e.order.len() > MAX_SCRIPT_CACHE_ENTRIES
            && let Some(old) = e.order.pop_front()
        {
            e.set.remove(&old);
        }
        debug_assert_eq!(e.set.len(), e.order.len());
    }

    pub fn contains(&self, wtxid: &Wtxid) -> bool {
        self.lock().set.contains(wtxid)
    }

    pub fn len(&self) -> usize {
        self.lock().set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first_and_the_bound_holds() {
        let cache = ScriptCache::default();
        let id = |i: usize| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Wtxid(b)
        };
        for i in 0..=MAX_SCRIPT_CACHE_ENTRIES {
            cache.insert(id(i));
        }
        cache.insert(id(5)); // already there: no change
        assert_eq!(cache.len(), MAX_SCRIPT_CACHE_ENTRIES);
        assert!(!cache.contains(&id(0)));
        assert!(cache.contains(&id(1)));
        assert!(cache.contains(&id(MAX_SCRIPT_CACHE_ENTRIES)));
    }
}
