//! The blocking forms: an OS thread polls the very same send and receive futures with a waker
//! that unparks it, and parks between polls. The channel cannot tell a blocked thread from a
//! parked task, so every guarantee of the async forms holds for the blocking ones.
//!
//! The parker is a flag under a mutex with a condvar (through `crate::loom`, so loom models can
//! block threads on it). Each thread keeps one parker and its waker for good: a blocking call
//! allocates nothing in steady state.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::loom::{Condvar, Mutex};

struct Parker {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }
}

impl Parker {
    fn park(&self) {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        while !*woken {
            woken = self.cv.wait(woken).unwrap_or_else(|e| e.into_inner());
        }
        *woken = false;
    }
}

fn new_parker() -> (Arc<Parker>, Waker) {
    let p = Arc::new(Parker { woken: Mutex::new(false), cv: Condvar::new() });
    let w = Waker::from(p.clone());
    (p, w)
}

/// Runs `fut` to completion on this OS thread, parking it while the future is pending.
///
/// # Panics
///
/// If this thread runs an omni runtime (`what` names the call in the message).
pub(crate) fn wait<F: Future>(fut: F, what: &str) -> F::Output {
    assert!(
        crate::rt::current_owner().is_null(),
        "omni: {what} called from inside an omni runtime thread. Blocking here would freeze \
         the runtime's tasks: `.await` the async form instead, or call it from a plain OS \
         thread (`std::thread::spawn`, `omni::spawn_blocking`)"
    );
    park_on(fut)
}

/// Runs `fut` to completion on this OS thread with the thread's parker, whatever the thread
/// (the caller decides whether blocking it is acceptable).
pub(crate) fn park_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    #[cfg(not(loom))]
    {
        thread_local! {
            static PARKER: (Arc<Parker>, Waker) = new_parker();
        }
        // `try_with` fails only while this thread's locals are being destroyed.
        if let Ok(out) = PARKER.try_with(|(p, w)| run(fut.as_mut(), p, w)) {
            return out;
        }
    }
    let (p, w) = new_parker();
    run(fut.as_mut(), &p, &w)
}

fn run<F: Future>(mut fut: std::pin::Pin<&mut F>, p: &Parker, w: &Waker) -> F::Output {
    let mut cx = Context::from_waker(w);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        p.park();
    }
}
