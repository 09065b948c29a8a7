//! Channels: CSP message passing between green tasks and OS threads, that loses nothing.
//!
//! (Being built: the channel kinds, `select!` and deadlock reports land in steps; this module
//! holds the shared error types first.)

pub mod broadcast;
mod error;
pub mod oneshot;

pub use broadcast::broadcast;
pub use error::{RecvError, SendError, TryRecvError, TrySendError};
pub use oneshot::oneshot;
