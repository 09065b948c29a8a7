//! Channels: CSP message passing between green tasks and OS threads, that loses nothing.
//!
//! Landed so far: [`oneshot`] (one value, once) and [`broadcast`] (every receiver sees every
//! value; slow receivers get `Lagged`). The multi-producer multi-consumer kinds, `select!` and
//! deadlock reports land next.

pub mod broadcast;
mod error;
pub mod oneshot;

pub use broadcast::broadcast;
pub use error::{RecvError, SendError, TryRecvError, TrySendError};
pub use oneshot::oneshot;
