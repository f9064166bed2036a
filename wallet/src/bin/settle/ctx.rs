//! What every command needs: where the wallet is, the passphrase, the node, and the
//! asset registry for formatting amounts.

use std::collections::BTreeMap;
use std::fs;
use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use settle_assets::{Amount, AssetId, ChainId, Txid};
use settle_rpc::{AssetInfo, Auth, BlockchainInfo, ClientError, RpcClient, codes};
use settle_script::{Address, Network};
use settle_wallet::keys::WalletKeys;
use settle_wallet::state::{self, WalletState};
use settle_wallet::store::{FileKey, KdfParams};
use zeroize::Zeroizing;

use crate::cli::Global;
use crate::error::{CliError, Result, kind};

/// The wallet file inside the wallet's directory.
pub const WALLET_FILE: &str = "wallet.settle";
/// Held locked while a `settle` process uses the wallet directory.
pub const LOCK_FILE: &str = ".lock";
/// Environment variable with the wallet passphrase.
pub const PASSPHRASE_ENV: &str = "SETTLE_PASSPHRASE";
/// Tests only: new wallet files get cheap KDF parameters (refused on main networks).
pub const FAST_KDF_ENV: &str = "SETTLE_INSECURE_FAST_KDF";
/// Longest passphrase accepted.
pub const MAX_PASSPHRASE_BYTES: usize = 1_024;
/// Longest wait for another `settle` process to release the wallet.
pub const LOCK_WAIT_MS: u64 = 10_000;
/// Longest wait for a transaction to confirm with `--wait`.
pub const CONFIRM_WAIT_MS: u64 = 60_000;
/// Interval between polls while waiting.
const POLL_MS: u64 = 25;
/// Time limit of one RPC call.
pub const RPC_TIMEOUT_MS: u64 = 30_000;

pub struct Ctx {
    pub global: Global,
    client: RpcClient,
}

/// An open wallet: its state, keys and the lock on its directory. Saving reuses the key
/// the file was opened with (no second passphrase stretch).
pub struct Open {
    pub path: PathBuf,
    pub state: WalletState,
    pub keys: WalletKeys,
    file_key: FileKey,
    _lock: fs::File,
}

impl Open {
    pub fn save(&self) -> Result<()> {
        state::save_wallet_file_keyed(&self.path, &self.state, &self.file_key)?;
        Ok(())
    }

    pub fn kdf(&self) -> KdfParams {
        self.file_key.kdf()
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

impl Ctx {
    pub fn new(global: Global) -> Ctx {
        let auth = match (&global.rpc_cookie, &global.node_datadir) {
            (Some(cookie), _) => Auth::CookieFile(cookie.clone()),
            (None, Some(dir)) => Auth::cookie_in(dir),
            (None, None) => Auth::cookie_in(home().join(".settle").join("dev")),
        };
        let client = RpcClient::with_timeout(global.rpc_url.clone(), auth, RPC_TIMEOUT_MS);
        Ctx { global, client }
    }

    pub fn dir(&self) -> PathBuf {
        self.global
            .datadir
            .clone()
            .unwrap_or_else(|| home().join(".settle").join("wallet"))
    }

    pub fn wallet_path(&self) -> PathBuf {
        self.dir().join(WALLET_FILE)
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// The node's chain, checked against `expected` when given.
    pub fn node_info(&self, expected: Option<(ChainId, Network)>) -> Result<BlockchainInfo> {
        let info = self.client.get_blockchain_info()?;
        if let Some((chain_id, network)) = expected
            && info.chain_id != chain_id
        {
            return Err(CliError::new(
                kind::WRONG_CHAIN,
                format!(
                    "the node at {} is on another chain: {} ({} network, chain id {}), but this \
                     wallet belongs to the {network} chain {chain_id}; point --rpc-url at a node \
                     of the wallet's chain",
                    self.client.url(),
                    info.chain,
                    info.network,
                    info.chain_id
                ),
            ));
        }
        Ok(info)
    }

    /// Takes the directory lock, waiting a little for another `settle` to finish.
    pub fn lock(&self) -> Result<fs::File> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(|e| {
            CliError::new(kind::IO, format!("cannot create {}: {e}", dir.display()))
        })?;
        let path = dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CliError::new(kind::IO, format!("cannot open {}: {e}", path.display())))?;
        let deadline = Instant::now() + Duration::from_millis(LOCK_WAIT_MS);
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => return Ok(file),
                Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(POLL_MS));
                }
                Err(fs4::TryLockError::WouldBlock) => {
                    return Err(CliError::new(
                        kind::WALLET_BUSY,
                        format!(
                            "the wallet in {} is in use by another settle process",
                            dir.display()
                        ),
                    ));
                }
                Err(fs4::TryLockError::Error(e)) => {
                    return Err(CliError::new(
                        kind::IO,
                        format!("cannot lock {}: {e}", path.display()),
                    ));
                }
            }
        }
    }

    /// Opens the wallet: lock, passphrase, decrypt.
    pub fn open(&self) -> Result<Open> {
        let lock = self.lock()?;
        let path = self.wallet_path();
        if !path.exists() {
            return Err(CliError::new(
                kind::NO_WALLET,
                format!(
                    "no wallet at {}: create one with `settle wallet create` or restore one \
                     with `settle wallet restore` (choose the directory with --datadir)",
                    path.display()
                ),
            ));
        }
        // Under the lock no other settle writes: a temporary file left now is one an
        // interrupted process (killed mid-save) left behind.
        match settle_wallet::store::remove_stale_temporary_files(&path) {
            Ok(removed) => {
                for p in removed {
                    eprintln!(
                        "settle: removed {}, left by an interrupted save",
                        p.display()
                    );
                }
            }
            Err(e) => eprintln!("settle: warning: {e}"),
        }
        let passphrase = passphrase(false)?;
        let (state, file_key) = state::open_wallet_file_keyed(&path, passphrase.as_bytes())?;
        let keys = state.keys()?;
        Ok(Open {
            path,
            state,
            keys,
            file_key,
            _lock: lock,
        })
    }

    /// Creates a new wallet file (under the lock) and returns it open.
    pub fn create(&self, state: WalletState) -> Result<Open> {
        let lock = self.lock()?;
        let path = self.wallet_path();
        if path.exists() {
            return Err(CliError::new(
                kind::WALLET_EXISTS,
                format!(
                    "a wallet already exists at {}; choose another --datadir",
                    path.display()
                ),
            ));
        }
        let kdf = new_file_kdf(state.network)?;
        let passphrase = passphrase(true)?;
        let file_key = FileKey::new(passphrase.as_bytes(), kdf)?;
        state::create_wallet_file_keyed(&path, &state, &file_key)?;
        let keys = state.keys()?;
        Ok(Open {
            path,
            state,
            keys,
            file_key,
            _lock: lock,
        })
    }

    /// Waits until `txid` is in a block; returns its height.
    pub fn wait_confirmed(&self, txid: &Txid) -> Result<u64> {
        let deadline = Instant::now() + Duration::from_millis(CONFIRM_WAIT_MS);
        loop {
            match self.client.get_raw_transaction(txid) {
                Ok(info) => {
                    if let Some(h) = info.height {
                        return Ok(h);
                    }
                }
                Err(ClientError::Rpc(e)) if e.code == codes::NOT_FOUND => {
                    return Err(CliError::new(
                        kind::NODE,
                        format!("transaction {txid} left the mempool without being confirmed"),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(CliError::new(
                    kind::NODE,
                    format!("transaction {txid} was not confirmed within {CONFIRM_WAIT_MS} ms"),
                ));
            }
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
    }
}

/// KDF parameters for a new wallet file: the defaults, or with `SETTLE_INSECURE_FAST_KDF=1`
/// the cheap test parameters (refused on main networks, and announced on stderr).
pub fn new_file_kdf(network: Network) -> Result<KdfParams> {
    let fast = std::env::var(FAST_KDF_ENV).is_ok_and(|v| v == "1");
    if !fast {
        return Ok(KdfParams::DEFAULT);
    }
    if network == Network::Main {
        return Err(CliError::new(
            kind::USAGE,
            format!("{FAST_KDF_ENV} is for tests and is refused on the main network"),
        ));
    }
    eprintln!(
        "settle: warning: {FAST_KDF_ENV}=1: this wallet file uses INSECURE test parameters \
         (its passphrase is cheap to guess); never use it for real funds"
    );
    Ok(KdfParams::INSECURE_FOR_TESTS)
}

/// The passphrase: `SETTLE_PASSPHRASE`, else asked on the terminal (twice when `confirm`).
pub fn passphrase(confirm: bool) -> Result<Zeroizing<String>> {
    let check = |p: Zeroizing<String>| -> Result<Zeroizing<String>> {
        if p.is_empty() {
            return Err(CliError::new(kind::PASSPHRASE, "the passphrase is empty"));
        }
        if p.len() > MAX_PASSPHRASE_BYTES {
            return Err(CliError::new(
                kind::PASSPHRASE,
                format!("the passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes"),
            ));
        }
        Ok(p)
    };
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return check(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            kind::PASSPHRASE,
            format!("no passphrase: set {PASSPHRASE_ENV} or run settle in a terminal"),
        ));
    }
    let read = |prompt: &str| -> Result<Zeroizing<String>> {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| {
                CliError::new(kind::PASSPHRASE, format!("cannot read the passphrase: {e}"))
            })
    };
    let first = check(read("Wallet passphrase: ")?)?;
    if confirm {
        let again = read("Repeat the passphrase: ")?;
        if *again != *first {
            return Err(CliError::new(kind::PASSPHRASE, "the passphrases differ"));
        }
    }
    Ok(first)
}

/// Reads a mnemonic: from the terminal without echo, or the first line of standard input.
pub fn read_mnemonic() -> Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Mnemonic (the words, separated by spaces): ")
            .map(Zeroizing::new)
            .map_err(|e| CliError::new(kind::MNEMONIC, format!("cannot read the mnemonic: {e}")));
    }
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .take(4_096)
        .read_to_string(&mut text)
        .map_err(|e| CliError::new(kind::MNEMONIC, format!("cannot read the mnemonic: {e}")))?;
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(Zeroizing::new(line.trim().to_owned()))
}

/// Parses an address of the wallet's network, with a message that says what is wrong.
pub fn parse_address(text: &str, network: Network) -> Result<Address> {
    Address::parse_for(text.trim(), network).map_err(|e| {
        let shown: String = text.chars().take(100).collect();
        CliError::new(
            kind::BAD_ADDRESS,
            format!("invalid address {shown:?} for the {network} network: {e}"),
        )
    })
}

/// The chain's assets, for names and precision.
pub struct Assets {
    by_id: BTreeMap<AssetId, AssetInfo>,
}

impl Assets {
    pub fn load(client: &RpcClient) -> Result<Assets> {
        let by_id = client
            .list_assets()?
            .into_iter()
            .map(|a| (a.asset, a))
            .collect();
        Ok(Assets { by_id })
    }

    pub fn get(&self, id: &AssetId) -> Option<&AssetInfo> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &AssetInfo> {
        self.by_id.values()
    }

    /// An asset by ticker (case-insensitive) or 64-hex id.
    pub fn resolve(&self, name: &str) -> Result<&AssetInfo> {
        let name = name.trim();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let id: AssetId = name.to_ascii_lowercase().parse().map_err(|_| {
                CliError::new(kind::UNKNOWN_ASSET, format!("invalid asset id {name}"))
            })?;
            return self.by_id.get(&id).ok_or_else(|| {
                CliError::new(
                    kind::UNKNOWN_ASSET,
                    format!("unknown asset {id}: it is not issued on this chain"),
                )
            });
        }
        let matches: Vec<&AssetInfo> = self
            .by_id
            .values()
            .filter(|a| a.ticker.eq_ignore_ascii_case(name))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => {
                let shown: String = name.chars().take(40).collect();
                let mut known: Vec<&str> = self.by_id.values().map(|a| a.ticker.as_str()).collect();
                known.sort_unstable();
                known.dedup();
                Err(CliError::new(
                    kind::UNKNOWN_ASSET,
                    format!(
                        "unknown asset {shown:?}: no asset on this chain has that ticker{}",
                        if known.is_empty() {
                            " (none is issued yet)".to_owned()
                        } else {
                            format!(" (known: {})", known.join(", "))
                        }
                    ),
                ))
            }
            many => Err(CliError::new(
                kind::UNKNOWN_ASSET,
                format!(
                    "ticker {name:?} is ambiguous: {}; give the asset id",
                    many.iter()
                        .map(|a| format!("{} ({})", a.asset, a.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    pub fn precision(&self, id: &AssetId) -> u8 {
        self.by_id.get(id).map_or(0, |a| a.precision)
    }

    pub fn ticker(&self, id: &AssetId) -> String {
        self.by_id.get(id).map_or_else(
            || format!("{}…", &id.to_string()[..12]),
            |a| a.ticker.clone(),
        )
    }

    /// `1,000.00 EUR`.
    pub fn fmt(&self, id: &AssetId, units: u128) -> String {
        format!("{} {}", self.fmt_number(id, units), self.ticker(id))
    }

    /// `1,000.00` (no ticker); amounts above `Amount::MAX` in units.
    pub fn fmt_number(&self, id: &AssetId, units: u128) -> String {
        match u64::try_from(units).ok().and_then(Amount::from_units) {
            Some(a) => a.to_decimal_string(self.precision(id)),
            None => format!("{units} units"),
        }
    }

    /// Parses an amount of `asset` written in its precision.
    pub fn parse_amount(&self, asset: &AssetInfo, text: &str) -> Result<Amount> {
        // An amount is exactly what the user typed: surrounding spaces often mean a
        // pasted value that lost or gained a part, so they are refused, not trimmed.
        if text.trim() != text || text.is_empty() {
            let shown: String = text.chars().take(40).collect();
            return Err(CliError::new(
                kind::BAD_AMOUNT,
                format!(
                    "invalid amount {shown:?}: an amount must not be empty or start or end with spaces"
                ),
            ));
        }
        let a = Amount::parse_decimal(text, asset.precision).map_err(|e| {
            CliError::new(
                kind::BAD_AMOUNT,
                format!(
                    "{e} (amounts of {} have {} decimal places)",
                    asset.ticker, asset.precision
                ),
            )
        })?;
        if a == Amount::ZERO {
            return Err(CliError::new(
                kind::BAD_AMOUNT,
                "the amount must be more than zero",
            ));
        }
        Ok(a)
    }

    /// "AMOUNT ASSET" as in `--give "1000.00 EUR"`.
    pub fn parse_leg(&self, text: &str) -> Result<(&AssetInfo, Amount)> {
        let mut parts = text.split_whitespace();
        let (Some(amount), Some(asset), None) = (parts.next(), parts.next(), parts.next()) else {
            let shown: String = text.chars().take(80).collect();
            return Err(CliError::new(
                kind::BAD_AMOUNT,
                format!("expected \"AMOUNT ASSET\" such as \"1000.00 EUR\", got {shown:?}"),
            ));
        };
        let info = self.resolve(asset)?;
        Ok((info, self.parse_amount(info, amount)?))
    }

    /// Insufficient funds, in the asset's precision.
    pub fn insufficient(&self, asset: &AssetId, have: u128, need: u128, note: &str) -> CliError {
        CliError::new(
            kind::INSUFFICIENT_FUNDS,
            format!(
                "insufficient funds: you have {} and need {}{note}",
                self.fmt(asset, have),
                self.fmt(asset, need)
            ),
        )
    }

    /// Maps a build error, formatting insufficient funds with the asset's precision.
    pub fn build_error(&self, e: settle_wallet::coins::BuildError, note: &str) -> CliError {
        match e {
            settle_wallet::coins::BuildError::InsufficientFunds { asset, have, need } => {
                self.insufficient(&asset, have, need, note)
            }
            other => other.into(),
        }
    }
}

/// Reads a PST file (base64 text, or the binary form), or standard input for `-`.
pub fn read_pst(path: &Path) -> Result<settle_wallet::pst::Pst> {
    use settle_wallet::pst::Pst;
    use settle_wallet::pst::encode::{MAGIC, MAX_PST_BASE64_CHARS};
    let limit = MAX_PST_BASE64_CHARS as u64 + 1;
    let mut bytes = Vec::new();
    let res = if path.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    res.map_err(|e| CliError::new(kind::IO, format!("cannot read {}: {e}", path.display())))?;
    if bytes.starts_with(&MAGIC) {
        return Ok(Pst::deserialize(&bytes)?);
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::new(
            kind::BAD_PST,
            format!("{} is neither a pst nor base64 text", path.display()),
        )
    })?;
    Ok(Pst::from_base64(&text)?)
}

/// Writes a PST as base64 text (mode 0600 is not needed: a PST holds no secret).
pub fn write_pst(path: &Path, pst: &settle_wallet::pst::Pst) -> Result<()> {
    let mut text = pst.to_base64();
    text.push('\n');
    let tmp = path.with_extension("tmp-settle");
    fs::write(&tmp, text.as_bytes())
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| CliError::new(kind::IO, format!("cannot write {}: {e}", path.display())))
}

/// Refuses a PST made for another chain than the wallet's.
pub fn check_pst_chain(pst: &settle_wallet::pst::Pst, state: &WalletState) -> Result<()> {
    if pst.chain_id != state.chain_id || pst.network != state.network {
        return Err(CliError::new(
            kind::FOREIGN_PST,
            format!(
                "this pst is for another chain ({} network, chain id {}); this wallet belongs \
                 to the {} chain {}",
                pst.network, pst.chain_id, state.network, state.chain_id
            ),
        ));
    }
    Ok(())
}
