//! Triple (Dubbo3's gRPC-compatible protocol) on the wire, minus HTTP/2 itself.
//!
//! * gRPC message framing: one flag byte (compressed or not), a 4-byte big-endian length, the
//!   message. [`decode_frame`] is incremental like every decoder here: `Ok(None)` means "need
//!   more bytes".
//! * The wrapper messages. A Dubbo3 service without IDL travels over Triple as
//!   `TripleRequestWrapper { serializeType, args, argTypes }`: each argument serialized on its
//!   own (hessian2 by default) with its Java class name beside it, and the answer as
//!   `TripleResponseWrapper { serializeType, data, type }`. Java Dubbo writes hessian2 as the
//!   serialize type `"hessian4"` and reads either name; [`HESSIAN2`] is what we send.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::Error;

/// The `serializeType` Java Dubbo writes for hessian2 in wrapper messages.
pub const HESSIAN2: &str = "hessian4";

/// The content type of Triple calls carrying wrapper (or any protobuf) messages.
pub const CONTENT_TYPE: &str = "application/grpc+proto";

/// Whether a wrapper's serialize type names hessian2 (Java reads both spellings).
pub fn is_hessian2(serialize_type: &str) -> bool {
    matches!(serialize_type, "hessian4" | "hessian2")
}

/// Appends one uncompressed gRPC message frame.
pub fn encode_frame(message: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    let len = u32::try_from(message.len())
        .map_err(|_| Error::InvalidGrpcFrame(format!("{} bytes is too long", message.len())))?;
    out.reserve(5 + message.len());
    out.put_u8(0);
    out.put_u32(len);
    out.put_slice(message);
    Ok(())
}

/// Takes one message frame off the front of `buf`: `Ok(None)` until it is all there. Frames
/// longer than `max` and compressed frames (no encoding is negotiated) are errors.
pub fn decode_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, Error> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let flag = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if flag & 1 == 1 {
        return Err(Error::InvalidGrpcFrame(
            "compressed message, but no encoding was agreed".into(),
        ));
    }
    if flag != 0 {
        return Err(Error::InvalidGrpcFrame(format!(
            "unknown flag byte {flag:#04x}"
        )));
    }
    if len > max {
        return Err(Error::InvalidGrpcFrame(format!(
            "message of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Reads the single message of a unary reply body: exactly one frame, nothing after it.
pub fn single_message(body: Bytes, max: usize) -> Result<Bytes, Error> {
    let mut buf = BytesMut::from(body);
    match decode_frame(&mut buf, max)? {
        Some(message) if buf.is_empty() => Ok(message),
        Some(_) => Err(Error::InvalidGrpcFrame(
            "more than one message in a unary reply".into(),
        )),
        None => Err(Error::InvalidGrpcFrame(format!(
            "the reply ends inside a message ({} bytes)",
            buf.len()
        ))),
    }
}

/// `TripleRequestWrapper`: the arguments of a call to a service without IDL.
#[derive(Clone, PartialEq, Message)]
pub struct RequestWrapper {
    /// `"hessian4"` for hessian2, or another serialization's name.
    #[prost(string, tag = "1")]
    pub serialize_type: String,
    /// Each argument serialized on its own.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub args: Vec<Bytes>,
    /// Each argument's Java class name, `Class.getName()` form (`int`, `[Ljava.lang.String;`).
    #[prost(string, repeated, tag = "3")]
    pub arg_types: Vec<String>,
}

/// `TripleResponseWrapper`: the result of such a call.
#[derive(Clone, PartialEq, Message)]
pub struct ResponseWrapper {
    #[prost(string, tag = "1")]
    pub serialize_type: String,
    /// The result serialized (a hessian2 value for hessian2).
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
    /// The declared return type's class name.
    #[prost(string, tag = "3")]
    pub r#type: String,
}

impl RequestWrapper {
    pub fn decode_message(message: Bytes) -> Result<Self, Error> {
        Self::decode(message).map_err(|e| Error::InvalidWrapper {
            message: "TripleRequestWrapper",
            reason: e.to_string(),
        })
    }
}

impl ResponseWrapper {
    pub fn decode_message(message: Bytes) -> Result<Self, Error> {
        Self::decode(message).map_err(|e| Error::InvalidWrapper {
            message: "TripleResponseWrapper",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::descriptor::JavaType;

    #[test]
    fn frames_round_trip_and_wait_for_bytes() {
        let mut out = BytesMut::new();
        encode_frame(b"hello", &mut out).unwrap();
        encode_frame(b"", &mut out).unwrap();
        let mut partial = BytesMut::from(&out[..7]);
        assert_eq!(decode_frame(&mut partial, 100).unwrap(), None);
        assert_eq!(&decode_frame(&mut out, 100).unwrap().unwrap()[..], b"hello");
        assert_eq!(&decode_frame(&mut out, 100).unwrap().unwrap()[..], b"");
        assert!(out.is_empty());
    }

    #[test]
    fn frames_over_the_limit_or_compressed_are_errors() {
        let mut out = BytesMut::new();
        encode_frame(&[0; 64], &mut out).unwrap();
        assert!(decode_frame(&mut out.clone(), 63).is_err());
        out[0] = 1;
        let err = decode_frame(&mut out, 100).unwrap_err().to_string();
        assert!(err.contains("compressed"), "{err}");
    }

    #[test]
    fn single_message_refuses_extra_or_missing_bytes() {
        let mut out = BytesMut::new();
        encode_frame(b"one", &mut out).unwrap();
        assert_eq!(
            &single_message(out.clone().freeze(), 10).unwrap()[..],
            b"one"
        );
        let mut two = out.clone();
        encode_frame(b"two", &mut two).unwrap();
        assert!(single_message(two.freeze(), 10).is_err());
        assert!(single_message(out.split_to(6).freeze(), 10).is_err());
    }

    /// The bytes protobuf-java writes for a wrapper with one hessian2 string argument: field 1
    /// "hessian4", field 2 the argument, field 3 its class name.
    #[test]
    fn request_wrapper_matches_protobuf_layout() {
        let wrapper = RequestWrapper {
            serialize_type: HESSIAN2.into(),
            args: vec![Bytes::from_static(b"\x02hi")],
            arg_types: vec!["java.lang.String".into()],
        };
        let bytes = wrapper.encode_to_vec();
        let mut expected = vec![0x0a, 8];
        expected.extend_from_slice(b"hessian4");
        expected.extend_from_slice(&[0x12, 3, 0x02, b'h', b'i', 0x1a, 16]);
        expected.extend_from_slice(b"java.lang.String");
        assert_eq!(bytes, expected);
        let back = RequestWrapper::decode_message(Bytes::from(bytes)).unwrap();
        assert_eq!(back, wrapper);
        assert!(ResponseWrapper::decode_message(Bytes::from_static(b"\x0a\xff")).is_err());
    }

    #[test]
    fn class_names_follow_class_get_name() {
        let name = |s: &str| JavaType::from_name(s).unwrap().class_name();
        assert_eq!(name("int"), "int");
        assert_eq!(name("java.lang.String"), "java.lang.String");
        assert_eq!(name("int[]"), "[I");
        assert_eq!(name("java.lang.String[][]"), "[[Ljava.lang.String;");
        assert_eq!(name("java.util.List<a.B>"), "java.util.List");
    }
}
