//! An in-memory chain state: the reference for how effects are applied, and a
//! [`ChainView`] for tests and tools. The node's store does the same over RocksDB.

use std::collections::HashMap;

use settle_assets::hash::AssetId;
use settle_assets::transaction::OutPoint;

use crate::block::{Block, Header};
use crate::coin::{AssetInfo, ChainView, Coin};
use crate::membership::MembershipState;
use crate::muhash::MuHash3072;
use crate::spec::{ChainSpec, Genesis};
use crate::validate::{BlockEffects, BlockError, validate_block};
use settle_assets::hash::ChainId;

/// The UTXO set, the asset registry and the tip header, in memory.
#[derive(Clone, Debug)]
pub struct MemoryState {
    tip: Header,
    coins: HashMap<OutPoint, Coin>,
    assets: HashMap<AssetId, AssetInfo>,
    muhash: MuHash3072,
    /// Set once a block changes the membership; `None` is the spec's genesis one.
    membership: Option<MembershipState>,
}

impl MemoryState {
    /// The state after the genesis block.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut state = MemoryState {
            tip: genesis.block.header,
            coins: HashMap::new(),
            assets: HashMap::new(),
            muhash: MuHash3072::new(),
            membership: None,
        };
        state.apply(&genesis.block.header, &genesis.effects);
        state
    }

    /// The last connected block's header.
    pub fn tip(&self) -> &Header {
        &self.tip
    }

    /// Applies a validated block's effects: spent coins leave, created coins enter,
    /// new assets are registered and every asset's issued and burned counts grow.
    pub fn apply(&mut self, header: &Header, effects: &BlockEffects) {
        for (outpoint, _) in &effects.spent {
            self.coins.remove(outpoint);
        }
        for (outpoint, coin) in &effects.created {
            self.coins.insert(*outpoint, coin.clone());
        }
        for delta in &effects.assets {
            if let Some(info) = &delta.created {
                self.assets.insert(delta.asset, info.clone());
            }
            if let Some(info) = self.assets.get_mut(&delta.asset) {
                info.issued += delta.issued;
                info.burned += delta.burned;
            }
        }
        self.muhash = effects.muhash.clone();
        if let Some(membership) = &effects.membership {
            self.membership = Some(membership.clone());
        }
        self.tip = *header;
    }

    /// Validates `block` on the tip and applies it.
    pub fn connect(
        &mut self,
        block: &Block,
        spec: &ChainSpec,
        chain_id: &ChainId,
    ) -> Result<BlockEffects, BlockError> {
        let effects = validate_block(block, &self.tip, &*self, spec, chain_id)?;
        self.apply(&block.header, &effects);
        Ok(effects)
    }

    /// The UTXO-set digest recomputed from scratch over every coin (what
    /// `settled verify` does against its database).
    pub fn recompute_commitment(&self) -> [u8; 32] {
        let mut muhash = MuHash3072::new();
        for (outpoint, coin) in &self.coins {
            muhash.insert_coin(outpoint, coin);
        }
        muhash.finalize()
    }

    /// Every unspent coin.
    pub fn coins(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.coins.iter()
    }

    /// Every registered asset.
    pub fn assets(&self) -> impl Iterator<Item = (&AssetId, &AssetInfo)> {
        self.assets.iter()
    }
}

impl ChainView for MemoryState {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        self.coins.get(outpoint).cloned()
    }
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        self.assets.get(asset).cloned()
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        self.muhash.clone()
    }
    fn membership(&self) -> Option<MembershipState> {
        self.membership.clone()
    }
}
