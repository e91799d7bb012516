//! Dubbo2 message bodies, laid out as Java's `DubboCodec` writes them. Each body is one hessian2
//! stream, so class definitions and references are shared across its values.
//!
//! Request body: dubbo version, service path, service version, method, parameter descriptor, the
//! arguments, then the attachments map. Response body (status OK): a result flag (a hessian int),
//! the value or exception, then attachments when the flag says so. Any other status: an error
//! message string.

use bytes::BytesMut;

use super::frame::Frame;
use super::header::{Header, Status, HEADER_LEN, HESSIAN2};
use crate::descriptor::parse_descriptor;
use crate::hessian::{Decoder, Encoder, Map, Value};
use crate::Error;

/// The protocol version this crate writes. From 2.0.2 on, providers answer with the
/// `*_WITH_ATTACHMENTS` result flags.
pub const DUBBO_VERSION: &str = "2.0.2";

/// The service version Java writes when none is configured.
pub const DEFAULT_SERVICE_VERSION: &str = "0.0.0";

/// Invocation or response attachments: string keys, in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attachments(pub Vec<(String, Value)>);

impl Attachments {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let (key, value) = (key.into(), value.into());
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn write(&self, enc: &mut Encoder<'_>) -> Result<(), Error> {
        enc.write_map_begin(None)?;
        for (k, v) in &self.0 {
            enc.write_string(k);
            enc.write_value(v)?;
        }
        enc.write_end();
        Ok(())
    }

    fn from_value(value: Value) -> Result<Attachments, Error> {
        match value {
            Value::Null => Ok(Attachments::default()),
            Value::Map(Map { entries, .. }) => Ok(Attachments(
                entries
                    .into_iter()
                    // Java's map would accept other keys; no Dubbo writer sends them.
                    .filter_map(|(k, v)| match k {
                        Value::String(k) => Some((k, v)),
                        _ => None,
                    })
                    .collect(),
            )),
            other => Err(Error::Unencodable(format!(
                "attachments must be a map, got {other:?}"
            ))),
        }
    }
}

/// A method call.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub dubbo_version: String,
    /// The service path, normally the interface name.
    pub service: String,
    pub service_version: Option<String>,
    pub method: String,
    /// The parameter descriptor, e.g. `Ljava/lang/String;I`.
    pub parameter_types: String,
    pub arguments: Vec<Value>,
    pub attachments: Attachments,
}

impl Invocation {
    /// A call of `service.method` with the protocol version, service version and attachments
    /// Java's consumer sends. Version `0.0.0` means "no version" to Java providers, and some
    /// other providers match nothing without it.
    pub fn new(service: &str, method: &str, parameter_types: &str, arguments: Vec<Value>) -> Self {
        let mut attachments = Attachments::default();
        attachments.insert("path", service);
        attachments.insert("interface", service);
        attachments.insert("version", DEFAULT_SERVICE_VERSION);
        Invocation {
            dubbo_version: DUBBO_VERSION.to_owned(),
            service: service.to_owned(),
            service_version: Some(DEFAULT_SERVICE_VERSION.to_owned()),
            method: method.to_owned(),
            parameter_types: parameter_types.to_owned(),
            arguments,
            attachments,
        }
    }
}

/// What a request carries.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestKind {
    Invocation(Invocation),
    /// A heartbeat event (its body is a hessian null).
    Heartbeat,
    /// Another event, such as Dubbo's read-only notice (`"R"`).
    Event(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: u64,
    pub two_way: bool,
    pub kind: RequestKind,
}

/// The result flags of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFlag {
    Exception = 0,
    Value = 1,
    NullValue = 2,
    ExceptionWithAttachments = 3,
    ValueWithAttachments = 4,
    NullValueWithAttachments = 5,
}

impl ResponseFlag {
    fn from_i32(flag: i32) -> Option<Self> {
        Some(match flag {
            0 => ResponseFlag::Exception,
            1 => ResponseFlag::Value,
            2 => ResponseFlag::NullValue,
            3 => ResponseFlag::ExceptionWithAttachments,
            4 => ResponseFlag::ValueWithAttachments,
            5 => ResponseFlag::NullValueWithAttachments,
            _ => return None,
        })
    }

    fn has_attachments(self) -> bool {
        self as i32 >= 3
    }
}

/// What a response carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The method returned a value.
    Value(Value),
    /// The method returned `null` (or, from some providers, a falsy value).
    Null,
    /// The method threw: a `Throwable` object, or a plain string from non-Java providers.
    Exception(Value),
    /// The status was not OK; the body is the error message.
    Error(String),
    /// A heartbeat reply.
    Heartbeat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: u64,
    pub status: Status,
    pub outcome: Outcome,
    /// Present when the provider used a `*_WITH_ATTACHMENTS` flag (it does for callers that
    /// sent dubbo version 2.0.2 or later); encoding with `Some` selects those flags.
    pub attachments: Option<Attachments>,
}

impl Request {
    /// Appends the whole frame, header and body, to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Error> {
        let event = !matches!(self.kind, RequestKind::Invocation(_));
        let header = Header {
            is_request: true,
            two_way: self.two_way,
            event,
            serialization: HESSIAN2,
            status: Status(0),
            id: self.id,
            body_len: 0,
        };
        encode_frame(out, header, |enc| match &self.kind {
            RequestKind::Heartbeat => {
                enc.write_null();
                Ok(())
            }
            RequestKind::Event(value) => enc.write_value(value),
            RequestKind::Invocation(inv) => {
                enc.write_string(&inv.dubbo_version);
                enc.write_string(&inv.service);
                match &inv.service_version {
                    Some(v) => enc.write_string(v),
                    None => enc.write_null(),
                }
                enc.write_string(&inv.method);
                enc.write_string(&inv.parameter_types);
                for arg in &inv.arguments {
                    enc.write_value(arg)?;
                }
                inv.attachments.write(enc)
            }
        })
    }

    /// Parses a request frame's body.
    pub fn decode(frame: &Frame) -> Result<Request, Error> {
        let header = &frame.header;
        if !header.event {
            check_serialization(header)?;
        }
        let mut dec = Decoder::new(&frame.body);
        let kind = if header.event {
            // Event bodies in another serialization (Dubbo 3 peers may use fastjson2 even for
            // heartbeats) are still events; only hessian2 ones can be read.
            match (dec.is_at_end(), header.serialization == HESSIAN2) {
                (true, _) | (false, false) => RequestKind::Heartbeat,
                (false, true) => match dec.read_value().map_err(Error::in_body("event"))? {
                    Value::Null => RequestKind::Heartbeat,
                    other => RequestKind::Event(other),
                },
            }
        } else {
            RequestKind::Invocation(decode_invocation(&mut dec)?)
        };
        Ok(Request {
            id: header.id,
            two_way: header.two_way,
            kind,
        })
    }
}

fn decode_invocation(dec: &mut Decoder<'_>) -> Result<Invocation, Error> {
    let text =
        |dec: &mut Decoder<'_>, part| dec.read_string_or_null().map_err(Error::in_body(part));
    let dubbo_version = text(dec, "dubbo version")?.unwrap_or_default();
    let service = text(dec, "service path")?.unwrap_or_default();
    let service_version = text(dec, "service version")?;
    let method = text(dec, "method name")?.unwrap_or_default();
    let parameter_types = text(dec, "parameter types")?.unwrap_or_default();
    let count = parse_descriptor(&parameter_types)
        .map_err(Error::in_body("parameter types"))?
        .len();
    let mut arguments = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        arguments.push(dec.read_value().map_err(Error::in_body("argument"))?);
    }
    // Old consumers may end the body without attachments.
    let attachments = if dec.is_at_end() {
        Attachments::default()
    } else {
        Attachments::from_value(dec.read_value().map_err(Error::in_body("attachments"))?)
            .map_err(Error::in_body("attachments"))?
    };
    Ok(Invocation {
        dubbo_version,
        service,
        service_version,
        method,
        parameter_types,
        arguments,
        attachments,
    })
}

impl Response {
    /// A successful reply carrying `value` (`Null` is sent with the null-value flag).
    pub fn value(id: u64, value: Value, attachments: Option<Attachments>) -> Response {
        let outcome = if value.is_null() {
            Outcome::Null
        } else {
            Outcome::Value(value)
        };
        Response {
            id,
            status: Status::OK,
            outcome,
            attachments,
        }
    }

    /// Appends the whole frame, header and body, to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Error> {
        let event = matches!(self.outcome, Outcome::Heartbeat);
        let status = match self.outcome {
            Outcome::Error(_) => self.status,
            _ => Status::OK,
        };
        let header = Header {
            is_request: false,
            two_way: false,
            event,
            serialization: HESSIAN2,
            status,
            id: self.id,
            body_len: 0,
        };
        encode_frame(out, header, |enc| {
            let attach = self.attachments.is_some();
            let (flag, value) = match &self.outcome {
                Outcome::Heartbeat => {
                    enc.write_null();
                    return Ok(());
                }
                Outcome::Error(message) => {
                    enc.write_string(message);
                    return Ok(());
                }
                Outcome::Value(v) if attach => (ResponseFlag::ValueWithAttachments, Some(v)),
                Outcome::Value(v) => (ResponseFlag::Value, Some(v)),
                Outcome::Null if attach => (ResponseFlag::NullValueWithAttachments, None),
                Outcome::Null => (ResponseFlag::NullValue, None),
                Outcome::Exception(e) if attach => {
                    (ResponseFlag::ExceptionWithAttachments, Some(e))
                }
                Outcome::Exception(e) => (ResponseFlag::Exception, Some(e)),
            };
            enc.write_int(flag as i32);
            if let Some(v) = value {
                enc.write_value(v)?;
            }
            match &self.attachments {
                Some(a) => a.write(enc),
                None => Ok(()),
            }
        })
    }

    /// Parses a response frame's body. Bytes after what the flag announces are ignored, as
    /// Java's decoder ignores them (some providers append an attachments map to error replies).
    pub fn decode(frame: &Frame) -> Result<Response, Error> {
        let header = &frame.header;
        check_serialization(header)?;
        let mut dec = Decoder::new(&frame.body);
        let id = header.id;
        // Events first: some providers reply to heartbeats with status 0 rather than OK.
        if header.event {
            return Ok(Response {
                id,
                status: header.status,
                outcome: Outcome::Heartbeat,
                attachments: None,
            });
        }
        if header.status != Status::OK {
            let message = if dec.is_at_end() {
                String::new()
            } else {
                dec.read_string_or_null()
                    .map_err(Error::in_body("error message"))?
                    .unwrap_or_default()
            };
            return Ok(Response {
                id,
                status: header.status,
                outcome: Outcome::Error(message),
                attachments: None,
            });
        }
        let raw = dec.read_int().map_err(Error::in_body("result flag"))?;
        let flag = ResponseFlag::from_i32(raw).ok_or(Error::UnknownResponseFlag { flag: raw })?;
        let outcome = match flag {
            ResponseFlag::NullValue | ResponseFlag::NullValueWithAttachments => Outcome::Null,
            ResponseFlag::Value | ResponseFlag::ValueWithAttachments => {
                Outcome::Value(dec.read_value().map_err(Error::in_body("result value"))?)
            }
            ResponseFlag::Exception | ResponseFlag::ExceptionWithAttachments => {
                Outcome::Exception(dec.read_value().map_err(Error::in_body("exception"))?)
            }
        };
        let attachments = if flag.has_attachments() {
            let value = dec.read_value().map_err(Error::in_body("attachments"))?;
            Some(Attachments::from_value(value).map_err(Error::in_body("attachments"))?)
        } else {
            None
        };
        Ok(Response {
            id,
            status: header.status,
            outcome,
            attachments,
        })
    }
}

fn check_serialization(header: &Header) -> Result<(), Error> {
    // An empty body needs no serialization; Java clients send heartbeats with other ids too.
    match header.serialization {
        HESSIAN2 => Ok(()),
        _ if header.body_len == 0 => Ok(()),
        id => Err(Error::UnsupportedSerialization { id }),
    }
}

/// Writes `header`, then the body produced by `body`, then patches the body length in place so
/// the body is encoded exactly once, straight into the output buffer.
fn encode_frame(
    out: &mut BytesMut,
    header: Header,
    body: impl FnOnce(&mut Encoder<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = out.len();
    header.write(out);
    let result = body(&mut Encoder::new(out));
    if let Err(e) = result {
        out.truncate(start);
        return Err(e);
    }
    let body_len = out.len() - start - HEADER_LEN;
    let len = u32::try_from(body_len)
        .map_err(|_| Error::Unencodable(format!("a body of {body_len} bytes")))?;
    out[start + 12..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
