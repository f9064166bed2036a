//! Addresses against `spec/vectors/addresses.json`, and their round trips.

mod common;

use common::*;
use settle_script::addresses::{Address, AddressError, Network};
use settle_script::{burn_script, multisig_script, p2k};

fn load() -> AddressVectors {
    let text = std::fs::read_to_string(vectors_dir().join("addresses.json")).expect("readable");
    serde_json::from_str(&text).expect("addresses.json parses")
}

#[test]
fn valid_addresses_decode_to_their_program_and_script() {
    let v = load();
    assert!(v.valid.len() >= 6);
    for case in &v.valid {
        let network: Network = case.network.parse().expect("network name");
        let addr: Address = case.address.parse().expect("valid address");
        assert_eq!(addr.network(), network);
        assert_eq!(addr.version(), case.version);
        assert_eq!(hex::encode(addr.program()), case.program);
        assert_eq!(hex::encode(addr.script_pubkey()), case.script_pubkey);
        assert_eq!(addr.to_string(), case.address);
        assert!(case.address.starts_with(&format!("{}1", network.hrp())));
        let from_script = Address::from_script_pubkey(network, &hex_decode(&case.script_pubkey))
            .expect("addressable");
        assert_eq!(from_script, addr);
        assert_eq!(Address::parse_for(&case.address, network), Ok(addr.clone()));
        // Uppercase is the same address (bech32 allows it, e.g. for QR codes).
        assert_eq!(case.address.to_uppercase().parse::<Address>(), Ok(addr));
    }
}

#[test]
fn invalid_addresses_fail_with_the_named_error() {
    let v = load();
    let mut names = std::collections::BTreeSet::new();
    for case in &v.invalid {
        let result = match &case.network {
            Some(n) => Address::parse_for(&case.address, n.parse().expect("network name")),
            None => case.address.parse::<Address>(),
        };
        let e = result.expect_err(&case.description);
        assert_eq!(e.name(), case.error, "{}: {e}", case.description);
        names.insert(e.name());
    }
    for name in [
        "WRONG_NETWORK",
        "UNKNOWN_PREFIX",
        "NOT_BECH32M",
        "CHECKSUM",
        "MALFORMED",
        "MISSING_VERSION",
        "UNKNOWN_VERSION",
        "PROGRAM_LENGTH",
        "INVALID_KEY",
        "PADDING",
    ] {
        assert!(names.contains(name), "no invalid vector for {name}");
    }
}

#[test]
fn error_messages_say_what_is_wrong() {
    let test_addr = Address::p2k(Network::Test, &xonly(1)).to_string();
    let e = Address::parse_for(&test_addr, Network::Main).expect_err("wrong network");
    assert_eq!(
        e.to_string(),
        "address is for the test network (prefix tstl), not the main network (prefix stl)"
    );
    let e = "bc1qqqqqqqqqq".parse::<Address>().expect_err("foreign");
    assert!(
        e.to_string().contains("unknown address prefix \"bc\""),
        "{e}"
    );
    assert_eq!(
        Address::new(Network::Main, 2, vec![0; 32]),
        Err(AddressError::UnknownVersion(2))
    );
    assert_eq!(
        Address::new(Network::Main, 0, vec![0; 20]).map_err(|e| e.to_string()),
        Err("version 0 address program is 20 bytes, expected 32".to_string())
    );
    assert_eq!(
        Address::from_script_pubkey(Network::Main, &burn_script(b"x")),
        Err(AddressError::NotAddressable)
    );
    assert_eq!(
        Address::from_script_pubkey(Network::Main, &[0x51]),
        Err(AddressError::NotAddressable)
    );
}

#[test]
fn addresses_round_trip_through_scripts_and_serde() {
    let ms = multisig_script(2, &[xonly(1), xonly(2)]).expect("2-of-2");
    for network in Network::ALL {
        for addr in [
            Address::p2k(network, &xonly(7)),
            Address::p2sh(network, &ms),
        ] {
            let again = Address::from_script_pubkey(network, &addr.script_pubkey()).expect("ok");
            assert_eq!(again, addr);
            let json = serde_json::to_string(&addr).expect("serializes");
            assert_eq!(json, format!("\"{addr}\""));
            assert_eq!(
                serde_json::from_str::<Address>(&json).expect("deserializes"),
                addr
            );
        }
        assert_eq!(
            Address::p2k(network, &xonly(7)).script_pubkey(),
            p2k(&xonly(7))
        );
        let json = serde_json::to_string(&network).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Network>(&json).expect("deserializes"),
            network
        );
    }
    assert!(serde_json::from_str::<Address>("\"stl1xyz\"").is_err());
    let too_long = format!("stl1{}", "q".repeat(1_100));
    assert!(matches!(
        too_long.parse::<Address>(),
        Err(AddressError::Malformed(_))
    ));
    let main = Address::p2k(Network::Main, &xonly(7)).to_string();
    assert_eq!(main.len(), 63, "{main}");
    assert!("mainnet".parse::<Network>().is_err());
}
