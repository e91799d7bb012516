//! Our own HTTP/2 server (RFC 9113), for clients that open with the HTTP/2 preface, with or
//! without TLS: gRPC and Triple callers above all, and any HTTP/2 client of the JSON routes.
//!
//! hyper's HTTP/2 server spent about as much of the gateway's time on a proxied gRPC call as
//! everything else in user space. Here each connection is one reader (this task) and one
//! writer task; each stream is answered on its own task, which writes its HEADERS — and a
//! whole small body — straight into the connection's write buffer, and the writer sends all
//! that a turn of the event loop queued with one system call. The wire formats (frames,
//! HPACK) are shared with our HTTP/2 client, [`http_bridge::h2`].
//!
//! Behaviour, besides the RFC:
//! - Settings: up to 256 concurrent streams, 1 MiB window per stream and 8 MiB per
//!   connection, header lists up to the listener's `max_header_bytes` (a larger request head
//!   is answered 431).
//! - A malformed request resets its stream (PROTOCOL_ERROR); a broken connection (bad frames,
//!   bad HPACK, flow-control violations) is closed with GOAWAY and the error code.
//! - A stream the client resets drops its handler, which cancels the upstream call.
//! - Abuse (streams cancelled young before any answer, streams reset for the client's errors,
//!   malformed requests, empty frames) is counted per 10 s: past 1,000 the connection drains,
//!   past 2,000 it is cut. A client that does not read stops being read past 1 MiB queued.
//! - A connection with no stream open for the listener's idle timeout (`limits.idle_timeout_ms`,
//!   60 s by default) is closed as when the gateway stops, below. One with streams open but
//!   quiet for 60 s is pinged, and closed if the ping goes unanswered for 20 s.
//! - When the gateway stops: GOAWAY in two phases (announce with a PING, then name the last
//!   stream taken once the PING is answered, so requests already on the wire are served),
//!   then the connection closes once its last stream is answered (the drain timeout bounds
//!   the wait).

mod body;
mod reader;
mod request;
mod respond;
mod state;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_bridge::h2::frame;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::watch;

pub use body::RecvBody;
use http_bridge::h2::flow::STREAM_WINDOW;
use reader::Reader;
use state::{Shared, MAX_STREAMS};

use crate::http1::conn::Context;

/// Keep-alive: checked every tick; pinged after this many quiet ticks, closed when a ping
/// goes unanswered for two.
const TICK: Duration = Duration::from_secs(10);
const IDLE_TICKS: u32 = 6;
/// Bytes queued for a client beyond which we stop reading from it.
const OUT_CAP: usize = 1 << 20;
/// How long the writer may be stuck on a client that does not read.
const WRITE_STALL: Duration = Duration::from_secs(30);
/// How long a closed connection reads and drops what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
/// How long the rest of the preface may take.
const PREFACE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop waits for the client's answer to its PING before naming the
/// last stream taken.
const STOP_PING_WAIT: Duration = Duration::from_secs(1);

/// Serves one HTTP/2 connection; `read` holds the bytes already read (the preface onwards).
pub async fn serve<IO>(io: IO, read: Bytes, cx: Context, mut stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Context {
        handler,
        remote,
        max_head,
        idle,
    } = cx;
    let (mut rd, wr) = tokio::io::split(io);
    let mut buf = BytesMut::with_capacity(16 << 10);
    buf.extend_from_slice(&read);
    // The preface (RFC 9113 §3.4): the connection was recognised by its first line; the rest
    // must follow promptly.
    let preface = async {
        while buf.len() < frame::PREFACE.len() {
            match rd.read_buf(&mut buf).await {
                Ok(n) if n > 0 => {}
                _ => return false,
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(PREFACE_TIMEOUT, preface).await,
        Ok(true)
    ) {
        return;
    }
    if !buf.starts_with(frame::PREFACE) {
        return;
    }
    let _ = buf.split_to(frame::PREFACE.len());
    let shared = Arc::new(Shared::new());
    {
        let mut guard = shared.lock();
        let st = &mut *guard;
        let out = &mut st.out;
        frame::put_settings(
            out,
            &[
                (frame::SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (
                    frame::SETTINGS_MAX_HEADER_LIST_SIZE,
                    u32::try_from(max_head).unwrap_or(u32::MAX),
                ),
            ],
        );
        st.recv.open(out);
    }
    let writer = tokio::spawn(write_loop(Arc::clone(&shared), wr));
    // However the reader ends (a panic included), the writer is told to finish.
    let _closing = Closing(Arc::clone(&shared));
    let mut reader = Reader::new(Arc::clone(&shared), handler, remote, max_head);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    let (mut reads, mut seen, mut quiet) = (0u64, 0u64, 0u32);
    // Armed when stopping: the final GOAWAY goes out when it fires, if the PING was not
    // answered first.
    let final_goaway = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(final_goaway);
    let mut final_goaway_armed = false;
    // Checks, when it fires, whether the connection has had no stream open for `idle`.
    let idle_check = tokio::time::sleep(idle);
    tokio::pin!(idle_check);
    loop {
        let result = reader.frames(&mut buf);
        reader.wake.drain(..).for_each(std::task::Waker::wake);
        if let Err((code, message)) = result {
            tracing::debug!(%remote, code, %message, "HTTP/2 connection error");
            shared.lock().goaway(code);
            break;
        }
        {
            let st = shared.lock();
            if st.draining && st.streams.is_empty() {
                break;
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 << 10);
        }
        // A client that sends but does not read (floods of pings, settings or resets, or
        // requests whose answers it never takes) is not buffered for: reading pauses until
        // the writer catches up.
        if shared.lock().out.len() > OUT_CAP {
            let resumed = tokio::time::timeout(WRITE_STALL, async {
                while shared.lock().out.len() > OUT_CAP && !shared.lock().closed {
                    shared.wake_reader.notified().await;
                }
            });
            // Stuck, or the writer failed (what it left queued will never drain).
            if resumed.await.is_err() || shared.lock().closed {
                break;
            }
            continue;
        }
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(n) if n > 0 => reads += 1,
                _ => break,
            },
            _ = shared.wake_reader.notified() => {
                if shared.lock().closed {
                    break; // the writer failed
                }
            }
            _ = ticker.tick() => {
                shared.lock().strikes = 0;
                if reads != seen {
                    (seen, quiet) = (reads, 0);
                    shared.lock().ping_outstanding = false;
                    continue;
                }
                quiet += 1;
                let mut st = shared.lock();
                if st.ping_outstanding && quiet >= IDLE_TICKS + 2 {
                    break; // the client is gone without a word
                }
                if quiet == IDLE_TICKS {
                    frame::put_ping(&mut st.out, false, *b"gateway!");
                    st.ping_outstanding = true;
                    drop(st);
                    shared.wake_writer.notify_one();
                }
            }
            _ = &mut final_goaway, if final_goaway_armed => {
                // The client never answered the stop PING.
                final_goaway_armed = false;
                let mut st = shared.lock();
                if !st.draining {
                    st.final_goaway();
                    drop(st);
                    shared.wake_writer.notify_one();
                }
            }
            _ = &mut idle_check, if !shared.lock().stopping => {
                let now = tokio::time::Instant::now();
                match shared.lock().idle_since {
                    Some(since) if now >= since + idle => {}
                    Some(since) => {
                        idle_check.as_mut().reset(since + idle);
                        continue;
                    }
                    None => {
                        idle_check.as_mut().reset(now + idle);
                        continue;
                    }
                }
                tracing::debug!(%remote, "HTTP/2 connection idle, closing");
                begin_stop(&shared);
                final_goaway.as_mut().reset(now + STOP_PING_WAIT);
                final_goaway_armed = true;
            }
            _ = stop.wait_for(|s| *s), if !shared.lock().stopping => {
                begin_stop(&shared);
                final_goaway.as_mut().reset(tokio::time::Instant::now() + STOP_PING_WAIT);
                final_goaway_armed = true;
            }
        }
    }
    // Over: streams still running have nowhere to answer.
    let mut wake = Vec::new();
    {
        let mut st = shared.lock();
        st.closed = true;
        for (_, mut s) in st.streams.drain() {
            if let Some(task) = s.task.take() {
                task.abort();
            }
            wake.extend(s.recv_waker.take());
            wake.extend(s.send_waker.take());
        }
    }
    wake.into_iter().for_each(std::task::Waker::wake);
    shared.wake_writer.notify_one();
    // The last frames (GOAWAY, final answers) go out, unless the client stopped reading.
    let abort = writer.abort_handle();
    if tokio::time::timeout(WRITE_STALL, writer).await.is_err() {
        abort.abort();
        return;
    }
    // Closed gracefully: what the client still sends is read and dropped for a moment, so
    // that our last frames are not lost to a reset.
    let linger = async {
        let mut sink = [0u8; 4096];
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
}

/// The first phase of a graceful close, as RFC 9113 §6.8 suggests: announce it (GOAWAY with
/// the largest stream id, and a PING); once the PING is answered, or after
/// [`STOP_PING_WAIT`], the final GOAWAY names the last stream taken.
fn begin_stop(shared: &Shared) {
    let mut st = shared.lock();
    st.stopping = true;
    if !st.draining {
        frame::put_goaway(&mut st.out, 0x7fff_ffff, frame::NO_ERROR);
        frame::put_ping(&mut st.out, false, state::DRAIN_PING);
    }
    drop(st);
    shared.wake_writer.notify_one();
}

/// Tells the writer to finish when the reader is done, however that happens.
struct Closing(Arc<Shared>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.wake_writer.notify_one();
    }
}

/// Writes whatever is queued, one write per wake-up, until the connection closes.
async fn write_loop<IO: AsyncWrite>(shared: Arc<Shared>, mut socket: WriteHalf<IO>) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let closed = {
            let mut st = shared.lock();
            std::mem::swap(&mut st.out, &mut buf);
            st.closed
        };
        if !buf.is_empty() {
            // Flushed too: TLS may hold records back otherwise.
            if socket.write_all(&buf).await.is_err() || socket.flush().await.is_err() {
                break;
            }
            if buf.len() > OUT_CAP {
                shared.wake_reader.notify_one(); // a reader paused for us may go on
            }
            buf.clear();
            if buf.capacity() > 1 << 20 {
                buf = BytesMut::with_capacity(4096);
            }
        } else if closed {
            break;
        } else {
            shared.wake_writer.notified().await;
        }
    }
    let _ = socket.shutdown().await;
    shared.lock().closed = true;
    shared.wake_reader.notify_one();
}
