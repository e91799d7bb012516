//! Reads a streamed request body off the connection as the handler asks for it, and keeps
//! doing so while the answer is written (a handler may stream the body into its answer).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use super::body::{Item, RequestBody};
use super::framing::{Decoder, Step};

/// Spare room asked for when reading a request body.
pub const BODY_READ_SIZE: usize = 16 * 1024;
/// The most unread request body drained to keep a connection.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long draining an unread body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client may send nothing in the middle of a body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Makes room to read into `buf`.
pub fn room(buf: &mut BytesMut, size: usize) {
    if buf.capacity() - buf.len() < size / 4 {
        buf.reserve(size);
    }
}

#[derive(Debug)]
pub struct Pump {
    /// `None` once the handler dropped the body (or the body failed).
    items: Option<mpsc::Sender<Item>>,
    wanted: Arc<Notify>,
    decoder: Decoder,
    /// Bytes of `100 Continue` written (all of them when none is due).
    continue_sent: usize,
    /// The body could not be read to its end: the connection cannot be reused.
    broken: bool,
    /// The answer started while the client still waited for `100 Continue`: it may never
    /// send the body, so the connection cannot be reused.
    continue_skipped: bool,
}

impl Pump {
    /// A pump and the body it feeds; `expect_continue`: the client waits for `100 Continue`.
    pub fn new(decoder: Decoder, expect_continue: bool) -> (Pump, RequestBody) {
        let (items, received) = mpsc::channel(2);
        let wanted = Arc::new(Notify::new());
        let body = RequestBody::streamed(received, Arc::clone(&wanted), decoder.remaining());
        let pump = Pump {
            items: Some(items),
            wanted,
            decoder,
            continue_sent: if expect_continue { 0 } else { CONTINUE.len() },
            broken: false,
            continue_skipped: false,
        };
        (pump, body)
    }

    /// Whether stepping can make progress (a body of known length ends by itself once its
    /// bytes are out; a chunked one is told its end).
    pub fn is_active(&self) -> bool {
        self.items.is_some() && !self.broken && !self.decoder.is_done()
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub fn is_done(&self) -> bool {
        self.decoder.is_done()
    }

    /// The body cannot go on: without its sender it ends as "cut short" (after the error
    /// message, when one was sent).
    fn fail(&mut self) {
        self.broken = true;
        self.items = None;
    }

    /// One step: say `100 Continue` once asked, then pass on one piece of body (or its end).
    /// Cancel-safe: dropped whenever the handler answers or an answer frame is ready.
    pub async fn step<IO>(&mut self, io: &mut IO, buf: &mut BytesMut)
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        if self.continue_sent < CONTINUE.len() {
            if self.continue_sent == 0 {
                self.wanted.notified().await;
            }
            match io.write(&CONTINUE[self.continue_sent..]).await {
                Ok(n) if n > 0 => self.continue_sent += n,
                _ => self.fail(),
            }
            return;
        }
        let Some(items) = &self.items else {
            return std::future::pending().await;
        };
        let Ok(permit) = items.reserve().await else {
            self.items = None;
            return;
        };
        let next = loop {
            match self.decoder.step(buf) {
                Ok(Step::Data(data)) => break Ok(Item::Data(data)),
                Ok(Step::Again) => continue,
                Ok(Step::End) => break Ok(Item::End),
                Ok(Step::Read) => {}
                Err(e) => break Err(format!("invalid request body: {e}")),
            }
            room(buf, BODY_READ_SIZE);
            match tokio::time::timeout(BODY_READ_TIMEOUT, io.read_buf(buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => {
                    break Err("the client closed the connection in the middle of the body".into())
                }
                Err(_) => break Err(format!("the client sent no body for {BODY_READ_TIMEOUT:?}")),
            }
        };
        match next {
            Ok(item) => permit.send(item),
            Err(message) => {
                permit.send(Item::Error(message));
                self.fail();
            }
        }
    }

    /// Finishes a half-written `100 Continue` before the answer starts.
    pub async fn finish_continue<IO>(&mut self, io: &mut IO) -> io::Result<()>
    where
        IO: AsyncWrite + Unpin,
    {
        if self.continue_sent > 0 && self.continue_sent < CONTINUE.len() {
            io.write_all(&CONTINUE[self.continue_sent..]).await?;
            self.continue_sent = CONTINUE.len();
        }
        Ok(())
    }

    /// The final answer is about to be written: a `100 Continue` not yet begun must never
    /// follow it.
    pub fn answer_started(&mut self) {
        if self.continue_sent == 0 {
            self.continue_sent = CONTINUE.len();
            self.continue_skipped = true;
        }
    }

    /// Whether what is left of the body can be read past to reuse the connection.
    pub fn drainable(&self) -> bool {
        if self.broken || self.continue_skipped {
            return false;
        }
        if self.decoder.is_done() {
            return true;
        }
        self.decoder
            .remaining()
            .is_none_or(|rest| rest <= DRAIN_LIMIT)
    }

    /// Reads past the rest of the body (at most [`DRAIN_LIMIT`] bytes, briefly): whether the
    /// connection is ready for the next request.
    pub async fn drain<IO>(mut self, io: &mut IO, buf: &mut BytesMut) -> bool
    where
        IO: AsyncRead + Unpin,
    {
        if self.broken {
            return false;
        }
        self.items = None;
        let work = async {
            let mut skipped = 0u64;
            loop {
                match self.decoder.step(buf) {
                    Ok(Step::Data(data)) => skipped += data.len() as u64,
                    Ok(Step::Again) => {}
                    Ok(Step::End) => return true,
                    Ok(Step::Read) => {
                        room(buf, BODY_READ_SIZE);
                        if !matches!(io.read_buf(buf).await, Ok(n) if n > 0) {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
                if skipped > DRAIN_LIMIT {
                    return false;
                }
            }
        };
        tokio::time::timeout(DRAIN_TIMEOUT, work)
            .await
            .unwrap_or(false)
    }
}
