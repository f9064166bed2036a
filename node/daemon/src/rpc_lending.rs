//! The securities-lending RPC methods (`spec/rpc.md`, "Securities lending"):
//! `listpositions`, `getposition` and `listlendable`. Loans and holdings are derived from
//! the chain on every call (`settle_chain::lending`), through the [`LendingSource`]
//! implementation of the RocksDB store below; nothing about a loan is stored beside the
//! chain.

use secp256k1::XOnlyPublicKey;
use serde_json::Value;
use settle_assets::hash::{AssetId, Txid};
use settle_assets::transaction::{OutPoint, Transaction};
use settle_chain::lending::{
    DeriveError, EscrowCoin, Holding, LendingSource, LendingState, Position, derive_book,
    derive_position, security_holdings,
};
use settle_chain::{AssetInfo, Coin};
use settle_rpc::{
    ClosingInfo, EscrowCoinInfo, EscrowUpdateInfo, LendableInfo, LendableList,
    MAX_LISTLENDABLE_RESULTS, MAX_LISTPOSITIONS_RESULTS, PositionInfo, PositionList, RpcError,
    UnrecognisedPositionInfo,
};
use settle_script::addresses::{Address, Network};
use settle_script::templates::{ScriptKind, classify};

use crate::node::Node;
use crate::store::{ChainStore, StoreError};

/// The methods this module serves, for `help` (`rpc::METHODS` lists them too).
pub const LENDING_METHODS: &[&str] = &["listpositions", "getposition", "listlendable"];

/// Whether `method` is one of this module's.
pub fn handles(method: &str) -> bool {
    LENDING_METHODS.contains(&method)
}

impl LendingSource for ChainStore {
    type Error = StoreError;

    fn lending_positions(&self) -> Result<Vec<(AssetId, AssetInfo)>, StoreError> {
        Ok(self
            .assets()?
            .into_iter()
            .filter(|(_, info)| {
                matches!(
                    info.contract.class,
                    settle_assets::contract::AssetClass::LendingPosition(_)
                )
            })
            .collect())
    }

    fn asset(&self, asset: &AssetId) -> Result<Option<AssetInfo>, StoreError> {
        ChainStore::asset(self, asset)
    }

    fn transaction(&self, txid: &Txid) -> Result<Option<(Transaction, u64)>, StoreError> {
        Ok(ChainStore::transaction(self, txid)?.map(|(tx, loc)| (tx, loc.height)))
    }

    fn spent_by(&self, outpoint: &OutPoint) -> Result<Option<Txid>, StoreError> {
        Ok(self.spend_of(outpoint)?.map(|s| s.txid))
    }

    fn for_each_coin(&self, visit: &mut dyn FnMut(&OutPoint, &Coin)) -> Result<(), StoreError> {
        ChainStore::for_each_coin(self, |outpoint, coin: Result<Coin, StoreError>| {
            visit(&outpoint, &coin?);
            Ok::<(), StoreError>(())
        })
    }
}

fn store_err(e: StoreError) -> RpcError {
    tracing::error!(error = %e, "storage error while reading loans");
    RpcError::database(e)
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(RpcError::internal)
}

/// Named (object) or positional (array) parameters, null meaning absent.
fn param<'a>(
    method: &str,
    params: &'a Value,
    names: &[&str],
    index: usize,
) -> Result<Option<&'a Value>, RpcError> {
    let v = match params {
        Value::Null => None,
        Value::Array(items) if items.len() <= names.len() => items.get(index),
        Value::Array(items) => {
            return Err(RpcError::invalid_params(format!(
                "{method} takes at most {} parameters ({}), got {}",
                names.len(),
                names.join(", "),
                items.len()
            )));
        }
        Value::Object(map) => {
            if let Some(unknown) = map.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(RpcError::invalid_params(format!(
                    "{method} has no parameter {unknown:?} (it takes: {})",
                    names.join(", ")
                )));
            }
            map.get(names[index])
        }
        _ => {
            return Err(RpcError::invalid_params(
                "params must be an array or an object",
            ));
        }
    };
    Ok(v.filter(|v| !v.is_null()))
}

fn opt_str<'a>(
    method: &str,
    params: &'a Value,
    names: &[&str],
    index: usize,
) -> Result<Option<&'a str>, RpcError> {
    match param(method, params, names, index)? {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| {
            RpcError::invalid_params(format!("parameter {:?} must be a string", names[index]))
        }),
    }
}

fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

/// An x-only key in hex, or a pay-to-key address of this chain's network.
fn parse_party(text: &str, network: Network, name: &str) -> Result<[u8; 32], RpcError> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key)
            .map_err(|_| RpcError::invalid_parameter(format!("{name}: not hex")))?;
        XOnlyPublicKey::from_byte_array(key).map_err(|_| {
            RpcError::invalid_parameter(format!(
                "parameter {name:?}: {text} is not a valid x-only public key"
            ))
        })?;
        return Ok(key);
    }
    let address = Address::parse_for(text, network).map_err(|e| {
        RpcError::invalid_parameter(format!(
            "parameter {name:?} must be a 64-hex x-only key or a pay-to-key address, got {:?}: {e}",
            shown(text)
        ))
    })?;
    match classify(&address.script_pubkey()) {
        ScriptKind::PayToKey(key) => Ok(key),
        _ => Err(RpcError::invalid_parameter(format!(
            "parameter {name:?}: {} is not a pay-to-key address, so it names no party",
            shown(text)
        ))),
    }
}

fn parse_state(text: &str) -> Result<LendingState, RpcError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "lent" => Ok(LendingState::Lent),
        "returned" | "matured" => Ok(LendingState::Returned),
        "defaulted" | "default" => Ok(LendingState::Defaulted),
        _ => Err(RpcError::invalid_parameter(format!(
            "parameter \"state\" must be lent, returned (matured) or defaulted (default), got {:?}",
            shown(text)
        ))),
    }
}

fn p2k_address(network: Network, key: &[u8; 32]) -> Option<String> {
    XOnlyPublicKey::from_byte_array(*key)
        .ok()
        .map(|k| Address::p2k(network, &k).to_string())
}

fn escrow_info(c: &EscrowCoin) -> EscrowCoinInfo {
    EscrowCoinInfo {
        outpoint: c.outpoint,
        asset: c.asset,
        amount: c.amount,
        height: c.height,
    }
}

/// A derived loan as the RPC shows it, with its timing from `tip_height`.
pub fn position_info(p: &Position, network: Network, tip_height: u64) -> PositionInfo {
    let t = &p.terms;
    let timing = p.timing(tip_height);
    PositionInfo {
        position: p.asset,
        state: p.state.name().into(),
        lending_state: p.state.paper_name().into(),
        isin: t.isin.clone(),
        security_asset: t.security_asset,
        quantity: t.quantity,
        lender: hex::encode(t.lender),
        borrower: hex::encode(t.borrower),
        lender_address: p2k_address(network, &t.lender),
        borrower_address: p2k_address(network, &t.borrower),
        collateral_asset: t.collateral_asset,
        collateral_amount: t.collateral_amount,
        collateral: p.collateral(),
        fee_asset: t.fee_asset,
        fee: t.fee,
        interest_rate_bps: t.interest_rate_bps,
        settlement_height: t.settlement_height,
        maturity_height: t.maturity_height,
        grace_period_blocks: t.grace_period_blocks,
        grace_end_height: p.grace_end_height,
        negotiator: t.negotiator.clone(),
        lender_player: t.lender_player.clone(),
        issuer: hex::encode(p.issuer),
        opening_txid: p.opening_txid,
        opened_height: p.opened_height,
        escrow_script: hex::encode(&p.escrow_script),
        escrow_address: Address::from_script_pubkey(network, &p.escrow_script_pubkey)
            .ok()
            .map(|a| a.to_string()),
        escrow: p.escrow.as_ref().map(escrow_info),
        updates: p
            .updates
            .iter()
            .map(|u| EscrowUpdateInfo {
                txid: u.txid,
                height: u.height,
                escrow: escrow_info(&u.coin),
            })
            .collect(),
        closing: p.closing.as_ref().map(|c| ClosingInfo {
            txid: c.txid,
            height: c.height,
            path: c.path.name().into(),
        }),
        tip_height,
        blocks_to_maturity: timing.blocks_to_maturity,
        blocks_to_claim: timing.blocks_to_claim,
        overdue: timing.overdue,
        can_return: timing.can_return,
        can_claim: timing.can_claim,
    }
}

fn lendable_info(h: &Holding, network: Network) -> LendableInfo {
    LendableInfo {
        owner: hex::encode(h.owner),
        address: p2k_address(network, &h.owner),
        isin: h.isin.clone(),
        security_asset: h.security_asset,
        held: h.held,
        available: h.available(),
        suspended: h.suspended(),
        matured: h.matured(),
        unavailable: h.unavailable(),
        borrowed: h.borrowed,
        state: h.state().name().into(),
    }
}

/// Runs one lending method. The caller has checked [`handles`].
pub fn call(node: &Node, method: &str, params: &Value) -> Result<Value, RpcError> {
    let network = node.spec.network;
    match method {
        "listpositions" => {
            let names = ["isin", "party", "state", "include_unrecognised"];
            let isin = opt_str(method, params, &names, 0)?.map(str::to_owned);
            let party = opt_str(method, params, &names, 1)?
                .map(|p| parse_party(p, network, "party"))
                .transpose()?;
            let state = opt_str(method, params, &names, 2)?
                .map(parse_state)
                .transpose()?;
            let include_unrecognised = match param(method, params, &names, 3)? {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(RpcError::invalid_params(
                        "parameter \"include_unrecognised\" must be a boolean",
                    ));
                }
            };
            // Hold the mempool lock so no block connects while the loans are read: every
            // read below sees the same tip.
            let _quiet = node.mempool();
            let tip = node.tip().map_err(store_err)?;
            let book = derive_book(&node.store).map_err(store_err)?;
            let mut matching = book.positions.iter().filter(|p| {
                isin.as_deref()
                    .is_none_or(|i| p.terms.isin.eq_ignore_ascii_case(i.trim()))
                    && party.is_none_or(|k| p.terms.lender == k || p.terms.borrower == k)
                    && state.is_none_or(|s| p.state == s)
            });
            let positions: Vec<PositionInfo> = matching
                .by_ref()
                .take(MAX_LISTPOSITIONS_RESULTS)
                .map(|p| position_info(p, network, tip.height))
                .collect();
            let truncated = matching.next().is_some();
            let unrecognised = if include_unrecognised {
                book.unrecognised
                    .iter()
                    .take(MAX_LISTPOSITIONS_RESULTS)
                    .map(|u| UnrecognisedPositionInfo {
                        position: u.asset,
                        reason: u.defect.to_string(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            to_value(PositionList {
                tip_height: tip.height,
                positions,
                truncated,
                unrecognised,
            })
        }
        "getposition" => {
            let names = ["position"];
            let text = opt_str(method, params, &names, 0)?.ok_or_else(|| {
                RpcError::invalid_params("getposition needs parameter \"position\"")
            })?;
            let id: AssetId = text.trim().parse().map_err(|_| {
                RpcError::invalid_parameter(format!(
                    "parameter \"position\" must be 64 hex characters, got {:?}",
                    shown(text)
                ))
            })?;
            let _quiet = node.mempool();
            let tip = node.tip().map_err(store_err)?;
            match derive_position(&node.store, &id) {
                Ok(p) => to_value(position_info(&p, network, tip.height)),
                Err(DeriveError::Source(e)) => Err(store_err(e)),
                Err(DeriveError::UnknownAsset(_)) => Err(RpcError::not_found(format!(
                    "asset {id} is not issued on this chain"
                ))),
                Err(DeriveError::Defect(u)) => Err(RpcError::invalid_parameter(format!(
                    "asset {id} is not a loan: {}",
                    u.defect
                ))),
            }
        }
        "listlendable" => {
            let names = ["isin", "owner"];
            let isin = opt_str(method, params, &names, 0)?.map(|s| s.trim().to_owned());
            let owner = opt_str(method, params, &names, 1)?
                .map(|p| parse_party(p, network, "owner"))
                .transpose()?;
            let _quiet = node.mempool();
            let tip = node.tip().map_err(store_err)?;
            let book = derive_book(&node.store).map_err(store_err)?;
            let holdings = security_holdings(&node.store, &book, tip.height).map_err(store_err)?;
            let mut matching = holdings.iter().filter(|h| {
                isin.as_deref()
                    .is_none_or(|i| h.isin.eq_ignore_ascii_case(i))
                    && owner.is_none_or(|o| h.owner == o)
            });
            let list: Vec<LendableInfo> = matching
                .by_ref()
                .take(MAX_LISTLENDABLE_RESULTS)
                .map(|h| lendable_info(h, network))
                .collect();
            let truncated = matching.next().is_some();
            to_value(LendableList {
                tip_height: tip.height,
                holdings: list,
                truncated,
            })
        }
        other => Err(RpcError::method_not_found(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_and_parties_parse_or_say_what_is_wrong() {
        assert_eq!(parse_state("Matured").ok(), Some(LendingState::Returned));
        assert_eq!(parse_state("default").ok(), Some(LendingState::Defaulted));
        assert_eq!(parse_state(" lent ").ok(), Some(LendingState::Lent));
        let e = parse_state("closed").expect_err("unknown state");
        assert!(e.message.contains("closed"), "{}", e.message);

        let key = secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [7; 32])
            .expect("key")
            .x_only_public_key()
            .0;
        let hex_key = hex::encode(key.serialize());
        assert_eq!(
            parse_party(&hex_key, Network::Dev, "party").ok(),
            Some(key.serialize())
        );
        let address = Address::p2k(Network::Dev, &key).to_string();
        assert_eq!(
            parse_party(&address, Network::Dev, "party").ok(),
            Some(key.serialize())
        );
        assert!(parse_party(&address, Network::Main, "party").is_err());
        assert!(parse_party("zz", Network::Dev, "party").is_err());
        // 64 hex characters that are not a point on the curve.
        assert!(parse_party(&"f".repeat(64), Network::Dev, "party").is_err());
    }

    #[test]
    fn parameters_are_checked() {
        let names = ["isin", "party"];
        assert!(param("m", &json!([1, 2, 3]), &names, 0).is_err());
        assert!(param("m", &json!({"nope": 1}), &names, 0).is_err());
        assert!(param("m", &json!("x"), &names, 0).is_err());
        assert_eq!(
            param("m", &json!({"party": null}), &names, 1).ok(),
            Some(None)
        );
        assert!(opt_str("m", &json!([5]), &names, 0).is_err());
    }
}
