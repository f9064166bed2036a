//! The data directory: its layout, the dev-chain initialisation with fresh keys, the
//! process lock and the RPC cookie. See `spec/storage.md`, "Data directory".

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use secp256k1::{Keypair, SecretKey, XOnlyPublicKey};
use settle_chain::{ChainSpec, IssuerRegistry};

/// The node's configuration file.
pub const CONFIG_FILE: &str = "settled.toml";
/// The chain spec the node runs.
pub const CHAIN_SPEC_FILE: &str = "chainspec.toml";
/// The RocksDB chainstate directory.
pub const CHAINSTATE_DIR: &str = "chainstate";
/// Key files (mode 0600) in their directory (mode 0700).
pub const KEYS_DIR: &str = "keys";
/// The dev chain's block-producing validator key.
pub const VALIDATOR_KEY_FILE: &str = "validator.key";
/// The libp2p identity of a node that holds no validator key.
pub const NODE_KEY_FILE: &str = "node.key";
/// The dev chain's `cash` issuer (the "central bank").
pub const ISSUER_CASH_KEY_FILE: &str = "issuer-cash.key";
/// The dev chain's `security` (and `lending_position`) issuer (the "CSD").
pub const ISSUER_SECURITY_KEY_FILE: &str = "issuer-security.key";
/// Held locked (flock) while a process uses the data directory.
pub const LOCK_FILE: &str = ".lock";
/// Largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Why the data directory could not be used. Messages name the path.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the data directory {} is in use by another settled process (lock held on {}); \
         stop that process or pick another --datadir",
        dir.display(),
        lock.display()
    )]
    Locked { dir: PathBuf, lock: PathBuf },
    #[error("{} is already initialised ({} exists); remove it or pick another --datadir", dir.display(), existing.display())]
    AlreadyInitialised { dir: PathBuf, existing: PathBuf },
    #[error("{} is not initialised: run `settled init --dev --datadir {}` first (or `settled --dev`)", dir.display(), dir.display())]
    NotInitialised { dir: PathBuf },
    #[error("key file {}: {detail}", path.display())]
    BadKey { path: PathBuf, detail: String },
    #[error("key file {} has mode {mode:o}: it must be readable by its owner only (chmod 600)", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("chain spec {}: {detail}", path.display())]
    Spec { path: PathBuf, detail: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    pub fn chain_spec(&self) -> PathBuf {
        self.root.join(CHAIN_SPEC_FILE)
    }
    pub fn chainstate(&self) -> PathBuf {
        self.root.join(CHAINSTATE_DIR)
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join(KEYS_DIR)
    }
    pub fn validator_key(&self) -> PathBuf {
        self.keys().join(VALIDATOR_KEY_FILE)
    }
    pub fn node_key(&self) -> PathBuf {
        self.keys().join(NODE_KEY_FILE)
    }
    pub fn issuer_cash_key(&self) -> PathBuf {
        self.keys().join(ISSUER_CASH_KEY_FILE)
    }
    pub fn issuer_security_key(&self) -> PathBuf {
        self.keys().join(ISSUER_SECURITY_KEY_FILE)
    }
    pub fn cookie(&self) -> PathBuf {
        self.root.join(settle_rpc::COOKIE_FILE_NAME)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Whether `init` has run here (the chain spec exists).
    pub fn is_initialised(&self) -> bool {
        self.chain_spec().exists()
    }

    /// Takes the data directory's exclusive lock for the life of the returned guard.
    pub fn lock(&self) -> Result<DirLock, DataDirError> {
        fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        let path = self.lock_file();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs4::TryLockError::WouldBlock) => Err(DataDirError::Locked {
                dir: self.root.clone(),
                lock: path,
            }),
            Err(fs4::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Reads and checks the chain spec.
    pub fn read_chain_spec(&self) -> Result<(ChainSpec, String), DataDirError> {
        let path = self.chain_spec();
        if !path.exists() {
            return Err(DataDirError::NotInitialised {
                dir: self.root.clone(),
            });
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let spec = ChainSpec::from_toml_str(&text).map_err(|e| DataDirError::Spec {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        Ok((spec, text))
    }
}

/// The held data-directory lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Writes `contents` to `path` with mode 0600, failing if it exists.
fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), DataDirError> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(contents).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// Writes `contents` to `path` through a temporary file and a rename, so readers never
/// see half a file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), DataDirError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// A key file holds the 32-byte secret key as 64 hex characters and a newline.
pub fn read_key(path: &Path) -> Result<Keypair, DataDirError> {
    use std::io::Read as _;
    let file = File::open(path).map_err(io_err(path))?;
    let mode = file.metadata().map_err(io_err(path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DataDirError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(io_err(path))?;
    let bad = |detail: &str| DataDirError::BadKey {
        path: path.to_path_buf(),
        detail: detail.into(),
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| bad("expected 64 hex characters (a secp256k1 secret key)"))?;
    let secret =
        SecretKey::from_byte_array(bytes).map_err(|_| bad("not a valid secp256k1 secret key"))?;
    Ok(Keypair::from_secret_key(secp256k1::SECP256K1, &secret))
}

fn write_key(path: &Path, keypair: &Keypair) -> Result<(), DataDirError> {
    let text = format!("{}\n", hex::encode(keypair.secret_bytes()));
    write_secret_file(path, text.as_bytes())
}

/// The node key of a node without a validator key (`keys/node.key`), created with a
/// fresh secret on first use.
pub fn node_key(dir: &DataDir) -> Result<Keypair, DataDirError> {
    let path = dir.node_key();
    if !path.exists() {
        let keys = dir.keys();
        fs::create_dir_all(&keys).map_err(io_err(&keys))?;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).map_err(io_err(&keys))?;
        let secret = SecretKey::new(&mut rand::rng());
        write_key(
            &path,
            &Keypair::from_secret_key(secp256k1::SECP256K1, &secret),
        )?;
    }
    read_key(&path)
}

fn fresh_keypair() -> Keypair {
    Keypair::from_secret_key(secp256k1::SECP256K1, &SecretKey::new(&mut rand::rng()))
}

fn create_keys_dir(path: &Path) -> Result<(), DataDirError> {
    fs::create_dir_all(path).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_err(path))
}

/// Most nodes `settled testnet` writes.
pub const MAX_TESTNET_NODES: usize = 64;

/// One node of a local testnet.
#[derive(Debug, Clone)]
pub struct TestnetNode {
    pub name: String,
    pub dir: PathBuf,
    pub validator: bool,
    pub key: XOnlyPublicKey,
    pub rpc_port: u16,
    pub p2p_port: u16,
    /// `/ip4/127.0.0.1/tcp/<p2p port>/p2p/<peer id>`.
    pub multiaddr: String,
}

/// What `settled testnet` wrote.
#[derive(Debug)]
pub struct Testnet {
    pub spec: ChainSpec,
    pub nodes: Vec<TestnetNode>,
    /// Where the issuer keys are (`<dir>/keys`).
    pub keys_dir: PathBuf,
}

/// `settled testnet`: a chain spec with `validators` validators of power 1, and for
/// every node (validators first, then `full_nodes` followers) a data directory
/// `<dir>/node<i>` with the chain spec, its key and a `settled.toml` on loopback
/// ports `base_port + 2i` (RPC) and `base_port + 2i + 1` (p2p) that bootstraps from
/// every other node. The chain spec permits the full nodes' keys. The cash and security issuer
/// keys go to `<dir>/keys`. `extra_config` is appended to every `settled.toml`.
pub fn init_testnet(
    dir: &Path,
    validators: usize,
    full_nodes: usize,
    base_port: u16,
    genesis_time_ms: u64,
    extra_config: &str,
) -> Result<Testnet, DataDirError> {
    let bad = |detail: String| DataDirError::Spec {
        path: dir.to_path_buf(),
        detail,
    };
    let total = validators + full_nodes;
    if validators == 0 || total > MAX_TESTNET_NODES {
        return Err(bad(format!(
            "a testnet needs 1 to {MAX_TESTNET_NODES} nodes with at least one validator"
        )));
    }
    if usize::from(base_port) + 2 * total > usize::from(u16::MAX) || base_port < 1024 {
        return Err(bad(format!(
            "ports {base_port}..{} do not fit from 1024 to 65535",
            usize::from(base_port) + 2 * total
        )));
    }
    if dir.exists() && fs::read_dir(dir).map_err(io_err(dir))?.next().is_some() {
        return Err(DataDirError::AlreadyInitialised {
            dir: dir.to_path_buf(),
            existing: dir.to_path_buf(),
        });
    }
    let keys_dir = dir.join(KEYS_DIR);
    create_keys_dir(&keys_dir)?;
    let (cash, security) = (fresh_keypair(), fresh_keypair());
    write_key(&keys_dir.join(ISSUER_CASH_KEY_FILE), &cash)?;
    write_key(&keys_dir.join(ISSUER_SECURITY_KEY_FILE), &security)?;

    let mut nodes = Vec::with_capacity(total);
    let mut node_keys = Vec::with_capacity(total);
    for i in 0..total {
        let key = fresh_keypair();
        let xonly = key.x_only_public_key().0;
        // Bounded above: base_port + 2 * total fits in u16.
        let offset = u16::try_from(2 * i).map_err(|_| bad("too many nodes".into()))?;
        let rpc_port = base_port + offset;
        let p2p_port = rpc_port + 1;
        let peer_id = settle_consensus::identity::peer_id_of(&xonly.serialize())
            .map_err(|e| bad(e.to_string()))?;
        nodes.push(TestnetNode {
            name: format!("node{i}"),
            dir: dir.join(format!("node{i}")),
            validator: i < validators,
            key: xonly,
            rpc_port,
            p2p_port,
            multiaddr: format!("/ip4/127.0.0.1/tcp/{p2p_port}/p2p/{peer_id}"),
        });
        node_keys.push(key);
    }
    let members = nodes
        .iter()
        .filter(|n| n.validator)
        .map(|n| settle_chain::Validator {
            name: format!("validator-{}", &n.name[4..]),
            key: n.key.serialize(),
            power: 1,
        })
        .collect();
    let mut spec = dev_spec(
        &nodes[0].key,
        &cash.x_only_public_key().0,
        &security.x_only_public_key().0,
        genesis_time_ms,
    );
    spec.name = "settle-testnet".into();
    spec.network = settle_chain::Network::Test;
    spec.validators = settle_chain::ValidatorSet::new(members).map_err(|e| bad(e.to_string()))?;
    spec.permitted = nodes
        .iter()
        .filter(|n| !n.validator)
        .map(|n| settle_chain::PermittedNode {
            name: format!("full-node-{}", &n.name[4..]),
            key: n.key.serialize(),
        })
        .collect();
    let spec_text = spec.to_toml_string().map_err(|e| bad(e.to_string()))?;
    for (node, key) in nodes.iter().zip(&node_keys) {
        let data = DataDir::new(&node.dir);
        create_keys_dir(&data.keys())?;
        let key_path = if node.validator {
            data.validator_key()
        } else {
            data.node_key()
        };
        write_key(&key_path, key)?;
        let bootstrap: Vec<String> = nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("\"{}\"", other.multiaddr))
            .collect();
        let config = format!(
            "# {name} of a local testnet written by `settled testnet`.\n\
             rpc_port = {rpc}\n\
             p2p_port = {p2p}\n\n\
             [p2p]\n\
             bootstrap = [{bootstrap}]\n\
             {extra}\n",
            name = node.name,
            rpc = node.rpc_port,
            p2p = node.p2p_port,
            bootstrap = bootstrap.join(", "),
            extra = extra_config,
        );
        write_atomic(&data.config(), config.as_bytes(), 0o644)?;
        write_atomic(&data.chain_spec(), spec_text.as_bytes(), 0o644)?;
    }
    Ok(Testnet {
        spec,
        nodes,
        keys_dir,
    })
}

/// What `init --dev` created.
#[derive(Debug)]
pub struct DevInit {
    pub spec: ChainSpec,
    pub validator: XOnlyPublicKey,
    pub issuer_cash: XOnlyPublicKey,
    pub issuer_security: XOnlyPublicKey,
}

/// The dev chain spec for these keys: one validator; the cash issuer authorised for
/// `cash`, the security issuer for `security` and `lending_position` (the CSD records
/// loans).
pub fn dev_spec(
    validator: &XOnlyPublicKey,
    issuer_cash: &XOnlyPublicKey,
    issuer_security: &XOnlyPublicKey,
    genesis_time_ms: u64,
) -> ChainSpec {
    let mut spec = ChainSpec::dev(validator, issuer_cash, genesis_time_ms);
    spec.issuers = IssuerRegistry {
        cash: vec![issuer_cash.serialize()],
        security: vec![issuer_security.serialize()],
        lending_position: vec![issuer_security.serialize()],
    };
    spec
}

/// `settled init --dev`: fresh validator and issuer keys (mode 0600) and a dev chain spec
/// naming them. Refuses a directory that already holds a chain spec.
pub fn init_dev(dir: &DataDir, genesis_time_ms: u64) -> Result<DevInit, DataDirError> {
    if dir.chain_spec().exists() {
        return Err(DataDirError::AlreadyInitialised {
            dir: dir.root.clone(),
            existing: dir.chain_spec(),
        });
    }
    let keys = dir.keys();
    fs::create_dir_all(&keys).map_err(io_err(&keys))?;
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).map_err(io_err(&keys))?;
    let mut rng = rand::rng();
    let mut fresh = || {
        let secret = SecretKey::new(&mut rng);
        Keypair::from_secret_key(secp256k1::SECP256K1, &secret)
    };
    let (validator, cash, security) = (fresh(), fresh(), fresh());
    for (path, key) in [
        (dir.validator_key(), &validator),
        (dir.issuer_cash_key(), &cash),
        (dir.issuer_security_key(), &security),
    ] {
        if path.exists() {
            return Err(DataDirError::AlreadyInitialised {
                dir: dir.root.clone(),
                existing: path,
            });
        }
        write_key(&path, key)?;
    }
    let spec = dev_spec(
        &validator.x_only_public_key().0,
        &cash.x_only_public_key().0,
        &security.x_only_public_key().0,
        genesis_time_ms,
    );
    let text = spec.to_toml_string().map_err(|e| DataDirError::Spec {
        path: dir.chain_spec(),
        detail: e.to_string(),
    })?;
    if !dir.config().exists() {
        write_atomic(
            &dir.config(),
            crate::config::DEFAULT_CONFIG_TOML.as_bytes(),
            0o644,
        )?;
    }
    // The spec goes last: its presence is what marks the directory initialised.
    write_atomic(&dir.chain_spec(), text.as_bytes(), 0o644)?;
    Ok(DevInit {
        spec,
        validator: validator.x_only_public_key().0,
        issuer_cash: cash.x_only_public_key().0,
        issuer_security: security.x_only_public_key().0,
    })
}

/// The RPC cookie: written at start-up, removed at shutdown.
#[derive(Debug)]
pub struct Cookie {
    path: PathBuf,
    pub password: String,
}

impl Cookie {
    /// Writes a fresh cookie `__cookie__:<random hex>` with mode 0600.
    pub fn create(dir: &DataDir) -> Result<Cookie, DataDirError> {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let password = hex::encode(bytes);
        let path = dir.cookie();
        write_atomic(
            &path,
            format!("{}:{password}", settle_rpc::COOKIE_USER).as_bytes(),
            0o600,
        )?;
        Ok(Cookie { path, password })
    }
}

impl Drop for Cookie {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_private_keys_and_a_spec_that_authorises_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("d"));
        let init = init_dev(&dir, 1_700_000_000_000).expect("init");
        for path in [
            dir.validator_key(),
            dir.issuer_cash_key(),
            dir.issuer_security_key(),
        ] {
            let mode = fs::metadata(&path).expect("key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let cash = read_key(&dir.issuer_cash_key()).expect("cash key");
        assert_eq!(cash.x_only_public_key().0, init.issuer_cash);
        let (spec, _) = dir.read_chain_spec().expect("spec");
        assert_eq!(spec.issuers.cash, vec![init.issuer_cash.serialize()]);
        assert_eq!(
            spec.issuers.security,
            vec![init.issuer_security.serialize()]
        );
        assert!(
            !spec
                .issuers
                .cash
                .contains(&init.issuer_security.serialize())
        );
        assert!(matches!(
            init_dev(&dir, 1),
            Err(DataDirError::AlreadyInitialised { .. })
        ));
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path());
        init_dev(&dir, 1_700_000_000_000).expect("init");
        let path = dir.validator_key();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            read_key(&path),
            Err(DataDirError::KeyPermissions { .. })
        ));
    }

    #[test]
    fn a_second_lock_on_the_same_directory_fails_clearly() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path());
        let _held = dir.lock().expect("first lock");
        let err = dir.lock().expect_err("second lock");
        assert!(
            err.to_string()
                .contains("in use by another settled process"),
            "{err}"
        );
    }
}
