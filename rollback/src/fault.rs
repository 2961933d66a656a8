//! Fault injection, compiled only with the `fault-injection` feature (test
//! builds): `TABULA_FAULT_AFTER=<step>` aborts the process right after the
//! first time `<step>` completes, `<step>:<n>` after the n-th time. An abort
//! leaves the filesystem exactly as a power cut between two steps would
//! (each step is one atomic Btrfs operation or one `zfs` command; see the
//! state machines in `btrfs/state.rs` and `zfs/rotation.rs`), and the tests then check that
//! a normal run recovers.
//!
//! Without the feature, [`after`] is an empty inline function.

/// Every step name [`after`] is called with, in the order a full rotation
/// reaches them.
pub const STEPS: &[&str] = &[
    "mounted",
    "leftover-removed",
    "leftover-archived",
    "created",
    "exchanged",
    "archived",
    "nested-destroyed",
    "pruned",
    // ZFS: keep-previous rotation (`oldRoots` set), then `oldRoots: null`.
    "zfs-cloned",
    "zfs-archived",
    "zfs-renamed",
    "zfs-promoted",
    "zfs-pruned",
    "zfs-rolled-back",
];

#[cfg(feature = "fault-injection")]
mod imp {
    use std::sync::Mutex;

    static COUNTS: Mutex<Vec<(&'static str, u32)>> = Mutex::new(Vec::new());

    pub fn after(step: &'static str) {
        debug_assert!(super::STEPS.contains(&step), "unknown step {step}");
        let Ok(want) = std::env::var("TABULA_FAULT_AFTER") else {
            return;
        };
        let (name, nth) = match want.split_once(':') {
            Some((name, n)) => (name.to_owned(), n.parse::<u32>().unwrap_or(1)),
            None => (want, 1),
        };
        if name != step {
            return;
        }
        let mut counts = COUNTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = if let Some((_, c)) = counts.iter_mut().find(|(s, _)| *s == step) {
            *c += 1;
            *c
        } else {
            counts.push((step, 1));
            1
        };
        if count == nth {
            log::error!("fault injection: aborting after step {step} ({count})");
            eprintln!("fault injection: aborting after step {step} ({count})");
            std::process::abort();
        }
    }
}

#[cfg(feature = "fault-injection")]
pub use imp::after;

/// Does nothing: fault injection is not compiled in.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn after(_step: &'static str) {}
