//! Unspent coins, asset registry entries, and the read-only view of the chain state
//! that validation needs.

use crate::membership::MembershipState;
use settle_assets::contract::AssetContract;
use settle_assets::encode::{Decode, DecodeError, Encode, Reader, write_var_bytes};
use settle_assets::hash::{AssetId, Txid, Wtxid};
use settle_assets::limits::MAX_CONTRACT_BYTES;
use settle_assets::transaction::{OutPoint, TxOut};

use crate::muhash::MuHash3072;

/// An unspent output with the height and time of the block that created it (relative
/// lock times count from these). The UTXO set never holds burns.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Coin {
    pub output: TxOut,
    pub height: u64,
    /// The creating block's `time_ms`.
    pub time_ms: u64,
}

impl Encode for Coin {
    fn encode(&self, out: &mut Vec<u8>) {
        self.output.encode(out);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
    }
}

impl Decode for Coin {
    const NAME: &'static str = "coin";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Coin {
            output: TxOut::decode(r)?,
            height: r.read_u64("coin height")?,
            time_ms: r.read_u64("coin time")?,
        })
    }
}

/// What the chain knows about one asset.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AssetInfo {
    pub contract: AssetContract,
    /// The canonical contract bytes as issued (their hash is part of the asset id).
    pub contract_bytes: Vec<u8>,
    /// Units ever issued (the first issuance and every reissuance).
    pub issued: u128,
    /// Units ever burned.
    pub burned: u128,
    /// The transaction that created the asset.
    pub issuing_txid: Txid,
    /// The height of the block that created it.
    pub height: u64,
}

impl AssetInfo {
    /// Units in existence: issued minus burned.
    pub fn outstanding(&self) -> u128 {
        self.issued.saturating_sub(self.burned)
    }
}

impl Encode for AssetInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        write_var_bytes(out, &self.contract_bytes);
        out.extend_from_slice(&self.issued.to_le_bytes());
        out.extend_from_slice(&self.burned.to_le_bytes());
        self.issuing_txid.encode(out);
        out.extend_from_slice(&self.height.to_le_bytes());
    }
}

impl Decode for AssetInfo {
    const NAME: &'static str = "asset info";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let contract_bytes = r
            .read_var_bytes("asset contract", MAX_CONTRACT_BYTES)?
            .to_vec();
        let contract = AssetContract::from_canonical_bytes(&contract_bytes).map_err(|e| {
            DecodeError::Invalid {
                what: "asset contract",
                detail: e.to_string(),
            }
        })?;
        Ok(AssetInfo {
            contract,
            contract_bytes,
            issued: u128::from_le_bytes(r.read_array("issued")?),
            burned: u128::from_le_bytes(r.read_array("burned")?),
            issuing_txid: Txid::decode(r)?,
            height: r.read_u64("asset height")?,
        })
    }
}

/// A read-only view of the chain state at some block: the UTXO set, the asset registry
/// and the UTXO set's running hash. The store implements it over RocksDB; tests over
/// maps. Validation never writes through it: it returns effects instead.
pub trait ChainView {
    /// The unspent coin at `outpoint`, if any.
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin>;
    /// The registry entry of `asset`, if it has been issued.
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo>;
    /// The running MuHash3072 of the UTXO set this view shows (its digest is the tip
    /// header's `utxo_commitment`). Block validation extends it.
    fn utxo_muhash(&self) -> MuHash3072;
    /// The membership after this view's block: the validators and permitted nodes in
    /// force and any pending change. `None` means the chain spec's genesis membership
    /// with nothing pending, which is right for a chain that never changed it.
    fn membership(&self) -> Option<MembershipState> {
        None
    }
    /// Whether the scripts of the transaction with this wtxid were verified already
    /// (a node's script cache); block validation and building then skip them. Sound
    /// because a wtxid fixes the witnesses and the outpoints spent, an outpoint names
    /// one output forever, and a script's verdict depends on nothing else.
    fn scripts_verified(&self, wtxid: &Wtxid) -> bool {
        let _ = wtxid;
        false
    }
}

impl<T: ChainView + ?Sized> ChainView for &T {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        (**self).coin(outpoint)
    }
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        (**self).asset(asset)
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        (**self).utxo_muhash()
    }
    fn membership(&self) -> Option<MembershipState> {
        (**self).membership()
    }
    fn scripts_verified(&self, wtxid: &Wtxid) -> bool {
        (**self).scripts_verified(wtxid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::contract::AssetClass;
    use settle_assets::encode::{deserialize, serialize};

    #[test]
    fn asset_info_round_trips_and_refuses_a_bad_contract() {
        let contract = AssetContract {
            class: AssetClass::Cash {
                currency: "EUR".into(),
            },
            name: "Euro".into(),
            ticker: "EUR".into(),
            precision: 2,
            issuer: [0x11; 32],
            reissuable: true,
        };
        let info = AssetInfo {
            contract_bytes: contract.to_canonical_bytes().expect("valid"),
            contract,
            issued: u128::from(u64::MAX) * 3,
            burned: 7,
            issuing_txid: Txid([5; 32]),
            height: 9,
        };
        let bytes = serialize(&info);
        assert_eq!(deserialize::<AssetInfo>(&bytes), Ok(info.clone()));
        assert_eq!(info.outstanding(), u128::from(u64::MAX) * 3 - 7);
        let mut bad = bytes.clone();
        bad[2] = b' ';
        assert!(matches!(
            deserialize::<AssetInfo>(&bad),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
