//! A frame-by-frame HTTP/2 client for the gateway's own HTTP/2 server, and a gateway in front
//! of Node's `http` server (`peers/node/http_upstream.js`) to speak to: shared by
//! `http2_server.rs` and `http2_lifecycle.rs`.
#![allow(dead_code)] // each suite uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use figment::providers::{Format, Yaml};
use figment::Figment;
use http_bridge::h2::hpack::{Decoder, Encoder, FieldName, Indexing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const END_STREAM: u8 = 1;
pub const END_HEADERS: u8 = 4;

pub async fn gateway(node: &std::path::Path) -> (gateway::app::Running, tokio::process::Child) {
    gateway_with_limits(node, "{max_header_bytes: 4096}").await
}

/// The same, with `limits` as given (YAML).
pub async fn gateway_with_limits(
    node: &std::path::Path,
    limits: &str,
) -> (gateway::app::Running, tokio::process::Child) {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node.join("http_upstream.js"))
        .arg("5000")
        .arg(testkit::peers::free_port().to_string());
    let (port, upstream) = testkit::peers::spawn_listening(command).await;
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         workers: 1\n\
         limits: {limits}\n\
         clusters: [{{name: node, protocol: http, endpoints: ['127.0.0.1:{port}']}}]\n\
         http_routes: [{{prefix: /big, cluster: node}}, {{prefix: /echo, cluster: node}}, {{prefix: /chunked, cluster: node}}, {{prefix: /slow, cluster: node}}, {{prefix: /aborted, cluster: node}}]\n"
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    (gateway::app::start(config).await.expect("start"), upstream)
}

#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// A client connection, frame by frame.
pub struct Client {
    pub socket: TcpStream,
    pub buf: BytesMut,
    pub encoder: Encoder,
    pub decoder: Decoder,
    /// The server's SETTINGS, as (id, value).
    pub settings: Vec<(u16, u32)>,
}

impl Client {
    /// Connects with the preface and `settings`, and reads the server's SETTINGS.
    pub async fn connect(addr: SocketAddr, settings: &[(u16, u32)]) -> Client {
        let socket = TcpStream::connect(addr).await.expect("connect");
        let mut c = Client {
            socket,
            buf: BytesMut::new(),
            encoder: Encoder::default(),
            decoder: Decoder::new(4096),
            settings: Vec::new(),
        };
        c.socket
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        let payload: Vec<u8> = settings
            .iter()
            .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
            .collect();
        c.send(SETTINGS, 0, 0, &payload).await;
        let first = c.frame().await;
        assert_eq!(
            (first.kind, first.stream),
            (SETTINGS, 0),
            "the server's SETTINGS first"
        );
        c.settings = first
            .payload
            .chunks(6)
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]),
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                )
            })
            .collect();
        c
    }

    pub async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        self.socket.write_all(&out).await.expect("write");
    }

    pub async fn frame(&mut self) -> Frame {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head = self.buf.split_to(9);
                    return Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]),
                        payload: self.buf.split_to(len).to_vec(),
                    };
                }
            }
            let n =
                tokio::time::timeout(Duration::from_secs(5), self.socket.read_buf(&mut self.buf))
                    .await
                    .expect("a frame within 5 s")
                    .expect("read");
            assert!(n > 0, "the server closed the connection");
        }
    }

    /// Reads until the server closes the connection, for at most `secs`: `Err` if it stays
    /// open, else how the read ended (a reset counts as closed).
    pub async fn closed_within(
        &mut self,
        secs: u64,
    ) -> Result<std::io::Result<usize>, tokio::time::error::Elapsed> {
        let mut rest = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(secs),
            self.socket.read_to_end(&mut rest),
        )
        .await
    }

    /// The next frame on `stream` (or of `kind` on stream 0), skipping the rest.
    pub async fn next(&mut self, stream: u32, kind: Option<u8>) -> Frame {
        loop {
            let f = self.frame().await;
            if f.stream == stream && kind.is_none_or(|k| k == f.kind) {
                return f;
            }
        }
    }

    /// Sends a request's HEADERS: the pseudo-headers, then `extra`.
    pub async fn request(
        &mut self,
        stream: u32,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        end: bool,
    ) {
        let mut block = BytesMut::new();
        self.encoder.begin(&mut block);
        for (n, v) in [
            (":method", method),
            (":scheme", "http"),
            (":authority", "gw"),
            (":path", path),
        ]
        .iter()
        .chain(extra)
        {
            self.encoder
                .field(n.as_bytes(), v.as_bytes(), Indexing::Yes, &mut block);
        }
        let flags = END_HEADERS | if end { END_STREAM } else { 0 };
        self.send(HEADERS, flags, stream, &block).await;
    }

    /// The `:status` of a HEADERS frame, and its fields.
    pub fn head(&mut self, f: &Frame) -> (u16, Vec<(String, String)>) {
        assert_eq!(f.kind, HEADERS, "{f:?}");
        let (mut status, mut fields) = (0, Vec::new());
        self.decoder
            .decode(&f.payload, |field| match field.name {
                FieldName::Status => {
                    status = field.value.to_str().unwrap_or("0").parse().unwrap_or(0)
                }
                FieldName::Header(n) => fields.push((
                    n.to_string(),
                    field.value.to_str().unwrap_or("?").to_owned(),
                )),
                FieldName::OtherPseudo(_) => panic!("a pseudo-header in a response"),
                FieldName::Malformed(why) => panic!("a malformed field in a response: {why}"),
            })
            .expect("valid HPACK");
        (status, fields)
    }

    /// Reads a whole answer on `stream`: (status, body).
    pub async fn answer(&mut self, stream: u32) -> (u16, Vec<u8>) {
        let head = self.next(stream, Some(HEADERS)).await;
        let status = self.head(&head).0;
        let mut body = Vec::new();
        if head.flags & END_STREAM != 0 {
            return (status, body);
        }
        loop {
            let f = self.next(stream, None).await;
            match f.kind {
                // Answers here are small: the default window holds them.
                DATA => body.extend_from_slice(&f.payload),
                HEADERS => {
                    self.head(&f);
                }
                other => panic!("frame type {other} on stream {stream}"),
            }
            if f.flags & END_STREAM != 0 {
                return (status, body);
            }
        }
    }
}

pub fn node_dir() -> Option<std::path::PathBuf> {
    testkit::peers::require("node", testkit::peers::node_dir())
}
