//! Securities lending over RPC: the results of `listpositions`, `getposition` and
//! `listlendable` (`spec/rpc.md`, "Securities lending"; the states are those of
//! `spec/lending.md`, section 9), and the client's typed wrappers for them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use settle_assets::{AssetId, OutPoint, Txid};

use crate::client::{ClientError, RpcClient};

/// Most positions one `listpositions` call returns (the newest are cut, and `truncated`
/// says so). Keeps one answer bounded however many loans the chain holds.
pub const MAX_LISTPOSITIONS_RESULTS: usize = 10_000;
/// Most holdings one `listlendable` call returns.
pub const MAX_LISTLENDABLE_RESULTS: usize = 100_000;

/// A coin holding a loan's collateral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowCoinInfo {
    pub outpoint: OutPoint,
    pub asset: AssetId,
    pub amount: u64,
    /// Height of the block that created it.
    pub height: u64,
}

/// A collateral change both parties signed (margin top-up or release, substitution).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowUpdateInfo {
    pub txid: Txid,
    pub height: u64,
    /// The new escrow coin.
    pub escrow: EscrowCoinInfo,
}

/// How a loan ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosingInfo {
    pub txid: Txid,
    pub height: u64,
    /// `return` (the borrower, with the lender's pre-signature), `agreement` (both
    /// signed) or `default` (the lender's claim after maturity plus grace).
    pub path: String,
}

/// One loan as the chain shows it (`getposition`, and each entry of `listpositions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionInfo {
    /// The loan's `lending_position` asset.
    pub position: AssetId,
    /// `lent`, `returned` or `defaulted`.
    pub state: String,
    /// The study's name for the state: `Lent`, `Matured` or `Default`.
    pub lending_state: String,
    pub isin: String,
    pub security_asset: AssetId,
    pub quantity: u64,
    /// X-only keys (hex).
    pub lender: String,
    pub borrower: String,
    /// The lender's and the borrower's pay-to-key addresses.
    pub lender_address: Option<String>,
    pub borrower_address: Option<String>,
    pub collateral_asset: AssetId,
    /// The collateral the terms asked for at opening.
    pub collateral_amount: u64,
    /// Units of collateral in escrow now (0 once closed); may differ from the terms
    /// after margin updates.
    pub collateral: u64,
    pub fee_asset: AssetId,
    pub fee: u64,
    pub interest_rate_bps: u32,
    pub settlement_height: u32,
    pub maturity_height: u32,
    pub grace_period_blocks: u32,
    /// `maturity_height + grace_period_blocks`: the last height a return may be in.
    pub grace_end_height: u32,
    pub negotiator: Option<String>,
    pub lender_player: Option<String>,
    /// The key that issued the position (hex).
    pub issuer: String,
    pub opening_txid: Txid,
    pub opened_height: u64,
    /// The escrow's witness script (hex) and its address.
    pub escrow_script: String,
    pub escrow_address: Option<String>,
    /// The coin holding the collateral now (exactly while `lent`).
    pub escrow: Option<EscrowCoinInfo>,
    pub updates: Vec<EscrowUpdateInfo>,
    /// How the loan ended (exactly when not `lent`).
    pub closing: Option<ClosingInfo>,
    /// The tip the timing below is counted from.
    pub tip_height: u64,
    /// Blocks from the tip to maturity (0 once reached).
    pub blocks_to_maturity: u64,
    /// Blocks from the tip until a default claim can be in the next block (0 once it can).
    pub blocks_to_claim: u64,
    /// Open and the tip is at or past maturity.
    pub overdue: bool,
    /// Open and the borrower's return can be in the next block.
    pub can_return: bool,
    /// Open and the lender's default claim can be in the next block.
    pub can_claim: bool,
}

/// A `lending_position` asset that is not a loan, and why (`listpositions` with
/// `include_unrecognised`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnrecognisedPositionInfo {
    pub position: AssetId,
    pub reason: String,
}

/// `listpositions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionList {
    pub tip_height: u64,
    /// Ordered by opening height, then opening txid, then position id.
    pub positions: Vec<PositionInfo>,
    /// More positions matched than `MAX_LISTPOSITIONS_RESULTS`.
    pub truncated: bool,
    /// Position assets that are not loans (only with `include_unrecognised`).
    #[serde(default)]
    pub unrecognised: Vec<UnrecognisedPositionInfo>,
}

/// What one owner has of one security (`listlendable`), in units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LendableInfo {
    /// The owner's x-only key (hex) and its pay-to-key address.
    pub owner: String,
    pub address: Option<String>,
    pub isin: String,
    pub security_asset: AssetId,
    /// Units in the owner's pay-to-key coins.
    pub held: u64,
    /// Available: free to lend (`held - borrowed`, not below 0).
    pub available: u64,
    /// Suspended: held but owed back on loans the owner borrowed.
    pub suspended: u64,
    /// Matured: lent out on loans at or past maturity.
    pub matured: u64,
    /// Unavailable: lent out on loans before maturity.
    pub unavailable: u64,
    /// Borrowed on open loans.
    pub borrowed: u64,
    /// The owner's state for the security: `available`, `suspended`, `matured` or
    /// `unavailable`.
    pub state: String,
}

/// `listlendable`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LendableList {
    pub tip_height: u64,
    /// Ordered by ISIN, owner, security asset.
    pub holdings: Vec<LendableInfo>,
    pub truncated: bool,
}

/// Filters of `listpositions`; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PositionFilter {
    pub isin: Option<String>,
    /// An x-only key (hex) or a pay-to-key address: lender or borrower.
    pub party: Option<String>,
    /// `lent`, `returned`, `defaulted` (or the study's `Lent`, `Matured`, `Default`).
    pub state: Option<String>,
}

impl RpcClient {
    /// `listpositions` with these filters.
    pub fn list_positions(&self, filter: &PositionFilter) -> Result<PositionList, ClientError> {
        self.call(
            "listpositions",
            json!({ "isin": filter.isin, "party": filter.party, "state": filter.state }),
        )
    }

    /// `getposition`: one loan by its position asset id.
    pub fn get_position(&self, position: &AssetId) -> Result<PositionInfo, ClientError> {
        self.call("getposition", json!([position]))
    }

    /// `listlendable`, optionally for one ISIN and one owner (key or address).
    pub fn list_lendable(
        &self,
        isin: Option<&str>,
        owner: Option<&str>,
    ) -> Result<LendableList, ClientError> {
        let mut params = serde_json::Map::new();
        if let Some(i) = isin {
            params.insert("isin".into(), Value::from(i));
        }
        if let Some(o) = owner {
            params.insert("owner".into(), Value::from(o));
        }
        self.call("listlendable", Value::Object(params))
    }
}
