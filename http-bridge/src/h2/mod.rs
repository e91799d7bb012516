//! Our own HTTP/2 client for Triple and gRPC providers (RFC 9113, cleartext with prior
//! knowledge, as gRPC uses it).
//!
//! hyper's client spent most of the gateway's user time on a gRPC call: a connection task and
//! a pool in front of every request, stream bookkeeping behind reference-counted handles, and
//! header maps rebuilt frame by frame. This one is built for the gateway's case: each event
//! loop owns its connections, a call writes its HEADERS (and a whole small message) straight
//! into the connection's write buffer, and one writer task sends everything queued in a turn of
//! the event loop with one system call.
//!
//! * [`Client`]: connections by provider address, opened on first use, closed after 90 s
//!   without calls, and replaced when they fail or the provider sends GOAWAY (a call it did not
//!   take goes once more when its message was whole); [`Client::request`] streams both ways,
//!   so it proxies every kind of gRPC call. A provider gone silent is found by the kernel
//!   (`TCP_USER_TIMEOUT`, keep-alive) rather than by frequent pings, which gRPC servers punish.
//! * `conn`: one connection's shared state (streams, windows, settings, write buffer);
//!   [`flow`]: the connection's receive window, shared with the server.
//! * `driver`: the reader task (frames to calls) and the writer task; `response`: header
//!   blocks read as response heads and trailers.
//! * `stream`: opening a stream, pumping a request body under flow control, and
//!   [`RecvBody`], the answer's body (messages, then trailers).
//! * [`hpack`], `huffman`, [`frame`]: the wire formats, and [`inbound`]: arriving frames split
//!   off the read buffer and checked as far as no connection state is needed; all shared with
//!   the gateway's HTTP/2 server.
//!
//! What it does not do: TLS, server push (disabled in our SETTINGS), priorities (ignored), and
//! upgrades from HTTP/1.1.

mod conn;
mod driver;
pub mod flow;
pub mod frame;
pub mod hpack;
mod huffman;
mod huffman_table;
pub mod inbound;
mod response;
mod static_table;
mod stream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tokio::net::TcpStream;

use crate::triple::Body;
use conn::{Shared, MAX_HEADER_LIST};
use flow::STREAM_WINDOW;
pub use stream::RecvBody;

/// How a request failed.
#[derive(Debug, Clone)]
pub struct ClientError {
    kind: ErrorKind,
    message: Arc<str>,
    /// The provider's RST_STREAM code, when it reset the stream.
    code: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    /// The provider could not be reached.
    Connect,
    /// The provider did not take the call (refused, or GOAWAY before it): safe to retry.
    NotProcessed,
    /// The connection failed after the call was sent: it may have run.
    Lost,
    /// The provider reset the stream.
    Reset,
    /// The provider broke the protocol.
    Protocol,
}

impl ClientError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ClientError {
            kind,
            message: Arc::from(message.into()),
            code: None,
        }
    }
    fn connect(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connect, message)
    }
    fn not_processed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotProcessed, message)
    }
    fn lost(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Lost, message)
    }
    fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }
    fn reset(code: u32) -> Self {
        let name = match code {
            0 => "NO_ERROR",
            1 => "PROTOCOL_ERROR",
            2 => "INTERNAL_ERROR",
            3 => "FLOW_CONTROL_ERROR",
            5 => "STREAM_CLOSED",
            6 => "FRAME_SIZE_ERROR",
            8 => "CANCEL",
            9 => "COMPRESSION_ERROR",
            11 => "ENHANCE_YOUR_CALM",
            _ => "an error",
        };
        ClientError {
            code: Some(code),
            ..Self::new(
                ErrorKind::Reset,
                format!("the provider reset the stream ({name}, code {code})"),
            )
        }
    }

    /// The code the provider reset the stream with, to pass on to a caller that is proxied.
    pub fn reset_code(&self) -> Option<u32> {
        self.code
    }

    /// Nothing reached the provider, or it says it did not take the call: another endpoint
    /// (or a new connection) may be tried.
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect | ErrorKind::NotProcessed)
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

/// An HTTP/2 client: one connection per provider address. Cheap to clone (clones share the
/// connections). Give each event loop its own, so a connection is only driven by one thread.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    conns: Mutex<HashMap<SocketAddr, Arc<Shared>>>,
    /// One connect at a time per address: calls arriving meanwhile wait for it, and learn
    /// of its failure for a moment after (rather than each trying again in turn).
    connecting: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<Option<Failed>>>>>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("h2::Client").finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Connections close once their last stream ends.
        let conns = self.conns.get_mut().map(std::mem::take).unwrap_or_default();
        for conn in conns.into_values() {
            retire(&conn);
        }
    }
}

impl Client {
    pub fn new(connect_timeout: Duration) -> Self {
        Client {
            inner: Arc::new(Inner {
                conns: Mutex::new(HashMap::new()),
                connecting: Mutex::new(HashMap::new()),
                connect_timeout,
            }),
        }
    }

    /// Sends `request` to the provider at `addr`: the answer's head once it arrives, with its
    /// body streaming behind. The request's URI supplies `:path` and `:authority`; the body
    /// streams under the provider's flow control while the answer comes back.
    pub async fn request(
        &self,
        addr: SocketAddr,
        request: Request<Body>,
    ) -> Result<Response<RecvBody>, ClientError> {
        let (parts, body) = request.into_parts();
        let mut outgoing = stream::Outgoing::new(parts, body).await?;
        // A call the provider did not take (a connection found closed, a refused stream, a
        // GOAWAY) goes once more on a new connection, when it can be sent again.
        for attempt in 0..2 {
            let conn = self.connection(addr).await?;
            match stream::open(&conn, &mut outgoing).await {
                Err(e)
                    if e.kind == ErrorKind::NotProcessed && attempt == 0 && outgoing.rewind() =>
                {
                    continue;
                }
                result => return result,
            }
        }
        Err(ClientError::not_processed(format!(
            "provider {addr}: no connection would take the call"
        )))
    }

    /// The open connection to `addr`, made if there is none.
    async fn connection(&self, addr: SocketAddr) -> Result<Arc<Shared>, ClientError> {
        if let Some(conn) = self.usable(addr) {
            return Ok(conn);
        }
        let gate = {
            let mut connecting = self
                .inner
                .connecting
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            Arc::clone(connecting.entry(addr).or_default())
        };
        let mut turn = gate.lock().await;
        if let Some(conn) = self.usable(addr) {
            return Ok(conn);
        }
        if let Some(failed) = turn.as_ref().filter(|f| f.at.elapsed() < CONNECT_BACKOFF) {
            return Err(failed.error.clone());
        }
        let conn = match connect(addr, self.inner.connect_timeout).await {
            Ok(conn) => conn,
            Err(error) => {
                *turn = Some(Failed {
                    at: std::time::Instant::now(),
                    error: error.clone(),
                });
                return Err(error);
            }
        };
        *turn = None;
        let previous = self
            .inner
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr, Arc::clone(&conn));
        if let Some(old) = previous {
            retire(&old);
        }
        self.prune();
        Ok(conn)
    }

    /// Forgets connections that take no new calls (providers come and go: addresses must not
    /// pile up), and connect gates nobody holds.
    fn prune(&self) {
        let mut conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|_, c| {
            let keep = c.is_open();
            if !keep {
                retire(c);
            }
            keep
        });
        let mut connecting = self
            .inner
            .connecting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        connecting.retain(|addr, gate| conns.contains_key(addr) || Arc::strong_count(gate) > 1);
    }

    fn usable(&self, addr: SocketAddr) -> Option<Arc<Shared>> {
        let conns = self.inner.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.get(&addr).filter(|c| c.is_open()).cloned()
    }
}

/// A connect that failed, remembered for [`CONNECT_BACKOFF`].
struct Failed {
    at: std::time::Instant,
    error: ClientError,
}

/// How long a failed connect answers for its address: calls queued behind it fail at once
/// (Unavailable) instead of each waiting out another connect timeout.
const CONNECT_BACKOFF: Duration = Duration::from_millis(500);

/// A connection no longer in the client's map closes once its last stream ends.
fn retire(conn: &Shared) {
    conn.lock().client_gone = true;
    conn.wake_writer.notify_one();
}

/// Opens a connection: the preface, our SETTINGS and a larger connection window go out
/// before any call; the provider's SETTINGS are applied whenever they arrive.
async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Arc<Shared>, ClientError> {
    let socket = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            ClientError::connect(format!("provider {addr}: no connection within {timeout:?}"))
        })?
        .map_err(|e| ClientError::connect(format!("provider {addr}: {e}")))?;
    // Small messages go out at once.
    let _ = socket.set_nodelay(true);
    // A provider that vanished (or a NAT that forgot us) is found by TCP keep-alive while the
    // connection is idle; gRPC servers refuse frequent HTTP/2 pings from clients.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_tcp_keepalive(&keepalive);
    // A provider gone silent mid-call (host down, path cut) is found by the kernel: data left
    // unacknowledged this long closes the connection, and every call on it fails.
    let _ = sock.set_tcp_user_timeout(Some(Duration::from_secs(30)));
    let shared = Shared::new();
    {
        let mut guard = shared.lock();
        let st = &mut *guard;
        let out = &mut st.out;
        out.extend_from_slice(frame::PREFACE);
        frame::put_settings(
            out,
            &[
                (frame::SETTINGS_ENABLE_PUSH, 0),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
            ],
        );
        st.recv.open(out);
    }
    let (read, write) = socket.into_split();
    tokio::spawn(driver::write_loop(Arc::clone(&shared), write));
    tokio::spawn(driver::read_loop(Arc::clone(&shared), read));
    Ok(shared)
}
