//! `settled membership`: validator operators change who validates and who may connect.
//!
//! One operator proposes a change (it is signed with their validator key), passes the
//! file to the others, each signs it with `sign`, and any of them submits it once
//! validators holding more than two thirds of the voting power have signed. The file
//! is the membership transaction in hex; every command checks it against the node.
//!
//! ```text
//! settled membership propose --datadir D --permit KEY --activate-in 20 --out change.hex
//! settled membership sign    --datadir D change.hex
//! settled membership show    --datadir D change.hex
//! settled membership submit  --datadir D change.hex
//! ```

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::Value;
use settle_assets::{Transaction, deserialize, serialize};
use settle_chain::{MembershipChange, MembershipOp};
use settle_rpc::{Auth, RpcClient};

use crate::datadir::{DataDir, read_key};

/// Activation delay when none is given: long enough for every node to see the change
/// confirmed before it applies.
pub const DEFAULT_ACTIVATION_DELAY_BLOCKS: u64 = 10;
/// How long one RPC call to the local node may take.
const RPC_TIMEOUT_MS: u64 = 30_000;

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Subcommand, Debug)]
pub enum MembershipCommand {
    /// Propose a change (signed with this node's validator key) and write it to a file.
    Propose(ProposeArgs),
    /// Add this node's validator signature to a proposed change.
    Sign(FileArg),
    /// Describe a proposed change and how much voting power has signed it.
    Show(FileArg),
    /// Send a change signed by a quorum to the node, which gossips it to the network.
    Submit(FileArg),
}

#[derive(Args, Debug)]
pub struct ProposeArgs {
    /// Add a validator or change its power: `KEY:POWER` (x-only key in hex; power 0
    /// removes it).
    #[arg(long = "set-validator", value_name = "KEY:POWER")]
    set_validator: Vec<String>,
    /// Remove a validator (the same as `--set-validator KEY:0`).
    #[arg(long = "remove-validator", value_name = "KEY")]
    remove_validator: Vec<String>,
    /// Permit a node key to connect.
    #[arg(long, value_name = "KEY")]
    permit: Vec<String>,
    /// Withdraw a node key's permission; its connections are dropped.
    #[arg(long, value_name = "KEY")]
    revoke: Vec<String>,
    /// The change applies from this many blocks after the node's next block.
    #[arg(long, value_name = "BLOCKS", conflicts_with = "activation_height")]
    activate_in: Option<u64>,
    /// The change applies from this height.
    #[arg(long, value_name = "HEIGHT")]
    activation_height: Option<u64>,
    /// Where to write the change.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct FileArg {
    /// A change written by `settled membership propose`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn parse_key(text: &str, flag: &str) -> Fallible<[u8; 32]> {
    crate::config::parse_xonly(text.trim()).ok_or_else(|| {
        format!("{flag} {text:?}: not an x-only public key (64 hex characters)").into()
    })
}

fn ops(args: &ProposeArgs) -> Fallible<Vec<MembershipOp>> {
    let mut ops = Vec::new();
    for item in &args.set_validator {
        let (key, power) = item
            .split_once(':')
            .ok_or_else(|| format!("--set-validator {item:?}: expected KEY:POWER"))?;
        let power: u64 = power
            .parse()
            .map_err(|_| format!("--set-validator {item:?}: power must be a whole number"))?;
        ops.push(MembershipOp::SetValidator {
            key: parse_key(key, "--set-validator")?,
            power,
        });
    }
    for key in &args.remove_validator {
        ops.push(MembershipOp::SetValidator {
            key: parse_key(key, "--remove-validator")?,
            power: 0,
        });
    }
    for key in &args.permit {
        ops.push(MembershipOp::Permit {
            key: parse_key(key, "--permit")?,
        });
    }
    for key in &args.revoke {
        ops.push(MembershipOp::Revoke {
            key: parse_key(key, "--revoke")?,
        });
    }
    if ops.is_empty() {
        return Err(
            "nothing to change: give --set-validator, --remove-validator, --permit or --revoke"
                .into(),
        );
    }
    Ok(ops)
}

/// The local node: its RPC client and chain id.
struct Local {
    client: RpcClient,
    dir: DataDir,
}

impl Local {
    fn new(dir: &DataDir, rpc_port: u16) -> Self {
        Local {
            client: RpcClient::with_timeout(
                format!("http://127.0.0.1:{rpc_port}"),
                Auth::cookie_in(dir.root()),
                RPC_TIMEOUT_MS,
            ),
            dir: DataDir::new(dir.root()),
        }
    }

    fn call(&self, method: &str) -> Fallible<Value> {
        self.client
            .call(method, serde_json::json!([]))
            .map_err(|e| {
                format!("{method} on the node at {}: {e}", self.dir.root().display()).into()
            })
    }

    fn chain_id(&self) -> Fallible<settle_assets::hash::ChainId> {
        let info = self
            .client
            .get_blockchain_info()
            .map_err(|e| format!("asking the node at {}: {e}", self.dir.root().display()))?;
        Ok(info.chain_id)
    }

    fn validator_key(&self) -> Fallible<secp256k1::Keypair> {
        let path = self.dir.validator_key();
        if !path.exists() {
            return Err(format!(
                "{} holds no validator key ({}): only validators sign membership changes",
                self.dir.root().display(),
                path.display()
            )
            .into());
        }
        Ok(read_key(&path)?)
    }
}

fn read_change(path: &Path) -> Fallible<MembershipChange> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .map_err(|e| format!("{}: not a membership change in hex: {e}", path.display()))?;
    let tx: Transaction =
        deserialize(&bytes).map_err(|e| format!("{}: not a transaction: {e}", path.display()))?;
    Ok(MembershipChange::from_transaction(&tx).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn write_change(path: &Path, change: &MembershipChange) -> Fallible<()> {
    let text = format!("{}\n", hex::encode(serialize(&change.to_transaction())));
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// Runs a `settled membership` command against the node on `rpc_port`.
pub fn run(command: &MembershipCommand, dir: &DataDir, rpc_port: u16) -> Fallible<()> {
    let local = Local::new(dir, rpc_port);
    match command {
        MembershipCommand::Propose(args) => propose(&local, args),
        MembershipCommand::Sign(f) => {
            let mut change = read_change(&f.file)?;
            let key = local.validator_key()?;
            change.sign(&key, &local.chain_id()?);
            write_change(&f.file, &change)?;
            println!(
                "signed {} as validator {}",
                f.file.display(),
                key.x_only_public_key().0
            );
            show(&local, &change)
        }
        MembershipCommand::Show(f) => show(&local, &read_change(&f.file)?),
        MembershipCommand::Submit(f) => {
            let change = read_change(&f.file)?;
            let txid = local
                .client
                .send_raw_transaction(&change.to_transaction())
                .map_err(|e| format!("the node refused the change: {e}"))?;
            println!("submitted membership change {txid}");
            println!(
                "it applies from height {} once confirmed (settled: `getmembership` shows it pending)",
                change.activation_height
            );
            Ok(())
        }
    }
}

fn propose(local: &Local, args: &ProposeArgs) -> Fallible<()> {
    let ops = ops(args)?;
    let membership = local.call("getmembership")?;
    if let Some(p) = membership.get("pending").filter(|p| !p.is_null()) {
        return Err(format!(
            "membership change {} is pending until height {}; propose after it applies",
            p["txid"].as_str().unwrap_or("?"),
            p["activation_height"]
        )
        .into());
    }
    let next = membership["height"]
        .as_u64()
        .ok_or("getmembership gave no height")?;
    let base_hex = membership["current"]["hash"]
        .as_str()
        .ok_or("getmembership gave no membership hash")?;
    let mut base = [0u8; 32];
    hex::decode_to_slice(base_hex, &mut base).map_err(|e| format!("membership hash: {e}"))?;
    let activation_height = match (args.activation_height, args.activate_in) {
        (Some(h), _) => h,
        (None, Some(n)) => next.saturating_add(n),
        (None, None) => next.saturating_add(DEFAULT_ACTIVATION_DELAY_BLOCKS),
    };
    if activation_height <= next {
        return Err(format!(
            "activation height {activation_height} must be after the next block ({next})"
        )
        .into());
    }
    let mut change = MembershipChange {
        activation_height,
        base,
        ops,
        signatures: Vec::new(),
    };
    if local.dir.validator_key().exists() {
        change.sign(&local.validator_key()?, &local.chain_id()?);
    }
    write_change(&args.out, &change)?;
    println!("wrote {}", args.out.display());
    show(local, &change)
}

fn show(local: &Local, change: &MembershipChange) -> Fallible<()> {
    println!(
        "membership change applying from height {}",
        change.activation_height
    );
    for op in &change.ops {
        match op {
            MembershipOp::SetValidator { key, power: 0 } => {
                println!("  remove validator {}", hex::encode(key));
            }
            MembershipOp::SetValidator { key, power } => {
                println!("  validator {} with power {power}", hex::encode(key));
            }
            MembershipOp::Permit { key } => println!("  permit node {}", hex::encode(key)),
            MembershipOp::Revoke { key } => println!("  revoke node {}", hex::encode(key)),
        }
    }
    let membership = local.call("getmembership")?;
    let current = &membership["current"];
    if current["hash"].as_str() != Some(hex::encode(change.base).as_str()) {
        println!(
            "  WARNING: it edits membership {} but the node's is {}: it will be refused",
            hex::encode(change.base),
            current["hash"].as_str().unwrap_or("?")
        );
    }
    let digest = change.digest(&local.chain_id()?);
    let mut signed: u64 = 0;
    for s in &change.signatures {
        let validator = current["validators"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["key"].as_str() == Some(hex::encode(s.validator).as_str()));
        let valid = secp256k1::XOnlyPublicKey::from_byte_array(s.validator)
            .ok()
            .is_some_and(|pk| {
                secp256k1::SECP256K1
                    .verify_schnorr(
                        &secp256k1::schnorr::Signature::from_byte_array(s.signature),
                        &digest,
                        &pk,
                    )
                    .is_ok()
            });
        let label = match (validator, valid) {
            (Some(v), true) => {
                let power = v["power"].as_u64().unwrap_or(0);
                signed += power;
                format!("{} (power {power})", v["name"].as_str().unwrap_or("?"))
            }
            (Some(_), false) => "INVALID signature".into(),
            (None, _) => "not a validator".into(),
        };
        println!("  signed by {}: {label}", hex::encode(s.validator));
    }
    let total = current["total_power"].as_u64().unwrap_or(0);
    let quorum = u128::from(signed) * 3 > u128::from(total) * 2;
    println!(
        "  signed power {signed} of {total}: {}",
        if quorum {
            "a quorum, ready to submit"
        } else {
            "more than two thirds is needed"
        }
    );
    Ok(())
}
