//! Protobuf descriptors fetched from a provider by gRPC server reflection: the file that
//! defines a symbol (a service) and every file it imports, as serialized
//! `FileDescriptorProto`s ready for a descriptor pool.
//!
//! Reflection is a bidirectional stream, but each request stands alone, so each goes as its own
//! one-message call. `grpc.reflection.v1` is asked first and `v1alpha` (the same messages; what
//! Python's grpcio-reflection serves) when v1 is UNIMPLEMENTED.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::h2::Client;
use bytes::Bytes;
use http::HeaderMap;
use prost::Message;

use super::{TripleError, UnaryCall};

const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// A ceiling on the files one symbol may pull in (imports included).
const MAX_FILES: usize = 512;
/// A ceiling on one reflection reply.
const MAX_REPLY: usize = 16 << 20;

#[derive(Clone, PartialEq, Message)]
struct ReflectionRequest {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(oneof = "Ask", tags = "3, 4")]
    ask: Option<Ask>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Ask {
    #[prost(string, tag = "3")]
    FileByFilename(String),
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
}

#[derive(Clone, PartialEq, Message)]
struct ReflectionResponse {
    #[prost(oneof = "Answer", tags = "4, 7")]
    answer: Option<Answer>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Answer {
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

#[derive(Clone, PartialEq, Message)]
struct FileDescriptorResponse {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    file_descriptor_proto: Vec<Bytes>,
}

#[derive(Clone, PartialEq, Message)]
struct ErrorResponse {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// The two fields of a `FileDescriptorProto` needed to follow imports.
#[derive(Clone, PartialEq, Message)]
struct FileHead {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, repeated, tag = "3")]
    dependency: Vec<String>,
}

/// The files defining `symbol` and all they import, each a serialized `FileDescriptorProto`.
pub async fn files_for_symbol(
    client: &Client,
    addr: SocketAddr,
    symbol: &str,
    timeout: Duration,
) -> Result<Vec<Bytes>, TripleError> {
    let mut path = V1;
    let first = match ask(
        client,
        addr,
        path,
        Ask::FileContainingSymbol(symbol.into()),
        timeout,
    )
    .await
    {
        Err(TripleError::Status { code: 12, .. }) => {
            path = V1ALPHA;
            ask(
                client,
                addr,
                path,
                Ask::FileContainingSymbol(symbol.into()),
                timeout,
            )
            .await?
        }
        other => other?,
    };
    let mut files: HashMap<String, Bytes> = HashMap::new();
    let mut wanted: Vec<String> = Vec::new();
    let mut asked: HashSet<String> = HashSet::new();
    let take = |batch: Vec<Bytes>, files: &mut HashMap<String, Bytes>, wanted: &mut Vec<String>| {
        for bytes in batch {
            let head = FileHead::decode(bytes.clone()).map_err(|e| {
                TripleError::Malformed(format!("reflection sent a bad FileDescriptorProto: {e}"))
            })?;
            wanted.extend(head.dependency.iter().cloned());
            files.insert(head.name, bytes);
        }
        Ok::<_, TripleError>(())
    };
    take(first, &mut files, &mut wanted)?;
    while let Some(name) = wanted.pop() {
        if files.contains_key(&name) || !asked.insert(name.clone()) {
            continue;
        }
        if files.len() >= MAX_FILES {
            return Err(TripleError::Malformed(format!(
                "{symbol} imports more than {MAX_FILES} files"
            )));
        }
        let batch = ask(client, addr, path, Ask::FileByFilename(name), timeout).await?;
        take(batch, &mut files, &mut wanted)?;
    }
    Ok(files.into_values().collect())
}

/// One reflection request and its file descriptors.
async fn ask(
    client: &Client,
    addr: SocketAddr,
    path: &str,
    what: Ask,
    timeout: Duration,
) -> Result<Vec<Bytes>, TripleError> {
    let message = ReflectionRequest {
        host: String::new(),
        ask: Some(what),
    }
    .encode_to_vec();
    let reply = UnaryCall {
        path,
        content_type: "application/grpc",
        headers: HeaderMap::new(),
        message: &message,
        timeout,
        max_reply: MAX_REPLY,
    }
    .send(client, addr)
    .await?;
    let response = ReflectionResponse::decode(reply)
        .map_err(|e| TripleError::Malformed(format!("bad reflection reply: {e}")))?;
    match response.answer {
        Some(Answer::Files(f)) => Ok(f.file_descriptor_proto),
        // NOT_FOUND and friends, as a gRPC status.
        Some(Answer::Error(e)) => Err(TripleError::Status {
            code: u32::try_from(e.error_code).unwrap_or(2),
            message: e.error_message,
        }),
        None => Err(TripleError::Malformed(
            "reflection reply without file descriptors".into(),
        )),
    }
}
