//! The wallet file: a serialized wallet state, encrypted at rest.
//!
//! The passphrase is stretched with argon2id (memory-hard; its parameters are stored in
//! the header so they can be raised later without breaking old files) into a 256-bit
//! XChaCha20-Poly1305 key and a separate 256-bit check key. The header stores a hash of
//! the check key, so a wrong passphrase is told apart from a damaged file: a wrong
//! passphrase fails the check, a damaged file passes it and fails authentication. The
//! whole header is the cipher's associated data, so it cannot be changed unnoticed.
//!
//! Layout (all integers little-endian; `spec/wallet.md` is normative):
//!
//! | offset | size | field                                              |
//! |--------|------|----------------------------------------------------|
//! | 0      | 7    | magic `"stlwlt\xff"`                               |
//! | 7      | 1    | format version (1)                                 |
//! | 8      | 1    | KDF id (1 = argon2id, version 0x13)                |
//! | 9      | 4    | argon2 memory cost in KiB                          |
//! | 13     | 4    | argon2 time cost (passes)                          |
//! | 17     | 4    | argon2 parallelism                                 |
//! | 21     | 16   | salt                                               |
//! | 37     | 1    | cipher id (1 = XChaCha20-Poly1305)                 |
//! | 38     | 24   | nonce                                              |
//! | 62     | 32   | passphrase check: tagged hash of the check key     |
//! | 94     | 4    | ciphertext length n (plaintext + 16-byte tag)      |
//! | 98     | n    | ciphertext                                         |
//!
//! Files are written atomically: a temporary file beside the target, created with mode
//! 0600, written, synced, renamed over the target, and the directory synced.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

/// The first bytes of every wallet file.
pub const MAGIC: [u8; 7] = *b"stlwlt\xff";
/// The only file format version defined so far.
pub const FORMAT_VERSION: u8 = 1;
/// KDF id: argon2id, version 0x13.
pub const KDF_ARGON2ID: u8 = 1;
/// Cipher id: XChaCha20-Poly1305.
pub const CIPHER_XCHACHA20POLY1305: u8 = 1;
/// Size of the fixed header before the ciphertext.
pub const HEADER_BYTES: usize = 98;
/// Size of the authentication tag at the end of the ciphertext.
pub const TAG_BYTES: usize = 16;
/// Largest wallet file accepted (a state with many cached coins stays far below it).
pub const MAX_WALLET_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Largest argon2 memory cost accepted from a file: 256 MiB, twice what the wallet
/// writes ([`KdfParams::DEFAULT`]). The header is read before the passphrase is checked,
/// so whoever can write the file chooses the cost of opening it: a planted header
/// must not be able to make `settle` allocate gigabytes or run for minutes.
pub const MAX_KDF_MEMORY_KIB: u32 = 256 * 1024;
/// Smallest argon2 memory cost accepted (argon2's own minimum is 8 KiB per lane).
pub const MIN_KDF_MEMORY_KIB: u32 = 8;
/// Most argon2 passes accepted from a file: twice the default's.
pub const MAX_KDF_PASSES: u32 = 4;
/// Most argon2 lanes accepted from a file.
pub const MAX_KDF_LANES: u32 = 4;
/// Name prefix of the temporary files an atomic write of `<name>` makes beside it:
/// `.<name>.tmp-<16 hex>`.
const TMP_INFIX: &str = ".tmp-";

const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 24;
const CHECK_TAG: &str = "Settle/WalletPassphraseCheck";

/// Why a wallet file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("wallet file is corrupt: {0}")]
    Corrupt(String),
    #[error("not a settle wallet file (bad magic bytes)")]
    NotAWallet,
    #[error("unsupported wallet file version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    #[error("unsupported {what} id {id} in the wallet file header")]
    UnsupportedAlgorithm { what: &'static str, id: u8 },
    #[error("key derivation parameters out of range: {0}")]
    KdfParams(String),
    #[error("wallet file is {size} bytes, more than the limit of {max}")]
    TooLarge { size: u64, max: usize },
    #[error("a wallet file already exists at {}", .0.display())]
    AlreadyExists(PathBuf),
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("wallet state could not be encoded: {0}")]
    Encode(String),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// argon2id cost parameters, stored in each file's header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl KdfParams {
    /// The parameters new wallet files get: 128 MiB and 2 passes, which takes about
    /// 0.3-0.5 s on this project's 2-core reference machine in a release build (see the
    /// `kdf` benchmark). Memory, not time, is what makes guessing expensive.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 128 * 1024,
        passes: 2,
        lanes: 1,
    };

    /// Cheap parameters for tests only: a file made with them is easy to brute-force.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: MIN_KDF_MEMORY_KIB,
        passes: 1,
        lanes: 1,
    };

    /// Checks the parameters against this module's limits.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !(MIN_KDF_MEMORY_KIB..=MAX_KDF_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(StoreError::KdfParams(format!(
                "memory {} KiB is outside {MIN_KDF_MEMORY_KIB}..={MAX_KDF_MEMORY_KIB}",
                self.memory_kib
            )));
        }
        if !(1..=MAX_KDF_PASSES).contains(&self.passes) {
            return Err(StoreError::KdfParams(format!(
                "passes {} is outside 1..={MAX_KDF_PASSES}",
                self.passes
            )));
        }
        if !(1..=MAX_KDF_LANES).contains(&self.lanes) {
            return Err(StoreError::KdfParams(format!(
                "lanes {} is outside 1..={MAX_KDF_LANES}",
                self.lanes
            )));
        }
        if self.memory_kib < 8 * self.lanes {
            return Err(StoreError::KdfParams(format!(
                "memory {} KiB is below 8 KiB per lane for {} lanes",
                self.memory_kib, self.lanes
            )));
        }
        Ok(())
    }
}

/// The parsed fixed header of a wallet file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Header {
    pub version: u8,
    pub kdf: KdfParams,
    pub salt: [u8; SALT_BYTES],
    pub nonce: [u8; NONCE_BYTES],
    pub check: [u8; 32],
    pub ciphertext_len: u32,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..7].copy_from_slice(&MAGIC);
        out[7] = self.version;
        out[8] = KDF_ARGON2ID;
        out[9..13].copy_from_slice(&self.kdf.memory_kib.to_le_bytes());
        out[13..17].copy_from_slice(&self.kdf.passes.to_le_bytes());
        out[17..21].copy_from_slice(&self.kdf.lanes.to_le_bytes());
        out[21..37].copy_from_slice(&self.salt);
        out[37] = CIPHER_XCHACHA20POLY1305;
        out[38..62].copy_from_slice(&self.nonce);
        out[62..94].copy_from_slice(&self.check);
        out[94..98].copy_from_slice(&self.ciphertext_len.to_le_bytes());
        out
    }

    /// Parses and checks the header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Header, StoreError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(StoreError::NotAWallet);
        }
        if bytes.len() < HEADER_BYTES {
            return Err(StoreError::Corrupt(format!(
                "file is {} bytes, shorter than the {HEADER_BYTES}-byte header",
                bytes.len()
            )));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let version = bytes[7];
        if version != FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion(version));
        }
        if bytes[8] != KDF_ARGON2ID {
            return Err(StoreError::UnsupportedAlgorithm {
                what: "key derivation",
                id: bytes[8],
            });
        }
        if bytes[37] != CIPHER_XCHACHA20POLY1305 {
            return Err(StoreError::UnsupportedAlgorithm {
                what: "cipher",
                id: bytes[37],
            });
        }
        let kdf = KdfParams {
            memory_kib: u32_at(9),
            passes: u32_at(13),
            lanes: u32_at(17),
        };
        kdf.validate()?;
        let mut salt = [0u8; SALT_BYTES];
        salt.copy_from_slice(&bytes[21..37]);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&bytes[38..62]);
        let mut check = [0u8; 32];
        check.copy_from_slice(&bytes[62..94]);
        let ciphertext_len = u32_at(94);
        let expected = HEADER_BYTES as u64 + u64::from(ciphertext_len);
        if expected != bytes.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "header announces {ciphertext_len} bytes of ciphertext but {} follow",
                bytes.len() - HEADER_BYTES
            )));
        }
        if (ciphertext_len as usize) < TAG_BYTES {
            return Err(StoreError::Corrupt(format!(
                "ciphertext of {ciphertext_len} bytes is shorter than its {TAG_BYTES}-byte tag"
            )));
        }
        Ok(Header {
            version,
            kdf,
            salt,
            nonce,
            check,
            ciphertext_len,
        })
    }
}

/// The cipher key and the check key, stretched from the passphrase. Wiped on drop.
struct DerivedKeys(Zeroizing<[u8; 64]>);

impl DerivedKeys {
    fn derive(passphrase: &[u8], salt: &[u8], kdf: &KdfParams) -> Result<DerivedKeys, StoreError> {
        kdf.validate()?;
        let params = argon2::Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(64))
            .map_err(|e| StoreError::KdfParams(e.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 64]);
        argon
            .hash_password_into(passphrase, salt, &mut out[..])
            .map_err(|e| StoreError::KdfParams(e.to_string()))?;
        Ok(DerivedKeys(out))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(&self.0[..32]).expect("the key is 32 bytes")
    }

    fn check(&self) -> [u8; 32] {
        settle_assets::tagged_hash(CHECK_TAG, &self.0[32..])
    }
}

/// The key of an opened wallet file: the salt and KDF parameters from its header and the
/// keys stretched from the passphrase. Kept while a wallet is open so that saving it again
/// does not stretch the passphrase a second time (that is most of the cost of a command).
/// A secret: wiped on drop, never printed.
pub struct FileKey {
    kdf: KdfParams,
    salt: [u8; SALT_BYTES],
    keys: DerivedKeys,
}

impl FileKey {
    /// Stretches `passphrase` with a fresh random salt (for a new file).
    pub fn new(passphrase: &[u8], kdf: KdfParams) -> Result<FileKey, StoreError> {
        kdf.validate()?;
        let mut salt = [0u8; SALT_BYTES];
        rand::fill(&mut salt);
        let keys = DerivedKeys::derive(passphrase, &salt, &kdf)?;
        Ok(FileKey { kdf, salt, keys })
    }

    /// The KDF parameters the key was stretched with.
    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKey")
            .field("kdf", &self.kdf)
            .field("keys", &"[redacted]")
            .finish()
    }
}

/// Encrypts `plaintext` under `passphrase` with fresh salt and nonce.
pub fn seal(plaintext: &[u8], passphrase: &[u8], kdf: KdfParams) -> Result<Vec<u8>, StoreError> {
    seal_with_key(plaintext, &FileKey::new(passphrase, kdf)?)
}

/// Encrypts `plaintext` under an already stretched key, with a fresh nonce. The salt and
/// KDF parameters are the key's, so the file opens with the same passphrase.
pub fn seal_with_key(plaintext: &[u8], key: &FileKey) -> Result<Vec<u8>, StoreError> {
    let max_plain = MAX_WALLET_FILE_BYTES - HEADER_BYTES - TAG_BYTES;
    if plaintext.len() > max_plain {
        return Err(StoreError::TooLarge {
            size: plaintext.len() as u64,
            max: max_plain,
        });
    }
    let mut nonce = [0u8; NONCE_BYTES];
    rand::fill(&mut nonce);
    let header = Header {
        version: FORMAT_VERSION,
        kdf: key.kdf,
        salt: key.salt,
        nonce,
        check: key.keys.check(),
        ciphertext_len: u32::try_from(plaintext.len() + TAG_BYTES)
            .expect("bounded by MAX_WALLET_FILE_BYTES"),
    };
    let header_bytes = header.encode();
    let mut out = Vec::with_capacity(HEADER_BYTES + plaintext.len() + TAG_BYTES);
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(plaintext);
    let tag = key
        .keys
        .cipher()
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &header_bytes,
            &mut out[HEADER_BYTES..],
        )
        .map_err(|_| StoreError::Encode("encryption failed".into()))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts a wallet file's bytes. A wrong passphrase is [`StoreError::WrongPassphrase`];
/// a file damaged after the header is [`StoreError::Corrupt`].
pub fn unseal(bytes: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    unseal_keep_key(bytes, passphrase).map(|(plain, _)| plain)
}

/// Like [`unseal`], also returning the stretched key for [`seal_with_key`].
pub fn unseal_keep_key(
    bytes: &[u8],
    passphrase: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, FileKey), StoreError> {
    if bytes.len() > MAX_WALLET_FILE_BYTES {
        return Err(StoreError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_WALLET_FILE_BYTES,
        });
    }
    let header = Header::parse(bytes)?;
    let keys = DerivedKeys::derive(passphrase, &header.salt, &header.kdf)?;
    if keys.check() != header.check {
        return Err(StoreError::WrongPassphrase);
    }
    let body = &bytes[HEADER_BYTES..];
    let (ciphertext, tag) = body.split_at(body.len() - TAG_BYTES);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    keys.cipher()
        .decrypt_in_place_detached(
            XNonce::from_slice(&header.nonce),
            &bytes[..HEADER_BYTES],
            &mut plain[..],
            chacha20poly1305::Tag::from_slice(tag),
        )
        .map_err(|_| {
            StoreError::Corrupt(
                "authentication failed: the file was modified or damaged after it was written"
                    .into(),
            )
        })?;
    Ok((
        plain,
        FileKey {
            kdf: header.kdf,
            salt: header.salt,
            keys,
        },
    ))
}

/// Reads a file of at most [`MAX_WALLET_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let file = fs::File::open(path).map_err(io_err("cannot open wallet file", path))?;
    let size = file
        .metadata()
        .map_err(io_err("cannot read wallet file metadata", path))?
        .len();
    if size > MAX_WALLET_FILE_BYTES as u64 {
        return Err(StoreError::TooLarge {
            size,
            max: MAX_WALLET_FILE_BYTES,
        });
    }
    // Bounded by MAX_WALLET_FILE_BYTES just above.
    #[allow(clippy::cast_possible_truncation)]
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_WALLET_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("cannot read wallet file", path))?;
    if bytes.len() > MAX_WALLET_FILE_BYTES {
        return Err(StoreError::TooLarge {
            size: bytes.len() as u64,
            max: MAX_WALLET_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// Whether [`write_file_atomic`] may replace an existing file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Overwrite {
    /// Fail with [`StoreError::AlreadyExists`] if the target exists (creating a wallet).
    Refuse,
    /// Replace the target atomically (saving a wallet).
    Replace,
}

/// Writes `bytes` to `path` atomically with mode 0600: after a crash the path holds either
/// the old content or the new, never a mixture.
pub fn write_file_atomic(
    path: &Path,
    bytes: &[u8],
    overwrite: Overwrite,
) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| StoreError::Io {
            action: "wallet path has no file name",
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?
        .to_string_lossy()
        .into_owned();
    let mut suffix = [0u8; 8];
    rand::fill(&mut suffix);
    let tmp = dir.join(format!(".{name}{TMP_INFIX}{}", hex::encode(suffix)));
    let result = write_synced(&tmp, bytes).and_then(|()| match overwrite {
        Overwrite::Replace => fs::rename(&tmp, path).map_err(io_err("cannot replace", path)),
        // A hard link fails if the target exists, so two creators cannot both win.
        Overwrite::Refuse => match fs::hard_link(&tmp, path) {
            Ok(()) => fs::remove_file(&tmp).map_err(io_err("cannot remove", &tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StoreError::AlreadyExists(path.to_path_buf()))
            }
            Err(e) => Err(io_err("cannot create", path)(e)),
        },
    });
    if result.is_err() {
        // Best effort: the temporary file holds only ciphertext, but should not linger.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable.
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("cannot sync directory", &dir))
}

/// Removes the temporary files an interrupted [`write_file_atomic`] of `path` left (a
/// process killed between creating and renaming one). Call it holding the lock that
/// serialises writers, so no live write's file is taken. Returns what it removed.
pub fn remove_stale_temporary_files(path: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}{TMP_INFIX}", name.to_string_lossy());
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(io_err("cannot list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("cannot list", dir))?;
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            let stale = entry.path();
            fs::remove_file(&stale).map_err(io_err("cannot remove", &stale))?;
            removed.push(stale);
        }
    }
    Ok(removed)
}

fn write_synced(tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(tmp).map_err(io_err("cannot create", tmp))?;
    file.write_all(bytes).map_err(io_err("cannot write", tmp))?;
    file.sync_all().map_err(io_err("cannot sync", tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams::INSECURE_FOR_TESTS;

    #[test]
    fn seal_and_unseal_round_trip() {
        let sealed = seal(b"secret state", b"correct horse", CHEAP).expect("seal");
        assert_eq!(&sealed[..7], b"stlwlt\xff");
        assert_eq!(sealed.len(), HEADER_BYTES + 12 + TAG_BYTES);
        assert!(!sealed.windows(12).any(|w| w == b"secret state"));
        let plain = unseal(&sealed, b"correct horse").expect("unseal");
        assert_eq!(plain.as_slice(), b"secret state");
        // Fresh salt and nonce every time.
        assert_ne!(
            seal(b"secret state", b"correct horse", CHEAP).expect("seal"),
            sealed
        );
    }

    #[test]
    fn wrong_passphrase_is_not_corruption() {
        let sealed = seal(b"state", b"right", CHEAP).expect("seal");
        let err = unseal(&sealed, b"wrong").expect_err("wrong passphrase");
        assert!(matches!(err, StoreError::WrongPassphrase));
        assert_eq!(err.to_string(), "wrong passphrase");
    }

    #[test]
    fn damage_anywhere_is_detected_and_classified() {
        let sealed = seal(b"some wallet state", b"pw", CHEAP).expect("seal");
        // A flipped ciphertext or tag byte: right passphrase, corrupt file.
        for i in [HEADER_BYTES, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                matches!(unseal(&bad, b"pw"), Err(StoreError::Corrupt(_))),
                "byte {i}"
            );
        }
        // The nonce is authenticated as associated data.
        let mut bad = sealed.clone();
        bad[40] ^= 1;
        assert!(matches!(unseal(&bad, b"pw"), Err(StoreError::Corrupt(_))));
        // A changed salt changes the derived keys: indistinguishable from a wrong passphrase.
        let mut bad = sealed.clone();
        bad[21] ^= 1;
        assert!(matches!(
            unseal(&bad, b"pw"),
            Err(StoreError::WrongPassphrase)
        ));
        let mut bad = sealed.clone();
        bad[0] = b'x';
        assert!(matches!(unseal(&bad, b"pw"), Err(StoreError::NotAWallet)));
        let mut bad = sealed.clone();
        bad[7] = 9;
        assert!(matches!(
            unseal(&bad, b"pw"),
            Err(StoreError::UnsupportedVersion(9))
        ));
        let mut bad = sealed.clone();
        bad[8] = 2;
        assert!(matches!(
            unseal(&bad, b"pw"),
            Err(StoreError::UnsupportedAlgorithm { .. })
        ));
        // Truncated or extended files.
        assert!(matches!(
            unseal(&sealed[..50], b"pw"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unseal(&sealed[..sealed.len() - 1], b"pw"),
            Err(StoreError::Corrupt(_))
        ));
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(
            unseal(&longer, b"pw"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(unseal(b"", b"pw"), Err(StoreError::NotAWallet)));
    }

    #[test]
    fn absurd_kdf_parameters_in_a_file_are_refused_before_deriving() {
        let mut sealed = seal(b"x", b"pw", CHEAP).expect("seal");
        sealed[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            unseal(&sealed, b"pw"),
            Err(StoreError::KdfParams(_))
        ));
        let mut sealed = seal(b"x", b"pw", CHEAP).expect("seal");
        sealed[13..17].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            unseal(&sealed, b"pw"),
            Err(StoreError::KdfParams(_))
        ));
        assert!(
            KdfParams {
                memory_kib: 8,
                passes: 1,
                lanes: 2
            }
            .validate()
            .is_err()
        );
        assert!(KdfParams::DEFAULT.validate().is_ok());
    }

    #[test]
    fn atomic_write_creates_private_files_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wallet.dat");
        write_file_atomic(&path, b"one", Overwrite::Refuse).expect("create");
        assert_eq!(read_file(&path).expect("read"), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            write_file_atomic(&path, b"two", Overwrite::Refuse),
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(read_file(&path).expect("read"), b"one");
        write_file_atomic(&path, b"three", Overwrite::Replace).expect("replace");
        assert_eq!(read_file(&path).expect("read"), b"three");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("wallet.dat")]);
        let missing = dir.path().join("nope");
        assert!(matches!(read_file(&missing), Err(StoreError::Io { .. })));
        let in_missing_dir = dir.path().join("no/such/dir/w");
        assert!(write_file_atomic(&in_missing_dir, b"x", Overwrite::Replace).is_err());
    }

    #[test]
    fn resealing_with_a_kept_key_needs_no_passphrase_and_changes_the_nonce() {
        let sealed = seal(b"first", b"pw", CHEAP).expect("seal");
        let (plain, key) = unseal_keep_key(&sealed, b"pw").expect("unseal");
        assert_eq!(plain.as_slice(), b"first");
        assert!(!format!("{key:?}").contains(&hex::encode(&key.keys.0[..])));
        let again = seal_with_key(b"second", &key).expect("reseal");
        // Same salt and parameters, new nonce: the passphrase still opens it.
        assert_eq!(again[21..37], sealed[21..37]);
        assert_ne!(again[38..62], sealed[38..62]);
        assert_eq!(unseal(&again, b"pw").expect("open").as_slice(), b"second");
        assert!(matches!(
            unseal(&again, b"other"),
            Err(StoreError::WrongPassphrase)
        ));
    }

    /// One round trip with the real parameters new wallets get.
    #[test]
    fn real_parameters_round_trip() {
        let sealed = seal(b"state", b"a real passphrase", KdfParams::DEFAULT).expect("seal");
        let header = Header::parse(&sealed).expect("header");
        assert_eq!(header.kdf, KdfParams::DEFAULT);
        assert_eq!(
            unseal(&sealed, b"a real passphrase")
                .expect("open")
                .as_slice(),
            b"state"
        );
        assert!(matches!(
            unseal(&sealed, b"another"),
            Err(StoreError::WrongPassphrase)
        ));
    }

    #[test]
    fn a_header_asking_for_more_than_twice_the_default_work_is_refused() {
        for (offset, value) in [
            (9, MAX_KDF_MEMORY_KIB + 1),
            (9, 4 * 1024 * 1024),
            (13, MAX_KDF_PASSES + 1),
            (13, 64),
            (17, MAX_KDF_LANES + 1),
        ] {
            let mut sealed = seal(b"x", b"pw", CHEAP).expect("seal");
            sealed[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            let started = std::time::Instant::now();
            let err = unseal(&sealed, b"pw").expect_err("refused");
            assert!(matches!(err, StoreError::KdfParams(_)), "{err}");
            assert!(err.to_string().contains(&value.to_string()), "{err}");
            // Refused from the header alone, before any stretching.
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        // What the wallet writes stays within the caps, with room to raise it.
        assert!(KdfParams::DEFAULT.validate().is_ok());
        assert!(
            KdfParams {
                memory_kib: MAX_KDF_MEMORY_KIB,
                passes: MAX_KDF_PASSES,
                lanes: MAX_KDF_LANES,
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn stale_temporary_files_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wallet.settle");
        write_file_atomic(&path, b"one", Overwrite::Refuse).expect("create");
        let stale = dir.path().join(".wallet.settle.tmp-0123456789abcdef");
        fs::write(&stale, b"partial").expect("stale");
        let unrelated = [
            dir.path().join(".wallet.settle.tmp-notours"),
            dir.path().join(".other.settle.tmp-0123456789abcdef"),
            dir.path().join("notes.txt"),
        ];
        for p in &unrelated {
            fs::write(p, b"keep").expect("write");
        }
        let removed = remove_stale_temporary_files(&path).expect("clean");
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(unrelated.iter().all(|p| p.exists()));
        assert_eq!(read_file(&path).expect("read"), b"one");
    }
}
