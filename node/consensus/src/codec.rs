//! The wire and WAL encoding of consensus messages.
//!
//! Consensus messages (votes, proposals, proposal parts, liveness messages, sync
//! requests and responses, WAL entries) are encoded with Borsh: a deterministic,
//! length-prefixed binary format whose decoder rejects trailing bytes and unknown
//! enum tags, and never pre-allocates more than the input can hold. Malachite's own
//! types carry Borsh implementations (its `borsh` features); Settle's types derive
//! them. The block inside proposal parts and sync responses is opaque bytes here:
//! it is settle-chain's canonical block encoding, decoded by the application.
//!
//! Decoding is the first thing done to bytes from a peer: any input yields either a
//! value or a [`CodecError`], never a panic.

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::consensus::LivenessMsg;
use malachitebft_app_channel::app::streaming::StreamContent;
use malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use malachitebft_app_channel::app::types::sync::{Request, Response, Status};
use malachitebft_app_channel::app::types::{ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{
    ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round, ValidatorProof,
};
use malachitebft_sync::{PeerId, RawDecidedValue, ValueRequest, ValueResponse};

use crate::context::SettleContext;
use crate::signing::Signature;
use crate::types::{Address, BlockId, Height, ProposalPart, UndecodablePart};

/// Bytes that are not a well-formed consensus message.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("malformed {what}: {source}")]
    Malformed {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("could not encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The codec handed to Malachite for the network, sync and WAL.
#[derive(Clone, Copy, Debug, Default)]
pub struct SettleCodec;

fn encode_borsh<T: BorshSerialize>(what: &'static str, value: &T) -> Result<Bytes, CodecError> {
    borsh::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| CodecError::Encode { what, source })
}

fn decode_borsh<T: BorshDeserialize>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    borsh::from_slice(bytes).map_err(|source| CodecError::Malformed { what, source })
}

macro_rules! borsh_codec {
    ($ty:ty, $what:literal) => {
        impl Codec<$ty> for SettleCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$ty, CodecError> {
                decode_borsh($what, &bytes)
            }

            fn encode(&self, msg: &$ty) -> Result<Bytes, CodecError> {
                encode_borsh($what, msg)
            }
        }
    };
}

borsh_codec!(SignedConsensusMsg<SettleContext>, "consensus message");
borsh_codec!(LivenessMsg<SettleContext>, "liveness message");

/// Refuses to encode the marker that stands for undecodable input.
fn refuse_marker(part: &ProposalPart, what: &'static str) -> Result<(), CodecError> {
    if matches!(part, ProposalPart::Undecodable(_)) {
        return Err(CodecError::Encode {
            what,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the undecodable-input marker is never sent",
            ),
        });
    }
    Ok(())
}

impl Codec<ProposalPart> for SettleCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ProposalPart, CodecError> {
        decode_borsh("proposal part", &bytes)
    }

    fn encode(&self, part: &ProposalPart) -> Result<Bytes, CodecError> {
        refuse_marker(part, "proposal part")?;
        encode_borsh("proposal part", part)
    }
}

/// Proposal-part gossip is the one input whose failure to decode is handed on
/// rather than dropped: Malachite drops a message its codec refuses without saying
/// who sent it, so bytes that do not decode become a one-message stream carrying
/// [`ProposalPart::Undecodable`], which reaches the driver with the publisher's id
/// (`spec/consensus.md`, "Misbehaving peers").
impl Codec<StreamMessage<ProposalPart>> for SettleCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<StreamMessage<ProposalPart>, CodecError> {
        match decode_borsh::<StreamMessage<ProposalPart>>("proposal stream message", &bytes) {
            Ok(msg) => Ok(msg),
            Err(e) => Ok(StreamMessage::new(
                StreamId::new(Bytes::new()),
                0,
                StreamContent::Data(ProposalPart::Undecodable(UndecodablePart {
                    len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                    reason: e.to_string(),
                })),
            )),
        }
    }

    fn encode(&self, msg: &StreamMessage<ProposalPart>) -> Result<Bytes, CodecError> {
        if let StreamContent::Data(part) = &msg.content {
            refuse_marker(part, "proposal stream message")?;
        }
        encode_borsh("proposal stream message", msg)
    }
}

borsh_codec!(ProposedValue<SettleContext>, "proposed value");
borsh_codec!(PolkaCertificate<SettleContext>, "polka certificate");

// Malachite's sync types have no usable Borsh implementation in 0.8 (its `borsh`
// feature does not build), so they travel as Settle-defined wire structs.

#[derive(BorshSerialize, BorshDeserialize)]
struct StatusWire {
    peer_id: Vec<u8>,
    tip_height: Height,
    history_min_height: Height,
}

#[derive(BorshSerialize, BorshDeserialize)]
enum RequestWire {
    Values { first: Height, last: Height },
}

#[derive(BorshSerialize, BorshDeserialize)]
struct CommitSignatureWire {
    validator: Address,
    signature: Signature,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct CertificateWire {
    height: Height,
    round: Round,
    block: BlockId,
    signatures: Vec<CommitSignatureWire>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct DecidedValueWire {
    block: Vec<u8>,
    certificate: CertificateWire,
}

#[derive(BorshSerialize, BorshDeserialize)]
enum ResponseWire {
    Values {
        first: Height,
        values: Vec<DecidedValueWire>,
    },
}

fn malformed(what: &'static str, why: &str) -> CodecError {
    CodecError::Malformed {
        what,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string()),
    }
}

impl Codec<Status<SettleContext>> for SettleCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Status<SettleContext>, CodecError> {
        let wire: StatusWire = decode_borsh("sync status", &bytes)?;
        let peer_id = PeerId::from_bytes(&wire.peer_id)
            .map_err(|_| malformed("sync status", "invalid peer id"))?;
        Ok(Status {
            peer_id,
            tip_height: wire.tip_height,
            history_min_height: wire.history_min_height,
        })
    }

    fn encode(&self, status: &Status<SettleContext>) -> Result<Bytes, CodecError> {
        encode_borsh(
            "sync status",
            &StatusWire {
                peer_id: status.peer_id.to_bytes(),
                tip_height: status.tip_height,
                history_min_height: status.history_min_height,
            },
        )
    }
}

impl Codec<Request<SettleContext>> for SettleCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Request<SettleContext>, CodecError> {
        let RequestWire::Values { first, last } = decode_borsh("sync request", &bytes)?;
        Ok(Request::ValueRequest(ValueRequest::new(first..=last)))
    }

    fn encode(&self, request: &Request<SettleContext>) -> Result<Bytes, CodecError> {
        let Request::ValueRequest(request) = request;
        encode_borsh(
            "sync request",
            &RequestWire::Values {
                first: *request.range.start(),
                last: *request.range.end(),
            },
        )
    }
}

fn response_to_wire(response: &Response<SettleContext>) -> Result<ResponseWire, CodecError> {
    let Response::ValueResponse(response) = response;
    let mut values = Vec::with_capacity(response.values.len());
    for value in &response.values {
        let cert = &value.certificate;
        let mut signatures = Vec::with_capacity(cert.commit_signatures.len());
        for s in &cert.commit_signatures {
            if s.extension.is_some() {
                // Settle never produces vote extensions; refuse to send one.
                return Err(CodecError::Encode {
                    what: "sync response",
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "vote extensions are disabled",
                    ),
                });
            }
            signatures.push(CommitSignatureWire {
                validator: s.address,
                signature: s.signature,
            });
        }
        values.push(DecidedValueWire {
            block: value.value_bytes.to_vec(),
            certificate: CertificateWire {
                height: cert.height,
                round: cert.round,
                block: cert.value_id,
                signatures,
            },
        });
    }
    Ok(ResponseWire::Values {
        first: response.start_height,
        values,
    })
}

impl Codec<Response<SettleContext>> for SettleCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Response<SettleContext>, CodecError> {
        let ResponseWire::Values { first, values } = decode_borsh("sync response", &bytes)?;
        let values = values
            .into_iter()
            .map(|v| {
                let signatures = v
                    .certificate
                    .signatures
                    .into_iter()
                    .map(|s| ExtendedCommitSignature::new(s.validator, s.signature, None))
                    .collect();
                RawDecidedValue::new(
                    Bytes::from(v.block),
                    ExtendedCommitCertificate {
                        height: v.certificate.height,
                        round: v.certificate.round,
                        value_id: v.certificate.block,
                        commit_signatures: signatures,
                    },
                )
            })
            .collect();
        Ok(Response::ValueResponse(ValueResponse::new(first, values)))
    }

    fn encode(&self, response: &Response<SettleContext>) -> Result<Bytes, CodecError> {
        encode_borsh("sync response", &response_to_wire(response)?)
    }
}

impl HasEncodedLen<Response<SettleContext>> for SettleCodec {
    fn encoded_len(&self, response: &Response<SettleContext>) -> Result<usize, CodecError> {
        borsh::object_length(&response_to_wire(response)?).map_err(|source| CodecError::Encode {
            what: "sync response",
            source,
        })
    }
}

/// Wire form of Malachite's `ValidatorProof`, which has no Borsh implementation.
#[derive(BorshSerialize, BorshDeserialize)]
struct ValidatorProofWire {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Signature,
}

impl Codec<ValidatorProof<SettleContext>> for SettleCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<SettleContext>, CodecError> {
        let wire: ValidatorProofWire = decode_borsh("validator proof", &bytes)?;
        Ok(ValidatorProof::new(
            wire.public_key,
            wire.peer_id,
            wire.signature,
        ))
    }

    fn encode(&self, proof: &ValidatorProof<SettleContext>) -> Result<Bytes, CodecError> {
        encode_borsh(
            "validator proof",
            &ValidatorProofWire {
                public_key: proof.public_key.clone(),
                peer_id: proof.peer_id.clone(),
                signature: proof.signature,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{PrivateKey, SettleSigner};
    use crate::types::{ProposalData, Vote};
    use malachitebft_core_types::{NilOrVal, SignedMessage, VoteType};
    use settle_assets::ChainId;

    fn signer() -> SettleSigner {
        let sk = secp256k1::SecretKey::from_byte_array([4; 32]).expect("valid secret");
        let kp = secp256k1::Keypair::from_secret_key(secp256k1::SECP256K1, &sk);
        SettleSigner::new(PrivateKey::new(kp), ChainId([1; 32]))
    }

    fn roundtrip<T>(value: &T) -> T
    where
        SettleCodec: Codec<T>,
        T: PartialEq + std::fmt::Debug,
    {
        let bytes = SettleCodec.encode(value).expect("encodes");
        let back: T = SettleCodec.decode(bytes.clone()).expect("decodes");
        assert_eq!(&back, value);
        // Trailing garbage is refused, and so is a truncated message.
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(<SettleCodec as Codec<T>>::decode(&SettleCodec, Bytes::from(longer)).is_err());
        if !bytes.is_empty() {
            let short = bytes.slice(..bytes.len() - 1);
            assert!(<SettleCodec as Codec<T>>::decode(&SettleCodec, short).is_err());
        }
        back
    }

    /// Like [`roundtrip`] for proposal-part gossip, whose undecodable variants come
    /// back as the marker rather than an error.
    fn roundtrip_stream(value: &StreamMessage<ProposalPart>) {
        let bytes = SettleCodec.encode(value).expect("encodes");
        let back: StreamMessage<ProposalPart> = SettleCodec.decode(bytes.clone()).expect("decodes");
        assert_eq!(&back, value);
        let mut longer = bytes.to_vec();
        longer.push(0);
        for bad in [Bytes::from(longer), bytes.slice(..bytes.len() - 1)] {
            let marked: StreamMessage<ProposalPart> = SettleCodec.decode(bad).expect("marker");
            assert!(matches!(
                marked.content,
                StreamContent::Data(ProposalPart::Undecodable(_))
            ));
        }
    }

    #[test]
    fn consensus_messages_roundtrip() {
        let s = signer();
        let vote = Vote {
            vote_type: VoteType::Precommit,
            height: Height(7),
            round: Round::new(1),
            value: NilOrVal::Val(BlockId([3; 32])),
            validator: s.address(),
        };
        let msg =
            SignedConsensusMsg::<SettleContext>::Vote(SignedMessage::new(vote, Signature([5; 64])));
        roundtrip(&msg);

        let part = StreamMessage::new(
            StreamId::new(Bytes::from_static(b"id")),
            3,
            StreamContent::Data(ProposalPart::Data(ProposalData {
                bytes: vec![1, 2, 3],
            })),
        );
        roundtrip_stream(&part);
        roundtrip_stream(&StreamMessage::<ProposalPart>::new(
            StreamId::new(Bytes::from_static(b"id")),
            4,
            StreamContent::Fin,
        ));

        let proof = s.validator_proof(vec![9; 38]);
        roundtrip(&proof);
    }

    #[test]
    fn sync_messages_roundtrip() {
        let request =
            Request::<SettleContext>::ValueRequest(ValueRequest::new(Height(2)..=Height(9)));
        roundtrip(&request);

        let cert = ExtendedCommitCertificate::<SettleContext> {
            height: Height(2),
            round: Round::new(0),
            value_id: BlockId([8; 32]),
            commit_signatures: vec![ExtendedCommitSignature::new(
                Address([1; 32]),
                Signature([2; 64]),
                None,
            )],
        };
        let response = Response::<SettleContext>::ValueResponse(ValueResponse::new(
            Height(2),
            vec![RawDecidedValue::new(Bytes::from_static(b"block"), cert)],
        ));
        roundtrip(&response);
        assert_eq!(
            SettleCodec.encoded_len(&response).expect("length"),
            SettleCodec.encode(&response).expect("encodes").len()
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let inputs: [&[u8]; 5] = [
            b"",
            b"\x00",
            b"\xff\xff\xff\xff",
            b"\x02garbage",
            &[0xab; 300],
        ];
        for input in inputs {
            let b = Bytes::copy_from_slice(input);
            assert!(
                <SettleCodec as Codec<SignedConsensusMsg<SettleContext>>>::decode(
                    &SettleCodec,
                    b.clone()
                )
                .is_err()
            );
            // Proposal-part gossip that does not decode becomes the marker, so the
            // driver can charge its publisher.
            let marked = <SettleCodec as Codec<StreamMessage<ProposalPart>>>::decode(
                &SettleCodec,
                b.clone(),
            )
            .expect("undecodable gossip is handed on");
            assert!(
                matches!(
                    &marked.content,
                    StreamContent::Data(ProposalPart::Undecodable(u))
                        if u.len as usize == input.len() && !u.reason.is_empty()
                ),
                "expected the undecodable marker, got {marked:?}"
            );
            assert!(
                SettleCodec.encode(&marked).is_err(),
                "the marker is never sent"
            );
            assert!(
                <SettleCodec as Codec<Response<SettleContext>>>::decode(&SettleCodec, b.clone())
                    .is_err()
            );
            assert!(
                <SettleCodec as Codec<Status<SettleContext>>>::decode(&SettleCodec, b).is_err()
            );
        }
        // A length prefix claiming 4 GiB of data must fail without allocating it.
        let mut huge = vec![1u8]; // ProposalPart::Data
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            <SettleCodec as Codec<ProposalPart>>::decode(&SettleCodec, Bytes::from(huge)).is_err()
        );
    }
}
