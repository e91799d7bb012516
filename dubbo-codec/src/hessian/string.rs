//! Java strings on the Hessian wire.
//!
//! Hessian counts string lengths in UTF-16 code units (Java `char`s) while the payload is UTF-8.
//! Java writes each half of a surrogate pair as its own 3-byte sequence (as CESU-8 does) and its
//! reader rejects 4-byte UTF-8, so the encoder writes characters outside the BMP that way. The
//! decoder accepts both forms, since other writers (hessian.js, Go) emit plain 4-byte UTF-8.

use bytes::{BufMut, BytesMut};

/// Number of UTF-16 code units in `s`.
#[cfg(test)]
pub(crate) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    s.chars().map(char::len_utf16).sum()
}

/// Appends `s` as Java writes it: UTF-8, except that supplementary characters become two 3-byte
/// surrogate sequences.
pub(crate) fn put_java_utf8(out: &mut BytesMut, s: &str) {
    if !s.bytes().any(|b| b >= 0xf0) {
        out.put_slice(s.as_bytes());
        return;
    }
    let mut buf = [0u16; 2];
    for c in s.chars() {
        if c.len_utf8() < 4 {
            out.put_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        } else {
            for unit in c.encode_utf16(&mut buf) {
                put_3_byte(out, u32::from(*unit));
            }
        }
    }
}

fn put_3_byte(out: &mut BytesMut, unit: u32) {
    // `unit` < 0x10000, so each shifted piece fits its byte.
    out.put_u8(0xe0 | ((unit >> 12) as u8));
    out.put_u8(0x80 | (((unit >> 6) & 0x3f) as u8));
    out.put_u8(0x80 | ((unit & 0x3f) as u8));
}

/// Splits `s` into pieces of at most `max_units` UTF-16 units without separating a surrogate
/// pair, as Java's writer does (it shortens a chunk by one unit rather than split a pair).
/// Returns `(piece, units)` pairs.
pub(crate) fn chunks(s: &str, max_units: usize) -> impl Iterator<Item = (&str, usize)> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (piece, units) = if rest.is_ascii() {
            let n = rest.len().min(max_units);
            (&rest[..n], n)
        } else {
            let mut units = 0;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                if units + c.len_utf16() > max_units {
                    end = i;
                    break;
                }
                units += c.len_utf16();
            }
            (&rest[..end], units)
        };
        rest = &rest[piece.len()..];
        Some((piece, units))
    })
}

/// How many bytes at the start of `input` hold `units` UTF-16 units, judged from the lead bytes
/// alone (continuation bytes are validated when the bytes are converted). `None` if the input is
/// too short or a lead byte is invalid.
pub(crate) fn byte_len_of_units(input: &[u8], units: usize) -> Option<usize> {
    if input.len() >= units && input[..units].is_ascii() {
        return Some(units);
    }
    let mut pos = 0;
    let mut seen = 0;
    while seen < units {
        let lead = *input.get(pos)?;
        let (len, width) = match lead {
            0x00..=0x7f => (1, 1),
            0xc0..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            0xf0..=0xf7 => (4, 2),
            _ => return None,
        };
        // A 4-byte character is two units; a writer that splits it across chunks is broken.
        if seen + width > units {
            return None;
        }
        pos += len;
        seen += width;
    }
    (pos <= input.len()).then_some(pos)
}

/// Converts bytes in Java's form to a `String`. Unpaired surrogates, which Java strings may hold
/// but Rust strings cannot, become U+FFFD.
pub(crate) fn decode_java_utf8(bytes: &[u8]) -> Option<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s.to_owned()),
        Err(_) => decode_with_surrogates(bytes),
    }
}

fn decode_with_surrogates(bytes: &[u8]) -> Option<String> {
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let lead = bytes[i];
        let cont = |k: usize| -> Option<u32> {
            let b = *bytes.get(i + k)?;
            (b & 0xc0 == 0x80).then_some(u32::from(b & 0x3f))
        };
        let (code, len) = match lead {
            0x00..=0x7f => (u32::from(lead), 1),
            0xc0..=0xdf => ((u32::from(lead & 0x1f) << 6) | cont(1)?, 2),
            0xe0..=0xef => (
                (u32::from(lead & 0x0f) << 12) | (cont(1)? << 6) | cont(2)?,
                3,
            ),
            0xf0..=0xf7 => {
                let c =
                    (u32::from(lead & 0x07) << 18) | (cont(1)? << 12) | (cont(2)? << 6) | cont(3)?;
                (c, 4)
            }
            _ => return None,
        };
        if code >= 0x10000 {
            let c = char::from_u32(code)?;
            units.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        } else {
            // Surrogates land here as single units and are paired up below.
            units.push(code as u16);
        }
        i += len;
    }
    Some(
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supplementary_characters_round_trip_in_java_form() {
        let s = "a😀b";
        let mut out = BytesMut::new();
        put_java_utf8(&mut out, s);
        assert_eq!(&out[..], b"a\xed\xa0\xbd\xed\xb8\x80b");
        assert_eq!(utf16_len(s), 4);
        assert_eq!(byte_len_of_units(&out, 4), Some(8));
        assert_eq!(decode_java_utf8(&out).as_deref(), Some(s));
    }

    #[test]
    fn four_byte_utf8_counts_two_units() {
        let bytes = "😀x".as_bytes();
        assert_eq!(byte_len_of_units(bytes, 3), Some(5));
        assert_eq!(byte_len_of_units(bytes, 1), None);
    }

    #[test]
    fn chunks_never_split_a_pair() {
        let s = format!("{}😀b", "a".repeat(3));
        let pieces: Vec<_> = chunks(&s, 4).collect();
        assert_eq!(pieces, vec![("aaa", 3), ("😀b", 3)]);
    }

    #[test]
    fn unpaired_surrogate_becomes_replacement() {
        assert_eq!(
            decode_java_utf8(b"\xed\xa0\xbdz").as_deref(),
            Some("\u{fffd}z")
        );
    }
}
