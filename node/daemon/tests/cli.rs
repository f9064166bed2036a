//! The `settled` command line: bad arguments and misuse get clear errors.
//! (The functional tests of the running node are in `tests/tests/`.)

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

fn settled(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_settled"))
        .args(args)
        .output()
        .expect("settled runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--rpc-port", "notaport"][..],
        &["--rpc-port", "70000"],
        &["frobnicate"],
        &["--no-such-flag"],
    ] {
        let out = settled(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("error"), "{args:?}: {}", text(&out));
    }
    let help = settled(&["--help"]);
    assert!(help.status.success());
    for word in [
        "init",
        "run",
        "verify",
        "--datadir",
        "--rpc-port",
        "--p2p-port",
        "--dev",
    ] {
        assert!(text(&help).contains(word), "help lacks {word}");
    }
}

#[test]
fn init_writes_private_keys_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("d");
    let dir_s = dir.to_str().expect("utf-8");
    let out = settled(&["init", "--dev", "--datadir", dir_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("chain id"), "{}", text(&out));
    for name in ["validator.key", "issuer-cash.key", "issuer-security.key"] {
        let meta = std::fs::metadata(dir.join("keys").join(name)).expect("key file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    let spec = std::fs::read_to_string(dir.join("chainspec.toml")).expect("spec");
    assert!(spec.contains("network = \"dev\""), "{spec}");
    assert!(dir.join("settled.toml").exists());

    let again = settled(&["init", "--dev", "--datadir", dir_s]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already initialised"),
        "{}",
        text(&again)
    );

    let no_dev = settled(&[
        "init",
        "--datadir",
        tmp.path().join("e").to_str().expect("utf-8"),
    ]);
    assert!(!no_dev.status.success());
    assert!(text(&no_dev).contains("--dev"), "{}", text(&no_dev));
}

#[test]
fn running_or_verifying_an_uninitialised_directory_says_what_to_do() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_str().expect("utf-8");
    for args in [
        &["run", "--datadir", dir][..],
        &["verify", "--datadir", dir],
    ] {
        let out = settled(args);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("settled init --dev"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_broken_config_file_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("d");
    let dir_s = dir.to_str().expect("utf-8");
    assert!(
        settled(&["init", "--dev", "--datadir", dir_s])
            .status
            .success()
    );
    std::fs::write(dir.join("settled.toml"), "rpc_port = \"high\"\n").expect("write");
    let out = settled(&["run", "--datadir", dir_s]);
    assert!(!out.status.success());
    assert!(text(&out).contains("settled.toml"), "{}", text(&out));
}
