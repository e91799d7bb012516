//! One multiplexed Dubbo2 connection.
//!
//! Many calls share the socket: each gets a request id, its frame goes to a writer task (which
//! coalesces whatever is queued into one write), and a reader task hands each response to the
//! caller waiting on that id. Providers' heartbeats are answered by the reader. A provider that
//! breaks the protocol fails the calls in flight with a clear error and closes the connection;
//! nothing it sends can panic the reader.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use dubbo_codec::dubbo2::{
    Frame, FrameDecoder, Invocation, Outcome, Request, RequestKind, Response, Status,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

/// Why a call produced no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("connect to provider failed: {0}")]
    Connect(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("connection closed: {0}")]
    Closed(String),
    #[error("request could not be encoded: {0}")]
    Encode(dubbo_codec::Error),
    #[error("malformed response from provider: {0}")]
    Malformed(dubbo_codec::Error),
}

type Reply = oneshot::Sender<Result<Response, CallError>>;

#[derive(Debug, Default)]
struct Pending {
    calls: HashMap<u64, Reply>,
    /// Heartbeats in the order sent: some providers answer them with request id 0.
    heartbeats: VecDeque<u64>,
    closed: Option<String>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    open: AtomicBool,
    /// The provider announced a graceful shutdown (Dubbo's read-only event): calls in flight
    /// complete, new ones should go elsewhere.
    readonly: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A panic elsewhere cannot leave the map inconsistent: every update is one insert/remove.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self, reason: String) {
        self.open.store(false, Ordering::Release);
        let mut pending = self.lock();
        pending.closed.get_or_insert(reason.clone());
        for (_, reply) in pending.calls.drain() {
            let _ = reply.send(Err(CallError::Closed(reason.clone())));
        }
        pending.heartbeats.clear();
    }
}

/// A connection to one provider; cheap to clone, closed when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    outbound: mpsc::Sender<BytesMut>,
    reader: JoinHandle<()>,
    writer: AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer may be blocked on a peer that stopped reading: abort rather than wait.
        self.reader.abort();
        self.writer.abort();
        self.shared.close("connection dropped".into());
    }
}

impl Connection {
    /// Connects with the given connect timeout; frames larger than `max_frame` are refused.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        connect_timeout: Duration,
        max_frame: usize,
    ) -> Result<Connection, CallError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| CallError::Connect(format!("timed out after {connect_timeout:?}")))?
            .map_err(|e| CallError::Connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| CallError::Connect(e.to_string()))?;
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            next_id: AtomicU64::new(1),
            open: AtomicBool::new(true),
            readonly: AtomicBool::new(false),
        });
        let (outbound, rx) = mpsc::channel(1024);
        let writer = tokio::spawn(write_loop(write, rx, Arc::clone(&shared))).abort_handle();
        let reader = tokio::spawn(read_loop(
            read,
            FrameDecoder::new(max_frame),
            Arc::clone(&shared),
            outbound.clone(),
            writer.clone(),
        ));
        Ok(Connection {
            inner: Arc::new(Inner {
                shared,
                outbound,
                reader,
                writer,
            }),
        })
    }

    /// Whether the connection should take new calls: open, and the provider has not announced
    /// that it is shutting down. A writer task that is gone (its runtime was shut down, so it
    /// never got to mark the connection closed) counts as closed too.
    pub fn is_open(&self) -> bool {
        self.inner.shared.open.load(Ordering::Acquire)
            && !self.inner.shared.readonly.load(Ordering::Acquire)
            && !self.inner.outbound.is_closed()
    }

    /// Whether both handles share one connection.
    pub fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Calls waiting for a response.
    pub fn in_flight(&self) -> usize {
        self.inner.shared.lock().calls.len()
    }

    /// Calls a method and waits for its response, at most `timeout` in all (queueing included).
    pub async fn call(
        &self,
        invocation: Invocation,
        timeout: Duration,
    ) -> Result<Response, CallError> {
        self.send(RequestKind::Invocation(invocation), timeout)
            .await
    }

    /// Sends a heartbeat and waits for the reply.
    pub async fn heartbeat(&self, timeout: Duration) -> Result<(), CallError> {
        self.send(RequestKind::Heartbeat, timeout).await.map(|_| ())
    }

    async fn send(&self, kind: RequestKind, timeout: Duration) -> Result<Response, CallError> {
        let shared = &self.inner.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let heartbeat = matches!(kind, RequestKind::Heartbeat);
        let mut frame = BytesMut::new();
        Request {
            id,
            two_way: true,
            kind,
        }
        .encode(&mut frame)
        .map_err(CallError::Encode)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = shared.lock();
            if let Some(reason) = &pending.closed {
                return Err(CallError::Closed(reason.clone()));
            }
            pending.calls.insert(id, tx);
            if heartbeat {
                pending.heartbeats.push_back(id);
            }
        }
        // Whether the call finishes, times out or its caller goes away, its entry goes too.
        let _forget = Forget { shared, id };
        let exchange = async {
            self.inner
                .outbound
                .send(frame)
                .await
                .map_err(|_| CallError::Closed("writer stopped".into()))?;
            rx.await
                .map_err(|_| CallError::Closed("reader stopped".into()))?
        };
        crate::deadline::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout(timeout)))
    }
}

/// Removes a call's pending entry when the call ends, however it ends.
struct Forget<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut pending = self.shared.lock();
        pending.calls.remove(&self.id);
        pending.heartbeats.retain(|&h| h != self.id);
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<BytesMut>,
    shared: Arc<Shared>,
) {
    while let Some(mut batch) = rx.recv().await {
        // Coalesce what is already queued: one syscall for many small frames under load.
        while batch.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => batch.unsplit(more),
                Err(_) => break,
            }
        }
        if let Err(e) = write.write_all(&batch).await {
            shared.close(format!("write failed: {e}"));
            return;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(
    mut read: OwnedReadHalf,
    mut decoder: FrameDecoder,
    shared: Arc<Shared>,
    outbound: mpsc::Sender<BytesMut>,
    writer: AbortHandle,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let reason = loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                if frame.header.is_request {
                    answer_provider_request(&frame, &shared, &outbound);
                } else {
                    deliver(
                        &shared,
                        Response::decode(&frame).map_err(CallError::Malformed),
                        frame.header.id,
                        frame.header.event,
                    );
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("protocol error from provider: {e}"),
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => break "provider closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("read failed: {e}"),
        }
    };
    shared.close(reason);
    // Nothing more can be answered: release the socket now rather than when the last handle goes.
    writer.abort();
}

/// Providers send requests too: heartbeats (answered), the read-only notice of a graceful
/// shutdown (remembered), and callbacks, which this client does not serve (refused, so the
/// provider does not wait out its timeout). Replies are queued without waiting: the reader must
/// never block on the writer.
fn answer_provider_request(frame: &Frame, shared: &Shared, outbound: &mpsc::Sender<BytesMut>) {
    let header = &frame.header;
    let outcome = match Request::decode(frame).map(|r| r.kind) {
        Ok(RequestKind::Heartbeat) => Outcome::Heartbeat,
        Ok(RequestKind::Event(_)) => {
            shared.readonly.store(true, Ordering::Release);
            Outcome::Heartbeat
        }
        Ok(RequestKind::Invocation(_)) | Err(_) => {
            Outcome::Error("this consumer serves no callbacks".into())
        }
    };
    if !header.two_way {
        return;
    }
    let status = if matches!(outcome, Outcome::Heartbeat) {
        Status::OK
    } else {
        Status::SERVICE_ERROR
    };
    let mut out = BytesMut::new();
    if (Response {
        id: header.id,
        status,
        outcome,
        attachments: None,
    })
    .encode(&mut out)
    .is_ok()
    {
        let _ = outbound.try_send(out);
    }
}

fn deliver(shared: &Shared, result: Result<Response, CallError>, id: u64, event: bool) {
    let mut pending = shared.lock();
    let key = match pending.calls.contains_key(&id) {
        true => Some(id),
        // A heartbeat reply under an id we never used: give it to the oldest heartbeat.
        false if event => pending.heartbeats.front().copied(),
        false => None,
    };
    let Some(key) = key else { return };
    pending.heartbeats.retain(|&h| h != key);
    if let Some(reply) = pending.calls.remove(&key) {
        let _ = reply.send(result);
    }
}
