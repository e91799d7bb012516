//! Call deadlines kept by one timer per event loop, instead of a Tokio timer per call.
//!
//! Why: Tokio's timer wakes its own event loop through the I/O driver (an `eventfd` write, a
//! system call) whenever a timer is registered with a deadline earlier than the one the loop
//! promised to wake at when it last went to sleep, even when the registering thread *is* that
//! loop, and the promise is only renewed when the loop sleeps again. A worker that went to
//! sleep with no call in flight, which in a closed loop happens every time all its answers
//! went out, promised "never" (or a far idle timeout), so every call it then took in that turn
//! paid a write(2): 0.36 system calls per JSON→Dubbo2 request, 0.14 per JSON→gRPC one.
//!
//! Here each event loop keeps its calls' deadlines in an ordered map, watched by one keeper
//! task with one Tokio timer, armed for the earliest deadline. Calls on a route share their
//! timeout, so a new deadline is almost never earlier than the armed one: registering is a map
//! insert under an uncontended lock, and no system call. The keeper wakes the calls whose
//! deadline passed and re-arms for the next; a call that ends first just leaves the map (the
//! keeper may then wake once for nothing, at most once per timeout). A deadline earlier than
//! the armed one (a shorter timeout) re-arms the keeper at once: one Tokio registration, as
//! before. Deadlines fire with Tokio's timer precision (1 ms), and follow Tokio's clock (so
//! paused time in tests works).
//!
//! A future polled first is not registered at all when it completes on that poll.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::runtime::{Handle, Id as RuntimeId};
use tokio::time::Instant;

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `future` for at most `after`, like `tokio::time::timeout`, with the deadline kept by
/// this event loop's keeper (see the module docs). Must be polled inside a Tokio runtime.
pub fn timeout<F: Future>(after: Duration, future: F) -> Timeout<F> {
    // A timeout too large for the clock never fires, as with Tokio's (about 30 years).
    let deadline = Instant::now().checked_add(after);
    Timeout {
        future,
        deadline,
        entry: None,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`].
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        deadline: Option<Instant>,
        entry: Option<Entry>,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            // Out of the map now, not when dropped: the keeper must not wake a finished call.
            *this.entry = None;
            return Poll::Ready(Ok(output));
        }
        let Some(deadline) = *this.deadline else {
            return Poll::Pending;
        };
        match this.entry {
            Some(entry) => {
                if entry.keeps(cx.waker()) {
                    Poll::Pending
                } else {
                    Poll::Ready(Err(Elapsed))
                }
            }
            None if deadline <= Instant::now() => Poll::Ready(Err(Elapsed)),
            None => match Entry::register(deadline, cx.waker()) {
                Some(entry) => {
                    *this.entry = Some(entry);
                    Poll::Pending
                }
                // Outside a runtime nothing can wake us at the deadline; it is checked on
                // each poll instead.
                None => Poll::Pending,
            },
        }
    }
}

/// A registered deadline; leaves the map when dropped.
#[derive(Debug)]
struct Entry {
    deadlines: Arc<Deadlines>,
    key: Key,
}

/// Deadline first, then registration order, so equal deadlines stay distinct.
type Key = (Instant, u64);

impl Entry {
    fn register(deadline: Instant, waker: &Waker) -> Option<Entry> {
        let deadlines = Deadlines::for_this_loop()?;
        let (key, wake_keeper, spawn) = {
            let mut state = deadlines.lock();
            let key = (deadline, state.next_id);
            state.next_id += 1;
            state.calls.insert(key, waker.clone());
            let earlier = state.armed.is_none_or(|armed| deadline < armed);
            let spawn = !state.keeper_alive;
            let wake_keeper = if earlier && !spawn {
                state.keeper.clone()
            } else {
                None
            };
            if spawn {
                state.keeper_alive = true;
                state.keeper_generation += 1;
            }
            (key, wake_keeper, spawn.then_some(state.keeper_generation))
        };
        // Outside the lock: a task spawned while its runtime shuts down is dropped at once,
        // and dropping the keeper takes the lock.
        if let Some(generation) = spawn {
            tokio::spawn(keep(deadlines.clone(), generation));
        }
        if let Some(keeper) = wake_keeper {
            keeper.wake();
        }
        Some(Entry { deadlines, key })
    }

    /// Whether the deadline is still ahead (the keeper removes those it fired); keeps the
    /// waker to wake current.
    fn keeps(&self, waker: &Waker) -> bool {
        let mut state = self.deadlines.lock();
        let Some(kept) = state.calls.get_mut(&self.key) else {
            return false;
        };
        if !kept.will_wake(waker) {
            let old = std::mem::replace(kept, waker.clone());
            // A waker's drop may run code of its owner's: never under our lock.
            drop(state);
            drop(old);
        }
        true
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // The guard goes at the end of the statement; the waker after it.
        let waker = self.deadlines.lock().calls.remove(&self.key);
        drop(waker);
    }
}

/// One event loop's deadlines.
#[derive(Debug, Default)]
struct Deadlines {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: BTreeMap<Key, Waker>,
    next_id: u64,
    /// What the keeper's timer is set to; `None` when it waits for a first deadline.
    armed: Option<Instant>,
    /// The keeper task's waker, to re-arm it for an earlier deadline.
    keeper: Option<Waker>,
    keeper_alive: bool,
    /// Counts keepers spawned, so a finished one cannot mark its successor gone.
    keeper_generation: u64,
}

thread_local! {
    /// This thread's deadlines, for the runtime it ran last (a thread may run one runtime,
    /// then another: tests do).
    static THIS_LOOP: std::cell::RefCell<Option<(RuntimeId, Arc<Deadlines>)>> =
        const { std::cell::RefCell::new(None) };
}

impl Deadlines {
    fn for_this_loop() -> Option<Arc<Deadlines>> {
        let runtime = Handle::try_current().ok()?.id();
        THIS_LOOP.with(|cell| {
            let mut cell = cell.borrow_mut();
            match &*cell {
                Some((id, deadlines)) if *id == runtime => Some(deadlines.clone()),
                _ => {
                    let deadlines = Arc::new(Deadlines::default());
                    *cell = Some((runtime, deadlines.clone()));
                    Some(deadlines)
                }
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across code that can panic halfway through a change.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The keeper: wakes the calls whose deadline passed, and sleeps until the next. Ends when
/// none is left (the next registration spawns another), so a keeper never outlives its use.
fn keep(deadlines: Arc<Deadlines>, generation: u64) -> impl Future<Output = ()> + Send {
    // Made before the task first runs: a runtime shutting down may drop it unpolled, and the
    // next registration must then know to spawn another.
    let alive = KeeperAlive {
        deadlines: deadlines.clone(),
        generation,
    };
    async move {
        let _alive = alive;
        // Re-armed before every wait; the first deadline below sets it.
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        // The deadline the timer last fired for. Calls expire by the timer's clock, as with
        // `tokio::time::timeout` (the same driver turn settles a call's I/O and timers), not
        // by `Instant::now()`, which may run ahead in a slow turn.
        let mut fired: Option<Instant> = None;
        let mut expired = Vec::new();
        std::future::poll_fn(|cx| loop {
            let mut state = deadlines.lock();
            if let Some(horizon) = fired.take() {
                while let Some(entry) = state.calls.first_entry() {
                    if entry.key().0 > horizon {
                        break;
                    }
                    expired.push(entry.remove());
                }
            }
            let Some(&(next, _)) = state.calls.keys().next() else {
                state.keeper_alive = false;
                state.keeper = None;
                state.armed = None;
                drop(state);
                expired.drain(..).for_each(Waker::wake);
                return Poll::Ready(());
            };
            if state
                .keeper
                .as_ref()
                .is_none_or(|w| !w.will_wake(cx.waker()))
            {
                state.keeper = Some(cx.waker().clone());
            }
            if state.armed != Some(next) {
                state.armed = Some(next);
                timer.as_mut().reset(next);
            }
            drop(state);
            // Woken outside the lock: waking may take the scheduler's locks, or a syscall.
            expired.drain(..).for_each(Waker::wake);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            fired = Some(next);
        })
        .await
    }
}

/// Marks the keeper gone if it is dropped with its runtime (unless a newer one took over).
#[derive(Debug)]
struct KeeperAlive {
    deadlines: Arc<Deadlines>,
    generation: u64,
}

impl Drop for KeeperAlive {
    fn drop(&mut self) {
        let mut state = self.deadlines.lock();
        if state.keeper_generation == self.generation {
            state.keeper_alive = false;
            state.keeper = None;
            state.armed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_in_order() {
        let started = Instant::now();
        let slow = timeout(Duration::from_secs(3), std::future::pending::<()>());
        let quick = timeout(Duration::from_secs(1), std::future::pending::<()>());
        // The shorter deadline, registered second, re-arms the keeper earlier.
        let (slow, quick) = tokio::join!(
            async {
                let r = slow.await;
                (r, started.elapsed())
            },
            async {
                tokio::task::yield_now().await;
                let r = quick.await;
                (r, started.elapsed())
            }
        );
        assert_eq!(quick, (Err(Elapsed), Duration::from_secs(1)));
        assert_eq!(slow, (Err(Elapsed), Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_first_leaves_the_map() {
        let answered = timeout(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            7
        })
        .await;
        assert_eq!(answered, Ok(7));
        let deadlines = Deadlines::for_this_loop().expect("inside a runtime");
        assert!(deadlines.lock().calls.is_empty());
        // The keeper, armed for the finished call, fires for nothing and ends; later
        // deadlines get a new one.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!deadlines.lock().keeper_alive);
        let late = timeout(Duration::from_secs(2), std::future::pending::<()>());
        let started = Instant::now();
        assert_eq!(late.await, Err(Elapsed));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn ready_at_once_registers_nothing() {
        assert_eq!(timeout(Duration::from_secs(1), async { 1 }).await, Ok(1));
        assert_eq!(
            timeout(Duration::ZERO, std::future::pending::<()>()).await,
            Err(Elapsed)
        );
        let deadlines = Deadlines::for_this_loop().expect("inside a runtime");
        assert!(!deadlines.lock().keeper_alive);
    }

    #[test]
    fn a_new_runtime_on_the_same_thread_gets_a_working_keeper() {
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("runtime");
            let r = runtime.block_on(timeout(
                Duration::from_millis(50),
                std::future::pending::<()>(),
            ));
            assert_eq!(r, Err(Elapsed));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_calls_across_threads() {
        let calls: Vec<_> = (0..200u64)
            .map(|i| {
                tokio::spawn(async move {
                    // A wide gap between answer and deadline: a loaded machine may stall.
                    let wait = Duration::from_millis(i % 20);
                    let r = timeout(Duration::from_millis(500), tokio::time::sleep(wait)).await;
                    let never = timeout(
                        Duration::from_millis(20 + i % 7),
                        std::future::pending::<()>(),
                    )
                    .await;
                    (r, never)
                })
            })
            .collect();
        for call in calls {
            let (r, never) = call.await.expect("task");
            assert_eq!(r, Ok(()));
            assert_eq!(never, Err(Elapsed));
        }
    }
}
