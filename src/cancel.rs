//! Cancellation tokens: a cheap, cloneable flag that tasks can wait on, organised in a tree.
//!
//! A [`CancelToken`] is cancelled once, for good. Cancelling it cancels every *child* token
//! made from it (and their children), depth first, and wakes every task waiting in
//! [`CancelToken::cancelled`]. Cancelling a child does not touch its parent. A child made from
//! a token that is already cancelled starts cancelled.
//!
//! # Invariants
//!
//! - The flag is only ever set under the node's lock, and waiters and children are registered
//!   under the same lock after a look at the flag: so a cancel either finds a registration in
//!   the lists or the registration finds the flag set. No waiter sleeps through a cancel and no
//!   child misses one (the loom models `loom_cancel_vs_child` and `loom_cancel_vs_waiter`).
//! - [`CancelToken::is_cancelled`] is one atomic load.
//! - A parent holds its children weakly: dropped children cost nothing once pruned, and a
//!   child does not keep its parent alive. The cancel walk keeps an explicit stack, so a chain
//!   of a million nested tokens cancels without deep recursion.
//! - Wakers are taken out under the lock and woken after it is released.

use crate::loom::{AtomicBool, Mutex, MutexGuard, Ordering::*};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

/// A cancellation flag shared by clones, with child tokens that a cancel reaches.
///
/// # Examples
///
/// ```
/// use omni::CancelToken;
///
/// omni::block_on(async {
///     let root = CancelToken::new();
///     let child = root.child();
///     let worker = omni::spawn({
///         let child = child.clone();
///         async move {
///             child.cancelled().await;
///             "stopped"
///         }
///     });
///     root.cancel();
///     assert!(child.is_cancelled());
///     assert_eq!(worker.await.unwrap(), "stopped");
/// });
/// ```
#[derive(Clone)]
pub struct CancelToken {
    node: Arc<Node>,
}

struct Node {
    cancelled: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Waiting futures' wakers by slot; `None` is a free slot (listed in `free`).
    waiters: Vec<Option<Waker>>,
    free: Vec<usize>,
    children: Vec<Weak<Node>>,
}

impl Node {
    fn new(cancelled: bool) -> Node {
        Node { cancelled: AtomicBool::new(cancelled), inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CancelToken {
    /// A new token, not cancelled, with no parent.
    pub fn new() -> CancelToken {
        CancelToken { node: Arc::new(Node::new(false)) }
    }

    /// A child token: cancelled when this one is (or at once, if this one already is), and
    /// cancellable on its own without touching this one.
    pub fn child(&self) -> CancelToken {
        let mut g = self.node.lock();
        if self.node.cancelled.load(Acquire) {
            return CancelToken { node: Arc::new(Node::new(true)) };
        }
        let child = Arc::new(Node::new(false));
        if g.children.len() == g.children.capacity() {
            // Before the list grows, forget the children that are gone.
            g.children.retain(|w| w.strong_count() > 0);
        }
        g.children.push(Arc::downgrade(&child));
        CancelToken { node: child }
    }

    /// Whether this token is cancelled (one atomic load).
    pub fn is_cancelled(&self) -> bool {
        self.node.cancelled.load(Acquire)
    }

    /// Cancels this token and, depth first, every child token made from it; wakes every task
    /// waiting on any of them. Cancelling twice does nothing more.
    pub fn cancel(&self) {
        let mut stack = vec![self.node.clone()];
        let mut wakers = Vec::new();
        while let Some(node) = stack.pop() {
            let children = {
                let mut g = node.lock();
                if node.cancelled.swap(true, AcqRel) {
                    continue;
                }
                wakers.extend(g.waiters.drain(..).flatten());
                g.free.clear();
                std::mem::take(&mut g.children)
            };
            // Reversed so the first child is cancelled first, and all of its descendants
            // before its next sibling.
            stack.extend(children.iter().rev().filter_map(Weak::upgrade));
            for w in wakers.drain(..) {
                w.wake();
            }
        }
    }

    /// Waits until this token is cancelled. Cancel-safe: dropping the future just stops
    /// waiting.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled { node: &self.node, slot: None }
    }

    /// Like [`CancelToken::cancelled`], owning a clone of the token (for `'static` futures).
    pub fn cancelled_owned(self) -> CancelledOwned {
        CancelledOwned { node: self.node, slot: None }
    }

    /// Runs `fut` until it completes (`Some`) or this token is cancelled (`None`, and `fut`
    /// is dropped). If both are ready at the same poll, the cancel wins.
    pub async fn run_until_cancelled<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        let mut cancelled = std::pin::pin!(self.cancelled());
        std::future::poll_fn(|cx| {
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            fut.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

impl Default for CancelToken {
    fn default() -> CancelToken {
        CancelToken::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

/// Polls a wait on `node`, keeping the waker in `slot`.
fn poll_wait(node: &Node, slot: &mut Option<usize>, cx: &mut Context<'_>) -> Poll<()> {
    if node.cancelled.load(Acquire) {
        return Poll::Ready(());
    }
    let mut g = node.lock();
    if node.cancelled.load(Acquire) {
        // The cancel drained the waiters (our slot is gone with them).
        *slot = None;
        return Poll::Ready(());
    }
    match *slot {
        Some(i) => match &mut g.waiters[i] {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        },
        None => {
            let waker = Some(cx.waker().clone());
            let i = match g.free.pop() {
                Some(i) => {
                    g.waiters[i] = waker;
                    i
                }
                None => {
                    g.waiters.push(waker);
                    g.waiters.len() - 1
                }
            };
            *slot = Some(i);
        }
    }
    Poll::Pending
}

/// Gives a dropped wait's slot back (unless a cancel already drained it).
fn release(node: &Node, slot: Option<usize>) {
    if let Some(i) = slot {
        let mut g = node.lock();
        if !node.cancelled.load(Acquire) && i < g.waiters.len() {
            g.waiters[i] = None;
            g.free.push(i);
        }
    }
}

/// The future of [`CancelToken::cancelled`].
#[must_use = "futures do nothing unless awaited"]
pub struct Cancelled<'a> {
    node: &'a Node,
    slot: Option<usize>,
}

impl Future for Cancelled<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        poll_wait(this.node, &mut this.slot, cx)
    }
}

impl Drop for Cancelled<'_> {
    fn drop(&mut self) {
        release(self.node, self.slot.take());
    }
}

impl fmt::Debug for Cancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled").field("waiting", &self.slot.is_some()).finish()
    }
}

/// The future of [`CancelToken::cancelled_owned`].
#[must_use = "futures do nothing unless awaited"]
pub struct CancelledOwned {
    node: Arc<Node>,
    slot: Option<usize>,
}

impl Future for CancelledOwned {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        poll_wait(&this.node, &mut this.slot, cx)
    }
}

impl Drop for CancelledOwned {
    fn drop(&mut self) {
        release(&self.node, self.slot.take());
    }
}

impl fmt::Debug for CancelledOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelledOwned").field("waiting", &self.slot.is_some()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn dropped_children_and_waits_do_not_accumulate() {
        let root = CancelToken::new();
        for _ in 0..10_000 {
            drop(root.child());
        }
        assert!(root.node.lock().children.len() <= 16, "dead children are pruned");
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..1000 {
            let mut w = std::pin::pin!(root.cancelled());
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(root.node.lock().waiters.len(), 1, "a dropped wait's slot is reused");
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;

    /// A cancel racing a child's registration: the child ends cancelled either way.
    #[test]
    fn loom_cancel_vs_child() {
        loom::model(|| {
            let root = CancelToken::new();
            let r2 = root.clone();
            let t = loom::thread::spawn(move || r2.cancel());
            let child = root.child();
            let grandchild = child.child();
            t.join().unwrap();
            assert!(child.is_cancelled() && grandchild.is_cancelled());
        });
    }

    /// A cancel racing a waiter's registration: the waiter is woken (loom reports a deadlock
    /// if it sleeps through the cancel).
    #[test]
    fn loom_cancel_vs_waiter() {
        loom::model(|| {
            let root = CancelToken::new();
            let child = root.child();
            let t = loom::thread::spawn(move || root.cancel());
            crate::loom::block_on(child.cancelled());
            t.join().unwrap();
        });
    }
}
