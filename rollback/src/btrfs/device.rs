//! Waiting for the Btrfs device to appear (a slow disk, a USB enclosure).

use std::time::{Duration, Instant};

use rustix::fs::FileType;
use rustix::io::Errno;

use super::{Error, Result};

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
                return Err(Error::NotABlockDevice {
                    device: device.to_owned(),
                    kind: FileType::from_raw_mode(st.st_mode),
                });
            }
            Err(Errno::NOENT | Errno::NOTDIR) => {}
            Err(e) => {
                return Err(Error::LookAtDevice {
                    device: device.to_owned(),
                    source: e.into(),
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::DeviceMissing {
                device: device.to_owned(),
                waited: seconds,
            });
        }
        if !said {
            log::info!("waiting up to {seconds} s for {device}");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
