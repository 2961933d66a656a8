//! The real kernel log: every line logged reaches the ring buffer, however
//! many, with the kernel's per-file rate limit in force
//! (`printk.devkmsg=ratelimit`, the default).
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;

use tabula_runtime::log::{KMSG, Target};
use tabula_testkit::Need;

/// Every record of the ring buffer now, read from the start.
fn ring_buffer() -> Vec<String> {
    let mut kmsg = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(KMSG)
        .unwrap_or_else(|e| panic!("open {KMSG}: {e}"));
    let mut records = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => records.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            // A record overwritten while we read: go on with the next.
            Err(e) if e.raw_os_error() == Some(32) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read {KMSG}: {e}"),
        }
    }
    records
}

/// `O_NONBLOCK` on Linux (every architecture tabula builds for).
fn libc_o_nonblock() -> i32 {
    0o4000
}

#[test]
#[ignore = "needs root and /dev/kmsg; dev/test.sh runs it"]
fn a_hundred_lines_logged_are_a_hundred_lines_in_the_kernel_log() {
    if tabula_testkit::skip_unless(
        "a_hundred_lines_logged_are_a_hundred_lines_in_the_kernel_log",
        &[Need::Root, Need::Kmsg],
    ) {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tag = format!("tabula-runtime-test-{}-{nanos}", std::process::id());
    tabula_runtime::log::init("tabula-runtime-test", Target::Kmsg(KMSG.into()));
    for i in 0..100 {
        log::error!("{tag} line {i:03} of 100");
    }
    let found: Vec<String> = ring_buffer()
        .into_iter()
        .filter(|r| r.contains(&tag))
        .collect();
    assert_eq!(
        found.len(),
        100,
        "{} of 100 lines reached the kernel log",
        found.len()
    );
    // Each arrived as an error of the daemon facility (3 * 8 + 3 = 27),
    // under its identifier, in order.
    for (i, record) in found.iter().enumerate() {
        assert!(record.starts_with("27,"), "{record}");
        assert!(
            record.contains(&format!(
                "tabula-runtime-test[{}]: {tag} line {i:03} of 100",
                std::process::id()
            )),
            "{record}"
        );
    }
}
