//! Timeouts without a reactor timer each. Every request waits under a
//! deadline (the next head, the backend's answer), and an async-io timer
//! costs system calls to set and to drop (it wakes the reactor to re-arm its
//! timerfd). Here a wait only writes its deadline and waker into a slot, and
//! one task ticking every [`TICK`] wakes the waits whose time has come. A
//! timeout therefore fires up to one tick late, which no timeout of camtls
//! (seconds, all of them) notices. With no wait at all (no connection open)
//! the task stops ticking, so an idle router's CPU is not woken 4 times a
//! second for nothing.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use smol::Timer;

/// How often expired deadlines are looked for: the most a timeout runs late.
pub const TICK: Duration = Duration::from_millis(250);

struct Slot {
    at: Instant,
    waker: Waker,
}

/// The deadlines of every wait in the process (single-threaded).
#[derive(Default)]
pub struct Deadlines {
    slots: RefCell<Vec<Option<Slot>>>,
    free: RefCell<Vec<usize>>,
    /// The ticking task, while it waits for a first wait.
    ticker: RefCell<Option<Waker>>,
}

impl Deadlines {
    /// Wakes expired waits every tick; runs for as long as the server does.
    pub async fn run(&self) {
        loop {
            // Nothing waits: sleep until a wait registers (Sleep::poll).
            std::future::poll_fn(|cx| {
                if self.live() > 0 {
                    Poll::Ready(())
                } else {
                    *self.ticker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            let mut ticks = Timer::interval(TICK);
            while self.live() > 0 {
                smol::stream::StreamExt::next(&mut ticks).await;
                self.wake_expired(Instant::now());
            }
        }
    }

    /// Slots in use: every slot ever made, less the free ones.
    fn live(&self) -> usize {
        self.slots.borrow().len() - self.free.borrow().len()
    }

    fn wake_expired(&self, now: Instant) {
        let due: Vec<Waker> = self
            .slots
            .borrow()
            .iter()
            .flatten()
            .filter(|slot| slot.at <= now)
            .map(|slot| slot.waker.clone())
            .collect();
        due.into_iter().for_each(Waker::wake);
    }

    /// Resolves once `at` has passed (up to a tick later).
    pub fn sleep_until(&self, at: Instant) -> Sleep<'_> {
        Sleep {
            deadlines: self,
            at,
            slot: None,
        }
    }

    /// `Some(output)`, or None when `at` passes first.
    pub async fn limit<T>(&self, at: Instant, future: impl Future<Output = T>) -> Option<T> {
        smol::future::or(async { Some(future.await) }, async {
            self.sleep_until(at).await;
            None
        })
        .await
    }

    /// As [`Deadlines::limit`], `duration` from now.
    pub async fn limit_for<T>(
        &self,
        duration: Duration,
        future: impl Future<Output = T>,
    ) -> Option<T> {
        self.limit(Instant::now() + duration, future).await
    }

    /// Waits being tracked now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.slots.borrow().iter().flatten().count()
    }
}

/// A wait for a deadline; its slot is freed when it is dropped.
pub struct Sleep<'a> {
    deadlines: &'a Deadlines,
    at: Instant,
    slot: Option<usize>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.at {
            return Poll::Ready(());
        }
        let mut slots = this.deadlines.slots.borrow_mut();
        match this.slot {
            Some(i) => {
                let slot = slots[i].as_mut().expect("a live wait keeps its slot");
                if !slot.waker.will_wake(cx.waker()) {
                    slot.waker = cx.waker().clone();
                }
            }
            None => {
                let slot = Slot {
                    at: this.at,
                    waker: cx.waker().clone(),
                };
                let i = match this.deadlines.free.borrow_mut().pop() {
                    Some(i) => {
                        slots[i] = Some(slot);
                        i
                    }
                    None => {
                        slots.push(Some(slot));
                        slots.len() - 1
                    }
                };
                this.slot = Some(i);
                if let Some(ticker) = this.deadlines.ticker.borrow_mut().take() {
                    ticker.wake();
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            self.deadlines.slots.borrow_mut()[i] = None;
            self.deadlines.free.borrow_mut().push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_ends_after_its_deadline_and_within_a_tick() {
        let d = Deadlines::default();
        let ex = smol::LocalExecutor::new();
        ex.spawn(d.run()).detach();
        smol::block_on(ex.run(async {
            let start = Instant::now();
            d.sleep_until(start + Duration::from_millis(300)).await;
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(300), "{took:?}");
            // Loose: a loaded machine delays the wakeup itself, not only the tick.
            let bound = Duration::from_millis(300) + TICK + Duration::from_secs(1);
            assert!(took < bound, "{took:?}");
        }));
    }

    #[test]
    fn limit_gives_the_output_or_none() {
        let d = Deadlines::default();
        let ex = smol::LocalExecutor::new();
        ex.spawn(d.run()).detach();
        smol::block_on(ex.run(async {
            let soon = Instant::now() + Duration::from_millis(100);
            assert_eq!(d.limit(soon, async { 7 }).await, Some(7));
            assert_eq!(d.limit(soon, std::future::pending::<u8>()).await, None);
            assert!(Instant::now() >= soon);
            // Finished and timed-out waits both give their slot back.
            assert_eq!(d.waiting(), 0);
        }));
    }

    #[test]
    fn the_ticker_rests_while_nothing_waits_and_wakes_for_a_new_wait() {
        let d = Deadlines::default();
        let ex = smol::LocalExecutor::new();
        ex.spawn(d.run()).detach();
        smol::block_on(ex.run(async {
            // Let the ticker reach its rest, then check it is parked.
            smol::Timer::after(Duration::from_millis(50)).await;
            assert!(d.ticker.borrow().is_some(), "the ticker did not rest");
            let start = Instant::now();
            d.sleep_until(start + Duration::from_millis(100)).await;
            assert!(start.elapsed() < Duration::from_millis(100) + TICK + Duration::from_secs(1));
            // Once the wait is gone, it rests again.
            smol::Timer::after(TICK * 2).await;
            assert!(d.ticker.borrow().is_some(), "the ticker kept ticking");
            assert_eq!(d.live(), 0);
        }));
    }

    #[test]
    fn slots_are_reused() {
        let d = Deadlines::default();
        let ex = smol::LocalExecutor::new();
        smol::block_on(ex.run(async {
            for _ in 0..1000 {
                let far = Instant::now() + Duration::from_secs(60);
                assert_eq!(d.limit(far, smol::future::yield_now()).await, Some(()));
            }
            assert!(d.slots.borrow().len() <= 1);
        }));
    }
}
