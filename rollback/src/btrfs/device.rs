//! Waiting for the Btrfs device to appear (a slow disk, a USB enclosure).

use std::io;
use std::time::{Duration, Instant};

use rustix::fs::FileType;
use rustix::io::Errno;

use super::*;

/// Waits until `device` exists and is a block device, for at most `seconds`.
pub(super) fn wait_for_device(device: &str, seconds: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(seconds.into());
    let mut said = false;
    loop {
        match rustix::fs::stat(device) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice => {
                if said {
                    log::info!("{device} appeared");
                }
                return Ok(());
            }
            Ok(st) => {
                return Err(Error(format!(
                    "{device} is a {:?}, not a block device; set `device` to the Btrfs partition, such as /dev/disk/by-label/nixos",
                    FileType::from_raw_mode(st.st_mode)
                )));
            }
            Err(Errno::NOENT | Errno::NOTDIR) => {}
            Err(e) => {
                return Err(Error(format!(
                    "cannot look at {device}: {}",
                    io::Error::from(e)
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(Error(format!(
                "{device} did not appear within {seconds} s; check `device` (ls -l /dev/disk/by-label/) or raise `waitSeconds`"
            )));
        }
        if !said {
            log::info!("waiting up to {seconds} s for {device}");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
