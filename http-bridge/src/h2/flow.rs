//! Connection-level receive flow control, the same for our HTTP/2 client and server: how much
//! the peer may still send, and when to give it more.
//!
//! Window is given back as data arrives, whatever becomes of it — the streams' own windows
//! hold back a slow reader, and one slow stream must not stall the others by sitting on the
//! connection's window — but only while the bytes buffered for readers stay under a budget:
//! all streams together may not buffer without bound (256 streams of 1 MiB). Past the budget,
//! window goes back only as readers catch up.

use bytes::BytesMut;

use super::frame;

/// The window we give a whole connection.
pub const CONN_WINDOW: u32 = 8 << 20;
/// The window we give each stream (SETTINGS_INITIAL_WINDOW_SIZE): a peer may send this much
/// of one body before its reader reads it.
pub const STREAM_WINDOW: u32 = 1 << 20;
/// Bytes a connection may hold for readers before its window is given back only as they read.
const BUFFER_BUDGET: usize = CONN_WINDOW as usize;

/// One stream's receive window: taken as data arrives, given back in steps of half the window
/// as its reader reads.
#[derive(Debug)]
pub struct StreamRecv {
    window: i64,
    unacked: u32,
}

impl Default for StreamRecv {
    fn default() -> Self {
        StreamRecv {
            window: i64::from(STREAM_WINDOW),
            unacked: 0,
        }
    }
}

impl StreamRecv {
    /// Takes `n` received bytes off the window: `false` when the peer sent more than it may.
    pub fn take(&mut self, n: usize) -> bool {
        self.window -= n as i64;
        self.window >= 0
    }

    /// Gives back window for `n` bytes read (or padding, never read) on stream `id`, unless the
    /// peer has ended it. Returns whether a WINDOW_UPDATE was queued on `out`.
    pub fn release(&mut self, id: u32, ended: bool, n: usize, out: &mut BytesMut) -> bool {
        self.unacked += n as u32;
        if ended || self.unacked < STREAM_WINDOW / 2 {
            return false;
        }
        frame::put_window_update(out, id, self.unacked);
        self.window += i64::from(self.unacked);
        self.unacked = 0;
        true
    }
}

#[derive(Debug)]
pub struct ConnRecv {
    /// How much more the peer may send.
    window: i64,
    /// Window earned back but not yet announced (sent in steps of half the window).
    unacked: u32,
    /// Bytes received and waiting for their readers.
    buffered: usize,
    /// Window held back while over the budget.
    owed: usize,
}

impl Default for ConnRecv {
    fn default() -> Self {
        ConnRecv {
            window: i64::from(frame::DEFAULT_WINDOW),
            unacked: 0,
            buffered: 0,
            owed: 0,
        }
    }
}

impl ConnRecv {
    /// Opens the window from the protocol's default to [`CONN_WINDOW`] (first thing on a
    /// connection).
    pub fn open(&mut self, out: &mut BytesMut) {
        frame::put_window_update(out, 0, CONN_WINDOW - frame::DEFAULT_WINDOW);
        self.window = i64::from(CONN_WINDOW);
    }

    /// Takes `n` received bytes off the window: `false` when the peer sent more than it may.
    pub fn take(&mut self, n: usize) -> bool {
        self.window -= n as i64;
        self.window >= 0
    }

    /// `n` bytes arrived, of which `kept` now wait for a reader. Returns whether a
    /// WINDOW_UPDATE was queued on `out`.
    pub fn received(&mut self, n: usize, kept: usize, out: &mut BytesMut) -> bool {
        self.buffered += kept;
        if self.buffered > BUFFER_BUDGET {
            self.owed += n;
            return false;
        }
        self.credit(n, out)
    }

    /// `n` buffered bytes were read (or dropped with their stream).
    pub fn consumed(&mut self, n: usize, out: &mut BytesMut) -> bool {
        self.buffered = self.buffered.saturating_sub(n);
        if self.owed == 0 || self.buffered > BUFFER_BUDGET {
            return false;
        }
        let owed = std::mem::take(&mut self.owed);
        self.credit(owed, out)
    }

    fn credit(&mut self, n: usize, out: &mut BytesMut) -> bool {
        self.unacked += n as u32;
        if self.unacked < CONN_WINDOW / 2 {
            return false;
        }
        frame::put_window_update(out, 0, self.unacked);
        self.window += i64::from(self.unacked);
        self.unacked = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_comes_back_on_receipt_until_the_budget_then_as_readers_read() {
        let (mut flow, mut out) = (ConnRecv::default(), BytesMut::new());
        flow.open(&mut out);
        assert_eq!(out.len(), 13, "one WINDOW_UPDATE");
        out.clear();
        // Half the window received and kept: announced back at once.
        let half = (CONN_WINDOW / 2) as usize;
        assert!(flow.take(half));
        assert!(flow.received(half, half, &mut out));
        assert_eq!(flow.window, i64::from(CONN_WINDOW));
        // Past the budget (half + 2 halves buffered) nothing comes back until readers read.
        assert!(flow.take(half) && flow.take(half));
        assert!(!flow.received(2 * half, 2 * half, &mut out));
        assert!(!flow.take(1), "the peer may not send more");
        assert!(
            flow.consumed(2 * half, &mut out),
            "under budget again: what was held goes back"
        );
        assert_eq!(flow.window, i64::from(CONN_WINDOW) - 1);
    }
}
