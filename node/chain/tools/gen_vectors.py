#!/usr/bin/env python3
"""Independent implementation of Settle's MuHash3072 element hashing, merkle tree,
header hash, validator-set hash and precommit digest (spec/chain.md), used to write
spec/vectors/muhash.json and spec/vectors/blocks.json. The Rust tests read those files,
so the Rust code is checked against this second implementation of the spec.

Run from the repository root: python3 node/chain/tools/gen_vectors.py
"""
import hashlib
import json
import struct

P = 2**3072 - 1103717


def sha256(b):
    return hashlib.sha256(b).digest()


def tagged(tag, data):
    t = sha256(tag.encode())
    return sha256(t + t + data)


def compact_size(n):
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


# ---- MuHash3072 ----

def element_number(e):
    seed = tagged("Settle/MuHash/Element", e)
    data = b"".join(tagged("Settle/MuHash/Expand", seed + bytes([i])) for i in range(12))
    return int.from_bytes(data, "little")


def muhash_digest(inserted, removed):
    num, den = 1, 1
    for e in inserted:
        num = num * element_number(e) % P
    for e in removed:
        den = den * element_number(e) % P
    value = num * pow(den, -1, P) % P
    return tagged("Settle/MuHash", value.to_bytes(384, "little"))


def utxo_element(txid, vout, asset, amount, script, height, time_ms):
    return (txid + struct.pack("<I", vout) + asset + struct.pack("<Q", amount)
            + compact_size(len(script)) + script + struct.pack("<QQ", height, time_ms))


def muhash_vectors():
    a, b, c = b"a", b"b", b"c"
    sets = [
        ("the empty set", [], []),
        ("one element", [a], []),
        ("two elements", [a, b], []),
        ("the same two, inserted in the other order", [b, a], []),
        ("a multiset: one element twice", [a, a], []),
        ("three inserted, one removed equals the other two", [a, b, c], [b]),
        ("inserted then removed is the empty set", [a, b], [a, b]),
        ("removed without being inserted", [], [a]),
    ]
    txid = bytes(range(32))
    asset = bytes([0xAA]) * 32
    script = bytes([0x51, 0x20]) + bytes([0x11]) * 32
    coin = dict(txid=txid.hex(), vout=1, asset=asset.hex(), amount=100050,
                script_pubkey=script.hex(), height=7, time_ms=1700000000123)
    element = utxo_element(txid, 1, asset, 100050, script, 7, 1700000000123)
    return {
        "description": "MuHash3072 (spec/chain.md, 'UTXO-set commitment'). element_numbers: "
                       "an element's 3072-bit number as 384 little-endian bytes. sets: digest "
                       "of the multiset built by inserting and removing the listed elements "
                       "(hex bytes). utxo: the element of one coin and the digest of the set "
                       "holding only it.",
        "modulus": "2^3072 - 1103717",
        "element_numbers": [
            {"element": e.hex(), "number": element_number(e).to_bytes(384, "little").hex()}
            for e in [b"", b"abc"]
        ],
        "sets": [
            {"description": d, "insert": [e.hex() for e in ins], "remove": [e.hex() for e in rem],
             "digest": muhash_digest(ins, rem).hex()}
            for d, ins, rem in sets
        ],
        "utxo": [{"coin": coin, "element": element.hex(), "digest": muhash_digest([element], []).hex()}],
    }


# ---- Blocks ----

def merkle_root(wtxids):
    if not wtxids:
        return bytes(32)
    level = [tagged("Settle/MerkleLeaf", w) for w in wtxids]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(tagged("Settle/MerkleNode", level[i] + level[i + 1]))
            else:
                nxt.append(level[i])
        level = nxt
    return level[0]


def header_bytes(h):
    return (struct.pack("<IQ", h["version"], h["height"]) + bytes.fromhex(h["prev_hash"])
            + struct.pack("<Q", h["time_ms"]) + bytes.fromhex(h["merkle_root"])
            + bytes.fromhex(h["utxo_commitment"]) + bytes.fromhex(h["validator_set_hash"])
            + bytes.fromhex(h["proposer"]))


# secp256k1, only to derive x-only public keys for the validator-set vector.
FP = 2**256 - 2**32 - 977
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8


def point_add(p, q):
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % FP == 0:
        return None
    if p == q:
        lam = 3 * p[0] * p[0] * pow(2 * p[1], -1, FP) % FP
    else:
        lam = (q[1] - p[1]) * pow(q[0] - p[0], -1, FP) % FP
    x = (lam * lam - p[0] - q[0]) % FP
    return (x, (lam * (p[0] - x) - p[1]) % FP)


def xonly(secret):
    result, addend, k = None, (GX, GY), secret
    while k:
        if k & 1:
            result = point_add(result, addend)
        addend = point_add(addend, addend)
        k >>= 1
    return result[0].to_bytes(32, "big")


def validator_set_hash(validators):
    vs = sorted(validators, key=lambda v: v[0])
    data = compact_size(len(vs)) + b"".join(k + struct.pack("<Q", p) for k, p in vs)
    return tagged("Settle/ValidatorSet", data)


def precommit_digest(chain_id, height, round_, block_hash):
    return tagged("Settle/Precommit", chain_id + struct.pack("<QI", height, round_) + block_hash)


def block_vectors():
    wtxids = [bytes([i + 1]) * 32 for i in range(7)]
    merkle = [{"wtxids": [w.hex() for w in wtxids[:n]], "root": merkle_root(wtxids[:n]).hex()}
              for n in range(0, 8)]
    validators = [(xonly(int.from_bytes(bytes([s]) * 32, "big")), p) for s, p in [(11, 1), (12, 2), (13, 3), (14, 10)]]
    vset = {
        "validators": [{"secret": (bytes([s]) * 32).hex(), "key": k.hex(), "power": p}
                       for (k, p), s in zip(validators, [11, 12, 13, 14])],
        "hash": validator_set_hash(validators).hex(),
    }
    header = {
        "version": 1,
        "height": 42,
        "prev_hash": bytes(range(32)).hex(),
        "time_ms": 1700000042000,
        "merkle_root": merkle_root(wtxids[:3]).hex(),
        "utxo_commitment": (bytes([0xCC]) * 32).hex(),
        "validator_set_hash": vset["hash"],
        "proposer": validators[0][0].hex(),
    }
    hb = header_bytes(header)
    block_hash = tagged("Settle/BlockHash", hb)
    chain_id = bytes([0xC1]) * 32
    return {
        "description": "Blocks (spec/chain.md). merkle: roots over the given wtxids. "
                       "validator_set: keys (x-only, derived from the secrets) and powers, "
                       "and the set's hash. header: fields, the 180-byte encoding and the block "
                       "hash. precommit: the digest validators sign.",
        "merkle": merkle,
        "validator_set": vset,
        "header": {"fields": header, "encoding": hb.hex(), "hash": block_hash.hex()},
        "precommit": {"chain_id": chain_id.hex(), "height": 42, "round": 3,
                      "block_hash": block_hash.hex(),
                      "digest": precommit_digest(chain_id, 42, 3, block_hash).hex()},
    }


if __name__ == "__main__":
    with open("spec/vectors/muhash.json", "w") as f:
        json.dump(muhash_vectors(), f, indent=2)
        f.write("\n")
    with open("spec/vectors/blocks.json", "w") as f:
        json.dump(block_vectors(), f, indent=2)
        f.write("\n")
