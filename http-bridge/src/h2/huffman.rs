//! Huffman decoding of HPACK string literals (RFC 7541, section 5.2). Peers compress header
//! values this way; we decode them bit by bit through a tree built once from the code table.
//! Strings are short and a peer's encoder indexes repeated fields, so this is off the hot path.

use std::sync::OnceLock;

use super::hpack::HpackError;
use super::huffman_table::CODES;

/// A child that is a symbol rather than another node.
const LEAF: u16 = 0x8000;
/// The end-of-string symbol: 30 one bits; a string that contains it is malformed.
const EOS: u16 = 256;

/// The code as a binary tree: `nodes[i][bit]` is the child of node `i` for that bit, 0 for
/// none (the root is never anyone's child).
fn tree() -> &'static [[u16; 2]] {
    static TREE: OnceLock<Vec<[u16; 2]>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes: Vec<[u16; 2]> = vec![[0, 0]];
        let codes = CODES
            .iter()
            .enumerate()
            .map(|(symbol, &(code, len))| (code, len, symbol as u16))
            .chain([(0x3fff_ffff, 30, EOS)]);
        for (code, len, symbol) in codes {
            let mut node = 0usize;
            for i in (0..len).rev() {
                let bit = ((code >> i) & 1) as usize;
                if i == 0 {
                    nodes[node][bit] = LEAF | symbol;
                } else {
                    if nodes[node][bit] == 0 {
                        nodes.push([0, 0]);
                        nodes[node][bit] = (nodes.len() - 1) as u16;
                    }
                    node = nodes[node][bit] as usize;
                }
            }
        }
        nodes
    })
}

/// Appends the decoded bytes of `input` to `out`.
pub(super) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let tree = tree();
    let (mut node, mut depth, mut ones) = (0usize, 0u32, true);
    for &byte in input {
        for i in (0..8).rev() {
            let bit = (byte >> i) & 1;
            let next = tree[node][bit as usize];
            if next & LEAF != 0 {
                let symbol = next & !LEAF;
                if symbol == EOS {
                    return Err(HpackError("a Huffman string contains end-of-string"));
                }
                out.push(symbol as u8);
                (node, depth, ones) = (0, 0, true);
            } else if next == 0 {
                return Err(HpackError("an invalid Huffman code"));
            } else {
                node = next as usize;
                depth += 1;
                ones &= bit == 1;
            }
        }
    }
    // What is left must be padding: fewer than 8 bits, all ones (a prefix of end-of-string).
    if depth > 7 || !ones {
        return Err(HpackError("bad Huffman padding"));
    }
    Ok(())
}

/// Huffman-encodes `input` (tests use it to play a peer that compresses).
#[cfg(test)]
pub(super) fn encode(input: &[u8]) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u64, 0u32);
    for &b in input {
        let (code, len) = CODES[b as usize];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_decode() {
        // RFC 7541 C.4.1: "www.example.com".
        let input = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&input, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out).unwrap();
        assert_eq!(out, all);
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        let mut out = Vec::new();
        // 'a' is 00011 (5 bits); padding with zeros instead of ones.
        assert!(decode(&[0b0001_1000], &mut out).is_err());
        // A whole byte of padding after a complete symbol: more than 7 bits.
        assert!(decode(&[0b0001_1111, 0xff], &mut out).is_err());
        // End-of-string spelled out.
        assert!(decode(&[0xff, 0xff, 0xff, 0xfc], &mut out).is_err());
    }
}
