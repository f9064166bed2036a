//! Misbehaving peers: what a peer's bad data costs it (`spec/consensus.md`,
//! "Misbehaving peers").
//!
//! Evidence comes from three places: the driver (undecodable proposal-part gossip,
//! malformed proposal streams, proposals whose block is malformed or invalid,
//! equivocation evidence from the engine), the daemon's transaction intake
//! (gossiped transactions rejected with class `consensus`) and nobody else. Every
//! offence is charged to the peer that *authored* the data: the gossipsub publisher
//! (authenticated by gossipsub's message signature) or the proposer that signed the
//! block, never an honest neighbour that merely relayed it.
//!
//! [`Misbehaviour`] is the pure core: per-peer scores and bans as plain data, with
//! time passed in. [`PeerGuard`] wraps it for the running node, and [`run_guard`]
//! carries its decisions out on the network. Malachite 0.8 has no request to
//! disconnect or ban a peer (its gossipsub scoring is application-type only, and its
//! sync scoring only steers which peer is asked for values), so a ban uses the one
//! lever it has: on a permissioned node (`persistent_peers_only`) removing a peer from
//! the persistent peers disconnects it and refuses it from then on. When the ban ends
//! the removed addresses are added back, so a permitted peer may reconnect: a ban
//! never strips a permission for good.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p_identity::PeerId;
use malachitebft_app_channel::NetworkRequest;
use malachitebft_app_channel::app::net::Multiaddr;
use multiaddr::Protocol;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How long a first offence keeps a peer out.
pub const BAN_DURATION_MS: u64 = 30_000;
/// Longest ban: each further ban of the same peer doubles the last, up to this.
pub const MAX_BAN_DURATION_MS: u64 = 3_600_000;
/// Most peers with a record; beyond this the record of a peer that is not banned and
/// offended longest ago is forgotten (a permissioned network has far fewer peers).
pub const MAX_TRACKED_PEERS: usize = 1_024;
/// Reports waiting for the guard task; beyond this a report is dropped (the peer's
/// next offence is reported again).
pub const GUARD_QUEUE_REPORTS: usize = 256;

/// Evidence that a peer misbehaved. Each is something an honest node never sends.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Offence {
    /// Proposal-part gossip whose bytes are not a consensus message at all.
    UndecodableGossip,
    /// A proposal stream that breaks the stream format (too large, parts out of
    /// shape, transactions inside a block stream, a batch of a size out of bounds).
    MalformedStream,
    /// A proposal stream whose proposer signature does not verify.
    BadProposalSignature,
    /// A gossiped transaction that does not decode or breaks a consensus rule.
    InvalidTransaction,
    /// A signed proposal whose block does not decode.
    MalformedBlock,
    /// A signed proposal whose block decodes but breaks a consensus rule.
    InvalidBlock,
    /// Two different proposals or votes for the same height and round (evidence
    /// from the engine).
    Equivocation,
    /// A synced value whose bytes do not decode. The engine does not say which peer
    /// served it, so this is counted, and Malachite's sync scoring marks the peer.
    MalformedSyncedBlock,
}

impl Offence {
    /// Every offence, for metrics and tests.
    pub const ALL: [Offence; 8] = [
        Offence::UndecodableGossip,
        Offence::MalformedStream,
        Offence::BadProposalSignature,
        Offence::InvalidTransaction,
        Offence::MalformedBlock,
        Offence::InvalidBlock,
        Offence::Equivocation,
        Offence::MalformedSyncedBlock,
    ];

    /// The stable snake_case name (metrics labels, logs, the spec).
    pub fn as_str(self) -> &'static str {
        match self {
            Offence::UndecodableGossip => "undecodable_gossip",
            Offence::MalformedStream => "malformed_stream",
            Offence::BadProposalSignature => "bad_proposal_signature",
            Offence::InvalidTransaction => "invalid_transaction",
            Offence::MalformedBlock => "malformed_block",
            Offence::InvalidBlock => "invalid_block",
            Offence::Equivocation => "equivocation",
            Offence::MalformedSyncedBlock => "malformed_synced_block",
        }
    }

    /// What the offence takes off the peer's misbehaviour score.
    pub fn penalty(self) -> i64 {
        match self {
            Offence::UndecodableGossip
            | Offence::MalformedStream
            | Offence::InvalidTransaction
            | Offence::MalformedSyncedBlock => 100,
            Offence::BadProposalSignature
            | Offence::MalformedBlock
            | Offence::InvalidBlock
            | Offence::Equivocation => 1_000,
        }
    }
}

impl std::fmt::Display for Offence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What this node holds against one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// Starts at 0 and goes down by [`Offence::penalty`] per offence; it does not
    /// recover while the node runs (a permissioned peer has no reason to offend).
    pub score: i64,
    pub offences: u64,
    /// How many times the peer was banned (the next ban lasts twice the last).
    pub bans: u32,
    pub banned_until: Option<Instant>,
    pub last_offence: Offence,
    last_at: Instant,
}

/// What to do after a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Disconnect the peer and refuse it until `until`.
    Ban { until: Instant, duration: Duration },
    /// Already banned: the ban now lasts until `until`.
    Extend { until: Instant },
}

/// Counts since the node started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MisbehaviourCounts {
    /// Offences seen, by kind.
    pub offences: BTreeMap<Offence, u64>,
    /// Bans imposed.
    pub bans: u64,
    /// Peers banned right now.
    pub banned_now: u64,
}

/// The pure core: per-peer records and bans. Time is passed in.
#[derive(Debug)]
pub struct Misbehaviour {
    first_ban: Duration,
    peers: HashMap<PeerId, PeerRecord>,
    counts: MisbehaviourCounts,
}

impl Misbehaviour {
    /// `first_ban` is the length of a first ban (normally [`BAN_DURATION_MS`]).
    pub fn new(first_ban: Duration) -> Self {
        Misbehaviour {
            first_ban,
            peers: HashMap::new(),
            counts: MisbehaviourCounts::default(),
        }
    }

    /// Counts an offence that no peer can be charged with.
    pub fn count_unattributed(&mut self, offence: Offence) {
        *self.counts.offences.entry(offence).or_default() += 1;
    }

    /// Charges `peer` with `offence` at `now`: every offence bans (or extends a ban),
    /// since an honest peer sends none of them.
    pub fn report(&mut self, peer: PeerId, offence: Offence, now: Instant) -> Verdict {
        *self.counts.offences.entry(offence).or_default() += 1;
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_TRACKED_PEERS {
            self.forget_one(now);
        }
        let record = self.peers.entry(peer).or_insert(PeerRecord {
            score: 0,
            offences: 0,
            bans: 0,
            banned_until: None,
            last_offence: offence,
            last_at: now,
        });
        record.score = record.score.saturating_sub(offence.penalty());
        record.offences += 1;
        record.last_offence = offence;
        record.last_at = now;
        match record.banned_until {
            Some(until) if until > now => {
                // Evidence that arrives during a ban (relayed by others, or
                // reported late) keeps the peer out for a full ban from now.
                let until = until.max(now + self.first_ban);
                record.banned_until = Some(until);
                Verdict::Extend { until }
            }
            _ => {
                let doublings = record.bans.min(16);
                let max = Duration::from_millis(MAX_BAN_DURATION_MS);
                let duration = self
                    .first_ban
                    .checked_mul(1u32 << doublings)
                    .unwrap_or(max)
                    .min(max);
                record.bans += 1;
                let until = now + duration;
                record.banned_until = Some(until);
                self.counts.bans += 1;
                Verdict::Ban { until, duration }
            }
        }
    }

    /// Ends the bans that are over at `now`; returns those peers.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let mut ended = Vec::new();
        for (peer, record) in &mut self.peers {
            if record.banned_until.is_some_and(|until| until <= now) {
                record.banned_until = None;
                ended.push(*peer);
            }
        }
        ended
    }

    /// Lifts a ban at once (an operator added the peer back).
    pub fn pardon(&mut self, peer: &PeerId) -> bool {
        self.peers
            .get_mut(peer)
            .and_then(|r| r.banned_until.take())
            .is_some()
    }

    /// When the next ban ends.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.peers.values().filter_map(|r| r.banned_until).min()
    }

    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers
            .get(peer)
            .and_then(|r| r.banned_until)
            .is_some_and(|until| until > now)
    }

    pub fn record(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    /// The peer's misbehaviour score (0 for a peer with no record).
    pub fn score(&self, peer: &PeerId) -> i64 {
        self.peers.get(peer).map_or(0, |r| r.score)
    }

    pub fn counts(&self, now: Instant) -> MisbehaviourCounts {
        let mut counts = self.counts.clone();
        counts.banned_now = self
            .peers
            .values()
            .filter(|r| r.banned_until.is_some_and(|until| until > now))
            .count() as u64;
        counts
    }

    fn forget_one(&mut self, now: Instant) {
        let oldest = self
            .peers
            .iter()
            .filter(|(_, r)| r.banned_until.is_none_or(|until| until <= now))
            .min_by_key(|(_, r)| r.last_at)
            .map(|(p, _)| *p);
        if let Some(peer) = oldest {
            self.peers.remove(&peer);
        }
    }
}

/// The running node's guard: the records, shared with the node handle, and the
/// queue to the task that disconnects and re-admits peers.
#[derive(Debug)]
pub struct PeerGuard {
    state: Mutex<GuardState>,
    reports: mpsc::Sender<(PeerId, Offence)>,
    local: PeerId,
}

#[derive(Debug)]
struct GuardState {
    core: Misbehaviour,
    /// Persistent-peer addresses taken away by a ban, to add back when it ends.
    removed: HashMap<PeerId, Vec<Multiaddr>>,
}

impl PeerGuard {
    /// A guard for the node `local`, and the receiving end for [`run_guard`].
    pub fn new(
        local: PeerId,
        first_ban: Duration,
    ) -> (Arc<PeerGuard>, mpsc::Receiver<(PeerId, Offence)>) {
        let (tx, rx) = mpsc::channel(GUARD_QUEUE_REPORTS);
        let guard = PeerGuard {
            state: Mutex::new(GuardState {
                core: Misbehaviour::new(first_ban),
                removed: HashMap::new(),
            }),
            reports: tx,
            local,
        };
        (Arc::new(guard), rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        // The state stays consistent across a panic elsewhere (plain counters).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports that `peer` sent `offence`. Never blocks: when the queue is full the
    /// report is dropped (and logged).
    pub fn report(&self, peer: PeerId, offence: Offence) {
        if peer == self.local {
            // Our own data came back through gossip: a bug here, not a peer's fault.
            warn!(%offence, "refusing to charge this node with its own data");
            return;
        }
        if self.reports.try_send((peer, offence)).is_err() {
            warn!(%peer, %offence, "misbehaviour queue is full; dropping a report");
        }
    }

    /// Counts an offence that no peer can be charged with.
    pub fn count_unattributed(&self, offence: Offence) {
        self.lock().core.count_unattributed(offence);
    }

    /// The misbehaviour score of `peer` (0: no record).
    pub fn score(&self, peer: &PeerId) -> i64 {
        self.lock().core.score(peer)
    }

    /// The record held against `peer`.
    pub fn record(&self, peer: &PeerId) -> Option<PeerRecord> {
        self.lock().core.record(peer).cloned()
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.lock().core.is_banned(peer, Instant::now())
    }

    pub fn counts(&self) -> MisbehaviourCounts {
        self.lock().core.counts(Instant::now())
    }

    /// Persistent-peer addresses that bans hold out of the engine's list for now.
    /// They are still this node's persistent peers (they come back when the ban
    /// ends), and are reported as such.
    pub fn held_addresses(&self) -> Vec<Multiaddr> {
        self.lock().removed.values().flatten().cloned().collect()
    }

    /// An operator added `addr` as a persistent peer: the operator's word wins over a
    /// ban, which is lifted, and the address is not added a second time at its end.
    pub(crate) fn operator_added(&self, addr: &Multiaddr) {
        let Some(peer) = peer_of(addr) else {
            return;
        };
        let mut state = self.lock();
        if state.core.pardon(&peer) {
            info!(%peer, "ban lifted: an operator added the peer");
        }
        state.removed.remove(&peer);
    }

    /// An operator removed `addr`: if a ban took it away already, it is not added
    /// back when the ban ends. Returns whether the address was held by a ban.
    pub(crate) fn operator_removed(&self, addr: &Multiaddr) -> bool {
        let Some(peer) = peer_of(addr) else {
            return false;
        };
        let mut state = self.lock();
        let Some(addrs) = state.removed.get_mut(&peer) else {
            return false;
        };
        let before = addrs.len();
        addrs.retain(|a| a != addr);
        before != addrs.len()
    }
}

/// The peer id an address names (`.../p2p/<peer id>`).
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// Carries out the guard's verdicts: a banned peer's persistent addresses are
/// removed (which disconnects and refuses it on a permissioned node) and added back
/// when the ban ends. Runs until the network's request channel closes.
pub async fn run_guard(
    guard: Arc<PeerGuard>,
    mut reports: mpsc::Receiver<(PeerId, Offence)>,
    net_requests: mpsc::Sender<NetworkRequest>,
) {
    loop {
        let next = guard.lock().core.next_expiry();
        tokio::select! {
            report = reports.recv() => {
                let Some((peer, offence)) = report else { return };
                let verdict = guard.lock().core.report(peer, offence, Instant::now());
                let score = guard.score(&peer);
                match verdict {
                    Verdict::Ban { duration, .. } => {
                        warn!(%peer, %offence, score, ban_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                              "peer misbehaved: disconnecting and banning it");
                        ban(&guard, peer, &net_requests).await;
                    }
                    Verdict::Extend { .. } => {
                        debug!(%peer, %offence, score, "banned peer misbehaved again; ban extended");
                    }
                }
            }
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let ended = guard.lock().core.expire(Instant::now());
                for peer in ended {
                    unban(&guard, peer, &net_requests).await;
                }
            }
        }
        if net_requests.is_closed() {
            return;
        }
    }
}

async fn ban(guard: &PeerGuard, peer: PeerId, net_requests: &mpsc::Sender<NetworkRequest>) {
    let dump = match NetworkRequest::dump_state(net_requests).await {
        Ok(Some(dump)) => dump,
        Ok(None) | Err(_) => {
            warn!(%peer, "the network did not answer; the peer stays connected");
            return;
        }
    };
    let addrs: Vec<Multiaddr> = dump
        .persistent_peer_addrs
        .iter()
        .filter(|a| peer_of(a) == Some(peer))
        .cloned()
        .collect();
    if addrs.is_empty() {
        // Not a persistent peer: on a permissioned node it could not be connected;
        // on an open (development) node Malachite offers no way to drop it.
        warn!(%peer, "the banned peer is not a persistent peer; it cannot be disconnected");
        return;
    }
    // Held before they leave the engine's list, so that the addresses never look
    // absent to whoever reads this node's persistent peers meanwhile.
    guard
        .lock()
        .removed
        .entry(peer)
        .or_default()
        .extend(addrs.iter().cloned());
    for addr in addrs {
        let failed = match NetworkRequest::remove_persistent_peer(net_requests, addr.clone()).await
        {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = failed {
            warn!(%peer, %addr, %error, "could not remove the banned peer");
            if let Some(held) = guard.lock().removed.get_mut(&peer) {
                held.retain(|a| *a != addr);
            }
        }
    }
}

async fn unban(guard: &PeerGuard, peer: PeerId, net_requests: &mpsc::Sender<NetworkRequest>) {
    let addrs = guard.lock().removed.remove(&peer).unwrap_or_default();
    info!(%peer, addresses = addrs.len(), "ban over: the peer may reconnect");
    for addr in addrs {
        match NetworkRequest::add_persistent_peer(net_requests, addr.clone()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(%peer, %addr, error = %e, "re-adding the peer after its ban"),
            Err(e) => warn!(%peer, %addr, error = %e, "could not re-add the peer after its ban"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(seed: u8) -> PeerId {
        let key = libp2p_identity::secp256k1::SecretKey::try_from_bytes([seed; 32])
            .expect("valid secret");
        let kp = libp2p_identity::secp256k1::Keypair::from(key);
        libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id()
    }

    #[test]
    fn an_offence_bans_and_bans_double_up_to_the_cap() {
        let start = Instant::now();
        let first = Duration::from_millis(BAN_DURATION_MS);
        let mut m = Misbehaviour::new(first);
        let p = peer(1);
        assert_eq!(m.score(&p), 0);
        let v = m.report(p, Offence::InvalidTransaction, start);
        assert_eq!(
            v,
            Verdict::Ban {
                until: start + first,
                duration: first
            }
        );
        assert!(m.is_banned(&p, start));
        assert_eq!(m.score(&p), -Offence::InvalidTransaction.penalty());

        // During the ban: extended, not a new ban.
        let later = start + Duration::from_millis(10);
        assert!(matches!(
            m.report(p, Offence::InvalidBlock, later),
            Verdict::Extend { .. }
        ));
        assert_eq!(m.counts(later).bans, 1);
        assert_eq!(m.counts(later).banned_now, 1);

        // The ban ends; the next offence bans twice as long.
        let over = later + first + Duration::from_millis(1);
        assert_eq!(m.next_expiry(), Some(later + first));
        assert_eq!(m.expire(over), vec![p]);
        assert!(!m.is_banned(&p, over));
        assert_eq!(m.counts(over).banned_now, 0);
        let again = m.report(p, Offence::UndecodableGossip, over);
        assert!(
            matches!(again, Verdict::Ban { duration, .. } if duration == first * 2),
            "{again:?}"
        );
        assert_eq!(m.record(&p).expect("record").offences, 3);
        assert_eq!(m.score(&p), -(100 + 1_000 + 100));

        // Many more bans never exceed the cap.
        let mut now = over;
        for _ in 0..40 {
            now += Duration::from_millis(MAX_BAN_DURATION_MS + 1);
            m.expire(now);
            if let Verdict::Ban { duration, .. } = m.report(p, Offence::InvalidBlock, now) {
                assert!(duration <= Duration::from_millis(MAX_BAN_DURATION_MS));
            }
        }
        let counts = m.counts(now);
        assert_eq!(counts.offences[&Offence::InvalidBlock], 41);
        assert!(counts.bans >= 3);
    }

    #[test]
    fn a_pardon_lifts_the_ban_and_other_peers_are_untouched() {
        let now = Instant::now();
        let mut m = Misbehaviour::new(Duration::from_secs(5));
        let (a, b) = (peer(1), peer(2));
        m.report(a, Offence::Equivocation, now);
        assert!(!m.is_banned(&b, now));
        assert_eq!(m.score(&b), 0);
        assert!(m.pardon(&a));
        assert!(!m.is_banned(&a, now));
        assert!(!m.pardon(&a), "nothing left to lift");
        assert_eq!(m.next_expiry(), None);
        m.count_unattributed(Offence::MalformedSyncedBlock);
        assert_eq!(m.counts(now).offences[&Offence::MalformedSyncedBlock], 1);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_banned_peers() {
        let start = Instant::now();
        let mut m = Misbehaviour::new(Duration::from_secs(5));
        let mut now = start;
        let mut seed = 0u32;
        let mut added = 0;
        let mut last = None;
        while added < MAX_TRACKED_PEERS + 5 {
            seed += 1;
            let mut secret = [7u8; 32];
            secret[..4].copy_from_slice(&seed.to_le_bytes());
            let Ok(key) = libp2p_identity::secp256k1::SecretKey::try_from_bytes(secret) else {
                continue;
            };
            let kp = libp2p_identity::secp256k1::Keypair::from(key);
            let p = libp2p_identity::PublicKey::from(kp.public().clone()).to_peer_id();
            // Each ban is over before the next peer offends.
            now += Duration::from_secs(6);
            m.expire(now);
            m.report(p, Offence::InvalidTransaction, now);
            last = Some(p);
            added += 1;
        }
        assert!(m.peers.len() <= MAX_TRACKED_PEERS);
        // The peer banned last is still banned and still known.
        let last = last.expect("a peer");
        assert!(m.is_banned(&last, now));
        assert_eq!(m.score(&last), -Offence::InvalidTransaction.penalty());
    }

    #[test]
    fn addresses_name_their_peer() {
        let p = peer(3);
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{p}")
            .parse()
            .expect("addr");
        assert_eq!(peer_of(&addr), Some(p));
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("addr");
        assert_eq!(peer_of(&bare), None);
        assert_eq!(Offence::ALL.len(), 8);
        let names: std::collections::HashSet<_> = Offence::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names.len(), Offence::ALL.len(), "names are distinct");
    }
}
