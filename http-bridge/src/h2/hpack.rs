//! HPACK (RFC 7541): the decoder for the header blocks a peer sends, with its dynamic table
//! and Huffman strings, and (in `encoder`) the encoder for ours. The encoder indexes the fields
//! that repeat call after call (path, authority, content type, Triple's service headers), so a
//! steady stream of calls costs the provider one or two bytes per field; fields that change
//! every call (trace context, request ids) go as literals, and credentials are never indexed.

use std::collections::VecDeque;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use super::static_table::STATIC;

mod encoder;
pub use encoder::{Encoder, Indexing};

/// A malformed header block: the connection cannot go on (its tables are out of step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpackError(pub &'static str);

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed header block: {}", self.0)
    }
}

/// Every entry costs its name and value plus 32 bytes (RFC 7541, 4.1).
const ENTRY_OVERHEAD: usize = 32;

/// A decoded field's name: the only pseudo-header a response has is `:status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldName {
    Status,
    /// Another pseudo-header: not allowed in a response, so the message is malformed.
    OtherPseudo(Bytes),
    Header(HeaderName),
    /// A field that is not valid HTTP (an uppercase name, a control character in a value):
    /// the message carrying it is malformed, but the block decodes on, so the connection's
    /// tables stay in step and only that message is refused.
    Malformed(&'static str),
}

/// A decoded field. Names and values are validated once, when they are first seen: a dynamic
/// table entry hands out clones (reference counts) after that.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: FieldName,
    pub value: HeaderValue,
    /// The name's length and the entry's size as they were on the wire (a malformed field
    /// keeps neither its name nor its value, but still takes its room in the table).
    name_len: usize,
    size: usize,
    /// Why the field is not valid HTTP, if it is not: its message must be refused. A good
    /// name with a bad value keeps the name, so later fields naming it by index are fine.
    malformed: Option<&'static str>,
}

impl Field {
    /// The field's size as header-list limits count it: name, value and 32.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn valid(&self) -> bool {
        self.malformed.is_none()
    }

    /// Why the field makes its message malformed.
    pub fn malformed(&self) -> Option<&'static str> {
        self.malformed
    }
}

fn field(name: &[u8], value: Bytes) -> Field {
    let (name_len, size) = (name.len(), name.len() + value.len() + ENTRY_OVERHEAD);
    let parsed = match name {
        b":status" => Ok(FieldName::Status),
        [b':', ..] => Ok(FieldName::OtherPseudo(Bytes::copy_from_slice(name))),
        // HTTP/2 field names are lowercase; an uppercase one makes the message malformed.
        _ if name.iter().any(u8::is_ascii_uppercase) => Err("an uppercase field name"),
        _ => HeaderName::from_bytes(name)
            .map(FieldName::Header)
            .map_err(|_| "an invalid field name"),
    };
    with_value(parsed, value, name_len, size)
}

fn with_value(
    name: Result<FieldName, &'static str>,
    value: Bytes,
    name_len: usize,
    size: usize,
) -> Field {
    let (name, value, malformed) = match (name, HeaderValue::from_maybe_shared(value)) {
        (Ok(name), Ok(value)) => (name, value, None),
        (Err(why), _) => (
            FieldName::Malformed(why),
            HeaderValue::from_static(""),
            Some(why),
        ),
        (Ok(name), Err(_)) => (
            name,
            HeaderValue::from_static(""),
            Some("an invalid field value"),
        ),
    };
    Field {
        name,
        value,
        name_len,
        size,
        malformed,
    }
}

fn static_fields() -> &'static [Field] {
    static FIELDS: std::sync::OnceLock<Vec<Field>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        STATIC
            .iter()
            .map(|(n, v)| field(n.as_bytes(), Bytes::from_static(v.as_bytes())))
            .collect()
    })
}

/// The decoder of one connection's incoming header blocks.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<Field>,
    size: usize,
    /// The size we allow the peer's encoder (our SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
    /// The size the peer last chose, up to `limit`.
    max: usize,
    scratch: Vec<u8>,
}

impl Decoder {
    pub fn new(limit: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            limit,
            max: limit,
            scratch: Vec::new(),
        }
    }

    /// Decodes one whole header block, handing each field to `emit` in order.
    pub fn decode(
        &mut self,
        mut block: &[u8],
        mut emit: impl FnMut(Field),
    ) -> Result<(), HpackError> {
        let mut first = true;
        while let Some(&b) = block.first() {
            if b & 0x80 != 0 {
                let index = integer(&mut block, 7)?;
                emit(self.get(index)?.clone());
            } else if b & 0xc0 == 0x40 {
                let field = self.literal(&mut block, 6)?;
                self.insert(field.clone());
                emit(field);
            } else if b & 0xe0 == 0x20 {
                // A table size update: only before the first field.
                if !first {
                    return Err(HpackError("a table size update after a field"));
                }
                let size = integer(&mut block, 5)?;
                if size > self.limit {
                    return Err(HpackError("a table size above the limit we set"));
                }
                self.max = size;
                self.evict(0);
                continue;
            } else {
                // Without indexing (0000) or never indexed (0001): both 4-bit prefixes.
                emit(self.literal(&mut block, 4)?);
            }
            first = false;
        }
        Ok(())
    }

    fn get(&self, index: usize) -> Result<&Field, HpackError> {
        match index {
            0 => Err(HpackError("index 0")),
            1..=61 => static_fields()
                .get(index - 1)
                .ok_or(HpackError("the static table is unavailable")),
            _ => self
                .table
                .get(index - 62)
                .ok_or(HpackError("an index past the dynamic table")),
        }
    }

    fn literal(&mut self, block: &mut &[u8], prefix: u8) -> Result<Field, HpackError> {
        let index = integer(block, prefix)?;
        let value_of = |d: &mut Self, block: &mut &[u8]| -> Result<Bytes, HpackError> {
            d.scratch.clear();
            let raw = string(block, &mut d.scratch)?;
            Ok(raw.map_or_else(
                || Bytes::copy_from_slice(&d.scratch),
                Bytes::copy_from_slice,
            ))
        };
        if index == 0 {
            let name = value_of(self, block)?;
            let value = value_of(self, block)?;
            Ok(field(&name, value))
        } else {
            let named = self.get(index)?;
            let (name, name_len) = (named.name.clone(), named.name_len);
            let value = value_of(self, block)?;
            let size = name_len + value.len() + ENTRY_OVERHEAD;
            let name = match name {
                FieldName::Malformed(why) => Err(why),
                name => Ok(name),
            };
            Ok(with_value(name, value, name_len, size))
        }
    }

    fn insert(&mut self, field: Field) {
        let size = field.size();
        self.evict(size);
        if size <= self.max {
            self.size += size;
            self.table.push_front(field);
        }
    }

    /// Drops the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            match self.table.pop_back() {
                Some(old) => self.size -= old.size(),
                None => break,
            }
        }
    }
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541, 5.1), advancing `block` past it.
fn integer(block: &mut &[u8], n: u8) -> Result<usize, HpackError> {
    let short = HpackError("a truncated integer");
    let (&first, mut rest) = block.split_first().ok_or(short.clone())?;
    let max = (1usize << n) - 1;
    let mut value = usize::from(first) & max;
    if value == max {
        let mut shift = 0;
        loop {
            let (&b, tail) = rest.split_first().ok_or(short.clone())?;
            rest = tail;
            if shift > 21 {
                return Err(HpackError("an integer too large"));
            }
            value += usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    *block = rest;
    Ok(value)
}

/// A string literal: `Some(raw bytes)` when sent as is, or `None` with the Huffman-decoded
/// bytes in `scratch`.
fn string<'a>(block: &mut &'a [u8], scratch: &mut Vec<u8>) -> Result<Option<&'a [u8]>, HpackError> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, 7)?;
    if block.len() < len {
        return Err(HpackError("a truncated string"));
    }
    let (bytes, rest) = block.split_at(len);
    *block = rest;
    if huffman {
        super::huffman::decode(bytes, scratch)?;
        Ok(None)
    } else {
        Ok(Some(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
        let mut fields = Vec::new();
        d.decode(block, |f| {
            let name = match f.name {
                FieldName::Status => ":status".to_owned(),
                FieldName::OtherPseudo(n) => String::from_utf8_lossy(&n).into_owned(),
                FieldName::Malformed(why) => format!("malformed: {why}"),
                FieldName::Header(n) => n.as_str().to_owned(),
            };
            fields.push((name, f.value.to_str().unwrap_or("?").to_owned()));
        })?;
        Ok(fields)
    }

    #[test]
    fn rfc_response_examples_with_huffman_and_eviction() {
        // RFC 7541 C.6: three responses, a 256-byte table, Huffman strings.
        let mut d = Decoder::new(256);
        let first = hex("488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3");
        let fields = decode_all(&mut d, &first).unwrap();
        assert_eq!(fields[0], (":status".into(), "302".into()));
        assert_eq!(
            fields[3],
            ("location".into(), "https://www.example.com".into())
        );
        let second = hex("4883640effc1c0bf");
        let fields = decode_all(&mut d, &second).unwrap();
        assert_eq!(fields[0], (":status".into(), "307".into()));
        assert_eq!(fields[1].0, "cache-control");
        let third = hex("88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007");
        let fields = decode_all(&mut d, &third).unwrap();
        assert_eq!(fields[0], (":status".into(), "200".into()));
        assert_eq!(fields[4], ("content-encoding".into(), "gzip".into()));
        assert_eq!(
            fields[5],
            (
                "set-cookie".into(),
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1".into()
            )
        );
        assert!(d.size <= 256);
    }

    #[test]
    fn our_encoder_is_understood_and_indexes_repeats() {
        let mut e = Encoder::default();
        let mut d = Decoder::new(4096);
        let fields = [
            ("content-type", "application/grpc", Indexing::Yes),
            ("te", "trailers", Indexing::Yes),
            ("traceparent", "00-abc-01", Indexing::No),
            ("authorization", "secret", Indexing::Never),
        ];
        let mut sizes = Vec::new();
        for _ in 0..2 {
            let mut out = BytesMut::new();
            e.begin(&mut out);
            for (n, v, i) in fields {
                e.field(n.as_bytes(), v.as_bytes(), i, &mut out);
            }
            sizes.push(out.len());
            let got = decode_all(&mut d, &out).unwrap();
            let want: Vec<_> = fields
                .iter()
                .map(|(n, v, _)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want);
        }
        assert!(sizes[1] < sizes[0] - 20, "repeats are indexed: {sizes:?}");
        // A smaller peer limit is announced and both tables stay in step.
        e.peer_limit(0);
        let mut out = BytesMut::new();
        e.begin(&mut out);
        e.field(b"te", b"trailers", Indexing::Yes, &mut out);
        assert_eq!(
            decode_all(&mut d, &out).unwrap(),
            vec![("te".into(), "trailers".into())]
        );
        assert_eq!(d.size, 0);
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let mut d = Decoder::new(4096);
        for bad in [
            &[0x80][..],                               // index 0
            &[0xbf, 0x20][..],                         // index 95: past the empty dynamic table
            &[0x40, 0x05, b'a'][..],                   // truncated name
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // endless integer
            &[0x82, 0x3f, 0xe1, 0x1f][..],             // size update after a field
            &[0x3f, 0xe2, 0x1f][..],                   // size update above our limit
        ] {
            assert!(decode_all(&mut d, bad).is_err(), "{bad:?}");
        }
        // Invalid fields decode as malformed (the message is refused, not the connection),
        // and an indexed one keeps its room in the table.
        let mut d = Decoder::new(4096);
        let block = [
            0x40, 0x01, b'A', 0x01, b'x', // uppercase name, indexed
            0x00, 0x01, b'a', 0x01, b'\n', // invalid value
            0xbe,  // the indexed malformed entry again
        ];
        let mut verdicts = Vec::new();
        d.decode(&block, |f| verdicts.push(f.malformed())).unwrap();
        assert_eq!(
            verdicts,
            [
                Some("an uppercase field name"),
                Some("an invalid field value"),
                Some("an uppercase field name")
            ]
        );
        assert_eq!(d.size, 1 + 1 + 32);
        // A good name with a bad value keeps its name: naming it by index with a good value
        // is fine.
        let mut d = Decoder::new(4096);
        let block = [0x40, 0x01, b'a', 0x01, b'\n', 0x7e, 0x01, b'x'];
        let mut verdicts = Vec::new();
        d.decode(&block, |f| verdicts.push((f.malformed(), f.value.clone())))
            .unwrap();
        assert_eq!(verdicts[0].0, Some("an invalid field value"));
        assert_eq!(verdicts[1], (None, http::HeaderValue::from_static("x")));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
