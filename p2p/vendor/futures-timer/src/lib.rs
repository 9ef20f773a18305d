//! A general purpose crate for working with timeouts and delays with futures.
//!
//! jobmesh patch: a [`Delay`] created inside a tokio runtime (one with its time driver, as every jobmesh
//! runtime has) is a `tokio::time::Sleep` on that runtime's timer wheel; elsewhere it is the original
//! futures-timer delay on its global helper thread. The original registers every new, reset and dropped delay
//! with that thread and wakes it (a futex system call each, plus a context switch): libp2p creates one for
//! every stream it negotiates, every request and every connection's idle period, and at 100 simulated nodes
//! those wake-ups were a tenth of the CPU. See `p2p/vendor/README.md`.
//!
//! # Examples
//!
//! ```no_run
//! # async fn run() {
//! use std::time::Duration;
//! use futures_timer::Delay;
//!
//! let now = Delay::new(Duration::from_secs(3)).await;
//! println!("waited for 3 secs");
//! # }
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod native;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A future representing the notification that an elapsed duration has occurred.
///
/// This is created through the `Delay::new` method indicating when the future should fire. Note that
/// these futures are not intended for high resolution timers.
pub struct Delay {
    timer: Timer,
}

enum Timer {
    /// On the timer wheel of the tokio runtime the delay was created in (jobmesh patch).
    Tokio(Pin<Box<tokio::time::Sleep>>),
    /// On futures-timer's global helper thread (no tokio runtime where the delay was created).
    Thread(native::Delay),
}

impl Delay {
    /// Creates a new future which will fire at `dur` time into the future.
    ///
    /// The returned object will be bound to the tokio runtime's timer if it is created inside a tokio
    /// runtime, and to the default global timer thread otherwise.
    #[inline]
    pub fn new(dur: Duration) -> Delay {
        let timer = match tokio::runtime::Handle::try_current() {
            Ok(_) => Timer::Tokio(Box::pin(tokio::time::sleep(dur))),
            Err(_) => Timer::Thread(native::Delay::new(dur)),
        };
        Delay { timer }
    }

    /// Resets this timeout to an new timeout which will fire at the time specified by `at`.
    #[inline]
    pub fn reset(&mut self, dur: Duration) {
        match &mut self.timer {
            Timer::Tokio(sleep) => {
                let now = tokio::time::Instant::now();
                let at = now
                    .checked_add(dur)
                    // As `tokio::time::sleep` does for durations it cannot add: about 30 years.
                    .unwrap_or_else(|| now + Duration::from_secs(86400 * 365 * 30));
                sleep.as_mut().reset(at);
            }
            Timer::Thread(delay) => delay.reset(dur),
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.timer {
            Timer::Tokio(sleep) => sleep.as_mut().poll(cx),
            Timer::Thread(delay) => Pin::new(delay).poll(cx),
        }
    }
}

impl fmt::Debug for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        let on = match self.timer {
            Timer::Tokio(_) => "tokio",
            Timer::Thread(_) => "thread",
        };
        f.debug_struct("Delay").field("timer", &on).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Delay;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn inside_a_runtime_a_delay_is_a_tokio_sleep_and_fires() {
        let started = Instant::now();
        let mut delay = Delay::new(Duration::from_millis(20));
        assert!(format!("{delay:?}").contains("tokio"));
        (&mut delay).await;
        assert!(started.elapsed() >= Duration::from_millis(20));
        // A reset delay fires again, later.
        delay.reset(Duration::from_millis(30));
        let reset_at = Instant::now();
        delay.await;
        assert!(reset_at.elapsed() >= Duration::from_millis(30));
        // An absurd duration does not overflow.
        Delay::new(Duration::MAX).reset(Duration::MAX);
    }

    #[test]
    fn outside_a_runtime_a_delay_runs_on_the_helper_thread() {
        let started = Instant::now();
        let delay = Delay::new(Duration::from_millis(20));
        assert!(format!("{delay:?}").contains("thread"));
        // Polled by a runtime created afterwards: still the helper thread's timer.
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(delay);
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
