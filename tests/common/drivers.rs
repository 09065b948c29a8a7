//! The driver matrix: a test written once as `fn name(d: Driver)` runs on mio and on
//! io_uring. An io_uring case that the kernel refuses says so on stderr and passes as skipped.

#![allow(dead_code)]

use omni::{Builder, Driver, Runtime};

/// A current-thread runtime on `d`, or `None` (with a line saying why) when the kernel
/// refuses io_uring.
pub(crate) fn current(d: Driver) -> Option<Runtime> {
    build(Builder::new_current_thread().driver(d), d)
}

/// A multi-thread runtime with `workers` workers on `d`.
pub(crate) fn multi(d: Driver, workers: usize) -> Option<Runtime> {
    build(Builder::new_multi_thread().workers(workers).driver(d), d)
}

fn build(b: &mut Builder, d: Driver) -> Option<Runtime> {
    match b.build() {
        Ok(rt) => {
            assert_eq!(rt.handle().driver(), d, "the runtime must use the driver asked for");
            Some(rt)
        }
        Err(e) if d == Driver::IoUring => {
            eprintln!("SKIPPED on io_uring: the kernel refuses it here ({e})");
            None
        }
        Err(e) => panic!("cannot build a runtime on {d}: {e}"),
    }
}

/// `matrix!(a, b, c)` writes `mod mio { #[test] fn a() }` and `mod io_uring { ... }`, each
/// calling `super::a(driver)`.
#[macro_export]
macro_rules! matrix {
    ($($name:ident),* $(,)?) => {
        mod mio {
            $( #[test] fn $name() { super::$name(omni::Driver::Mio) } )*
        }
        mod io_uring {
            $( #[test] fn $name() { super::$name(omni::Driver::IoUring) } )*
        }
    };
}
