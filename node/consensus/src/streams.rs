//! Reassembly of proposal-part streams.
//!
//! A proposer publishes its block as a stream: sequence 0 carries `Init`, then
//! `Data` chunks, then the proposer's `Fin` signature, then Malachite's end-of-stream
//! marker. Gossip may deliver the messages in any order and peers may send garbage,
//! so the buffer accepts messages in any order, bounds everything it holds, and
//! yields a stream only once it is complete and well formed. Signatures and the block
//! itself are checked by the caller.

use std::collections::{BTreeMap, HashMap};

use malachitebft_app_channel::app::streaming::StreamContent;
use malachitebft_app_channel::app::types::PeerId;
use malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};

use crate::signing::Signature;
use crate::types::{ProposalInit, ProposalPart};

/// Largest encoded block a proposal stream may carry, in bytes: the largest block any
/// chain spec may allow (its `limits.max_block_bytes` is bounded by the same constant),
/// so an honest proposer of a full block is never refused as oversized.
pub const MAX_BLOCK_BYTES: usize = settle_chain::limits::MAX_BLOCK_BYTES;
/// Size of the `Data` chunks a proposer cuts its block into, in bytes.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Most messages in one stream: Init, the chunks of a largest block, Fin, and the
/// end-of-stream marker.
pub const MAX_STREAM_MESSAGES: u64 = MAX_BLOCK_BYTES.div_ceil(CHUNK_BYTES) as u64 + 3;
/// Most streams being assembled at once; the oldest is dropped beyond this.
pub const MAX_OPEN_STREAMS: usize = 64;
/// Most block data held across all streams being assembled, in bytes: room for a few
/// largest blocks at once; beyond it the oldest other streams are dropped. Without it
/// `MAX_OPEN_STREAMS` streams of `MAX_BLOCK_BYTES` each could hold a gigabyte.
pub const MAX_BUFFERED_BYTES: usize = 4 * MAX_BLOCK_BYTES;

// The largest block a chain may allow fits one stream, chunks and all.
const _: () = assert!(MAX_BLOCK_BYTES >= settle_chain::limits::MAX_BLOCK_BYTES);
const _: () = assert!((MAX_STREAM_MESSAGES - 3) * (CHUNK_BYTES as u64) >= MAX_BLOCK_BYTES as u64);

/// A complete, well-formed proposal stream.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CompleteStream {
    /// The gossip publisher that sent it (authenticated by gossipsub's signature).
    pub publisher: PeerId,
    pub init: ProposalInit,
    pub block: Vec<u8>,
    pub fin: Signature,
}

/// Why a stream was dropped.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum StreamError {
    #[error("stream message {sequence} is beyond the limit of {MAX_STREAM_MESSAGES}")]
    TooManyMessages { sequence: u64 },
    #[error("stream carries more than {MAX_BLOCK_BYTES} bytes of block data")]
    TooLarge,
    #[error("stream message {sequence} was sent twice with different content")]
    Conflicting { sequence: u64 },
    #[error("stream is malformed: {0}")]
    Malformed(&'static str),
}

impl StreamError {
    /// Whether the publisher is at fault. Every error is, except two versions of
    /// one message: a proposer restarted in the middle of a stream may reuse its id.
    pub fn is_attributable(&self) -> bool {
        !matches!(self, StreamError::Conflicting { .. })
    }
}

#[derive(Default)]
struct Partial {
    parts: BTreeMap<u64, ProposalPart>,
    end: Option<u64>,
    data_bytes: usize,
    /// Arrival order, to evict the oldest stream first.
    opened: u64,
}

/// Streams being assembled, keyed by publisher and stream id.
#[derive(Default)]
pub struct StreamBuffer {
    open: HashMap<(PeerId, StreamId), Partial>,
    counter: u64,
    /// Sum of `data_bytes` over `open`.
    buffered_bytes: usize,
}

impl std::fmt::Debug for StreamBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamBuffer({} open)", self.open.len())
    }
}

impl StreamBuffer {
    pub fn new() -> Self {
        StreamBuffer::default()
    }

    pub fn open_streams(&self) -> usize {
        self.open.len()
    }

    /// Block data held across the streams being assembled, in bytes.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Adds one message from `publisher`. Returns the stream when this message
    /// completes it; an error drops the whole stream.
    pub fn insert(
        &mut self,
        publisher: PeerId,
        message: StreamMessage<ProposalPart>,
    ) -> Result<Option<CompleteStream>, StreamError> {
        let key = (publisher, message.stream_id.clone());
        let result = self.insert_inner(&key, message);
        match &result {
            Ok(Some(_)) | Err(_) => self.remove(&key),
            Ok(None) => self.shed_bytes(&key),
        }
        debug_assert_eq!(
            self.buffered_bytes,
            self.open.values().map(|p| p.data_bytes).sum::<usize>(),
            "the byte count follows the streams"
        );
        result
    }

    fn insert_inner(
        &mut self,
        key: &(PeerId, StreamId),
        message: StreamMessage<ProposalPart>,
    ) -> Result<Option<CompleteStream>, StreamError> {
        let sequence = message.sequence;
        if sequence >= MAX_STREAM_MESSAGES {
            return Err(StreamError::TooManyMessages { sequence });
        }
        if !self.open.contains_key(key) {
            if self.open.len() >= MAX_OPEN_STREAMS {
                self.evict_oldest();
            }
            self.counter += 1;
            let opened = self.counter;
            self.open.insert(
                key.clone(),
                Partial {
                    opened,
                    ..Partial::default()
                },
            );
        }
        let Some(partial) = self.open.get_mut(key) else {
            return Ok(None);
        };
        match message.content {
            StreamContent::Fin => {
                if partial.end.is_some_and(|end| end != sequence) {
                    return Err(StreamError::Conflicting { sequence });
                }
                partial.end = Some(sequence);
            }
            StreamContent::Data(part) => {
                if let Some(existing) = partial.parts.get(&sequence) {
                    if *existing != part {
                        return Err(StreamError::Conflicting { sequence });
                    }
                    return Ok(None);
                }
                if let ProposalPart::Data(data) = &part {
                    partial.data_bytes = partial.data_bytes.saturating_add(data.bytes.len());
                    self.buffered_bytes = self.buffered_bytes.saturating_add(data.bytes.len());
                    if partial.data_bytes > MAX_BLOCK_BYTES {
                        return Err(StreamError::TooLarge);
                    }
                }
                partial.parts.insert(sequence, part);
            }
        }
        let Some(end) = partial.end else {
            return Ok(None);
        };
        if partial.parts.keys().any(|s| *s >= end) {
            return Err(StreamError::Malformed(
                "a message follows the end of the stream",
            ));
        }
        if partial.parts.len() as u64 != end {
            return Ok(None);
        }
        let parts = std::mem::take(&mut partial.parts);
        assemble(key.0, parts.into_values()).map(Some)
    }

    fn remove(&mut self, key: &(PeerId, StreamId)) {
        if let Some(p) = self.open.remove(key) {
            self.buffered_bytes = self.buffered_bytes.saturating_sub(p.data_bytes);
        }
    }

    /// Drops the oldest streams other than `keep` while more than
    /// [`MAX_BUFFERED_BYTES`] are held.
    fn shed_bytes(&mut self, keep: &(PeerId, StreamId)) {
        while self.buffered_bytes > MAX_BUFFERED_BYTES {
            let Some(oldest) = self
                .open
                .iter()
                .filter(|(k, _)| *k != keep)
                .min_by_key(|(_, p)| p.opened)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            self.remove(&oldest);
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(key) = self
            .open
            .iter()
            .min_by_key(|(_, p)| p.opened)
            .map(|(k, _)| k.clone())
        {
            self.remove(&key);
        }
    }
}

/// Checks the shape Init, Data*, Fin and joins the data.
fn assemble(
    publisher: PeerId,
    parts: impl Iterator<Item = ProposalPart>,
) -> Result<CompleteStream, StreamError> {
    let mut init = None;
    let mut fin = None;
    let mut block = Vec::new();
    for part in parts {
        if fin.is_some() {
            return Err(StreamError::Malformed("a part follows Fin"));
        }
        match part {
            ProposalPart::Init(i) => {
                if init.is_some() || !block.is_empty() {
                    return Err(StreamError::Malformed("Init is not the first part"));
                }
                init = Some(i);
            }
            ProposalPart::Data(d) => {
                if init.is_none() {
                    return Err(StreamError::Malformed("Data before Init"));
                }
                block.extend_from_slice(&d.bytes);
            }
            ProposalPart::Fin(f) => {
                if init.is_none() {
                    return Err(StreamError::Malformed("Fin before Init"));
                }
                fin = Some(f.signature);
            }
            ProposalPart::Transactions(_) => {
                return Err(StreamError::Malformed("transactions inside a block stream"));
            }
            ProposalPart::Undecodable(_) => {
                return Err(StreamError::Malformed(
                    "undecodable part inside a block stream",
                ));
            }
        }
    }
    let (Some(init), Some(fin)) = (init, fin) else {
        return Err(StreamError::Malformed("missing Init or Fin"));
    };
    if usize::try_from(init.block_len).ok() != Some(block.len()) {
        return Err(StreamError::Malformed("block length differs from Init"));
    }
    Ok(CompleteStream {
        publisher,
        init,
        block,
        fin,
    })
}

/// Cuts a block into the parts of one stream (Init, Data chunks, Fin), without the
/// end-of-stream marker, which the caller appends.
pub fn split(init: ProposalInit, block: &[u8], fin: Signature) -> Vec<ProposalPart> {
    let mut parts = Vec::with_capacity(block.len() / CHUNK_BYTES + 3);
    parts.push(ProposalPart::Init(init));
    for chunk in block.chunks(CHUNK_BYTES) {
        parts.push(ProposalPart::Data(crate::types::ProposalData {
            bytes: chunk.to_vec(),
        }));
    }
    parts.push(ProposalPart::Fin(crate::types::ProposalFin {
        signature: fin,
    }));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Address, Height, ProposalData};
    use bytes::Bytes;
    use malachitebft_core_types::Round;

    fn peer() -> PeerId {
        let sk = secp256k1::SecretKey::from_byte_array([5; 32]).expect("valid secret");
        let kp = secp256k1::Keypair::from_secret_key(secp256k1::SECP256K1, &sk);
        let id =
            crate::identity::peer_id_of(&kp.x_only_public_key().0.serialize()).expect("peer id");
        PeerId::from_bytes(&id.to_bytes()).expect("same peer id format")
    }

    fn init(len: usize) -> ProposalInit {
        ProposalInit {
            height: Height(3),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer: Address([1; 32]),
            block_len: u32::try_from(len).expect("small"),
        }
    }

    fn messages(block: &[u8]) -> Vec<StreamMessage<ProposalPart>> {
        let id = StreamId::new(Bytes::from_static(b"s1"));
        let parts = split(init(block.len()), block, Signature([9; 64]));
        let mut out: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p)))
            .collect();
        let end = out.len() as u64;
        out.push(StreamMessage::new(id, end, StreamContent::Fin));
        out
    }

    #[test]
    fn reassembles_in_any_order() {
        let block: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut msgs = messages(&block);
        msgs.reverse();
        let peer = peer();
        let mut buf = StreamBuffer::new();
        let mut done = None;
        for m in msgs {
            if let Some(c) = buf.insert(peer, m).expect("well formed") {
                done = Some(c);
            }
        }
        let done = done.expect("complete");
        assert_eq!(done.block, block);
        assert_eq!(done.fin, Signature([9; 64]));
        assert_eq!(buf.open_streams(), 0);
    }

    #[test]
    fn incomplete_stream_yields_nothing_and_garbage_is_refused() {
        let block = vec![7u8; 100];
        let mut msgs = messages(&block);
        let peer = peer();
        let mut buf = StreamBuffer::new();
        msgs.remove(1); // lose the data chunk
        for m in msgs {
            assert_eq!(buf.insert(peer, m), Ok(None));
        }
        assert_eq!(buf.open_streams(), 1);

        let id = StreamId::new(Bytes::from_static(b"s2"));
        let far = StreamMessage::new(id.clone(), MAX_STREAM_MESSAGES, StreamContent::Fin);
        assert!(matches!(
            buf.insert(peer, far),
            Err(StreamError::TooManyMessages { .. })
        ));

        // A stream that ends without Init.
        let fin_only = StreamMessage::new(id, 0, StreamContent::Fin);
        assert!(matches!(
            buf.insert(peer, fin_only),
            Err(StreamError::Malformed(_))
        ));

        // Init announcing a different length than the data carried.
        let id = StreamId::new(Bytes::from_static(b"s3"));
        let parts = split(init(5), &[1, 2, 3], Signature([0; 64]));
        let n = parts.len() as u64;
        let mut result = Ok(None);
        for (i, p) in parts.into_iter().enumerate() {
            result = buf.insert(
                peer,
                StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p)),
            );
        }
        assert_eq!(result, Ok(None));
        assert!(matches!(
            buf.insert(peer, StreamMessage::new(id, n, StreamContent::Fin)),
            Err(StreamError::Malformed(_))
        ));
    }

    #[test]
    fn open_streams_are_bounded() {
        let peer = peer();
        let mut buf = StreamBuffer::new();
        for i in 0..(MAX_OPEN_STREAMS + 10) {
            let id = StreamId::new(Bytes::from(i.to_le_bytes().to_vec()));
            let part = ProposalPart::Init(init(1));
            buf.insert(peer, StreamMessage::new(id, 0, StreamContent::Data(part)))
                .expect("accepted");
        }
        assert_eq!(buf.open_streams(), MAX_OPEN_STREAMS);
    }

    #[test]
    fn buffered_block_data_is_bounded_across_streams() {
        let peer = peer();
        let mut buf = StreamBuffer::new();
        let chunk = ProposalPart::Data(ProposalData {
            bytes: vec![1; CHUNK_BYTES],
        });
        let chunks_per_stream = MAX_BLOCK_BYTES / CHUNK_BYTES;
        // Six streams, each one chunk short of a largest block, never complete.
        for s in 0u8..6 {
            let id = StreamId::new(Bytes::from(vec![s]));
            for seq in 1..chunks_per_stream {
                let m =
                    StreamMessage::new(id.clone(), seq as u64, StreamContent::Data(chunk.clone()));
                assert_eq!(buf.insert(peer, m), Ok(None));
                assert!(buf.buffered_bytes() <= MAX_BUFFERED_BYTES);
            }
        }
        // The oldest were dropped to make room; the newest is whole.
        assert!(buf.open_streams() < 6);
        assert!(buf.buffered_bytes() > MAX_BUFFERED_BYTES - MAX_BLOCK_BYTES);
    }
}
