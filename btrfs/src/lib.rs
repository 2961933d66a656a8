//! The Btrfs interfaces tabula uses, shared by the rollback and the
//! `tabula` command: the ioctls behind safe functions ([`ioctl`], the
//! workspace's only module with `unsafe` code), and the on-disk item
//! formats the tree search returns.
// Pedantic lints on, each exception named with its reason.
#![warn(clippy::pedantic)]
// Every function returns the ioctl's own error (`io::Error`); an `# Errors`
// section on each would say only that.
#![allow(clippy::missing_errors_doc)]

pub mod ioctl;

pub use ioctl::{Item, Search, SubvolInfo};

/// The top directory of every subvolume.
pub const FIRST_FREE_OBJECTID: u64 = 256;
/// Item types (`BTRFS_*_KEY`).
pub const INODE_ITEM_KEY: u32 = 1;
pub const INODE_REF_KEY: u32 = 12;
pub const INODE_EXTREF_KEY: u32 = 13;

/// What tabula reads of a `struct btrfs_inode_item`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeItem {
    /// Transaction that created the inode.
    pub generation: u64,
    /// Last transaction that changed the inode item.
    pub transid: u64,
    pub size: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub rdev: u64,
    /// Modification time: seconds, nanoseconds.
    pub mtime: (u64, u32),
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

impl InodeItem {
    /// Decodes an `INODE_ITEM`'s data (160 bytes, packed, little-endian);
    /// `None` when it is too short.
    #[must_use]
    pub fn parse(data: &[u8]) -> Option<InodeItem> {
        Some(InodeItem {
            generation: le64(data, 0)?,
            transid: le64(data, 8)?,
            size: le64(data, 16)?,
            nlink: le32(data, 40)?,
            uid: le32(data, 44)?,
            gid: le32(data, 48)?,
            mode: le32(data, 52)?,
            rdev: le64(data, 56)?,
            mtime: (le64(data, 136)?, le32(data, 144)?),
        })
    }
}

/// One name of an inode: the directory inode holding it and the name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub parent: u64,
    pub name: Vec<u8>,
}

/// The names in an `INODE_REF` item (key offset = the parent directory) or
/// an `INODE_EXTREF` item (the parent is in each entry). A truncated item
/// yields the names before the damage.
#[must_use]
pub fn parse_names(item: &Item) -> Vec<Name> {
    let mut names = Vec::new();
    let d = &item.data;
    let mut at = 0;
    while at < d.len() {
        let (parent, len_at) = match item.item_type {
            INODE_REF_KEY => (item.offset, at + 8),
            INODE_EXTREF_KEY => match le64(d, at) {
                Some(p) => (p, at + 16),
                None => break,
            },
            _ => break,
        };
        let Some(len) = le16(d, len_at) else { break };
        let start = len_at + 2;
        let Some(name) = d.get(start..start + usize::from(len)) else {
            break;
        };
        names.push(Name {
            parent,
            name: name.to_vec(),
        });
        at = start + usize::from(len);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_ref_items_with_several_names_decode_each() {
        let mut data = Vec::new();
        for (index, name) in [(2u64, &b"a"[..]), (3, b"b\nc")] {
            data.extend(index.to_le_bytes());
            data.extend(u16::try_from(name.len()).unwrap().to_le_bytes());
            data.extend(name);
        }
        let item = Item {
            transid: 9,
            objectid: 300,
            item_type: INODE_REF_KEY,
            offset: 256,
            data,
        };
        assert_eq!(
            parse_names(&item),
            vec![
                Name {
                    parent: 256,
                    name: b"a".to_vec()
                },
                Name {
                    parent: 256,
                    name: b"b\nc".to_vec()
                }
            ]
        );
    }

    #[test]
    fn extref_items_carry_their_parent_and_truncation_stops_cleanly() {
        let mut data = Vec::new();
        data.extend(700u64.to_le_bytes());
        data.extend(5u64.to_le_bytes());
        data.extend(2u16.to_le_bytes());
        data.extend(b"xy");
        data.extend(701u64.to_le_bytes()); // truncated second entry
        let item = Item {
            transid: 9,
            objectid: 300,
            item_type: INODE_EXTREF_KEY,
            offset: 0xdead,
            data,
        };
        assert_eq!(
            parse_names(&item),
            vec![Name {
                parent: 700,
                name: b"xy".to_vec()
            }]
        );
        assert_eq!(InodeItem::parse(&[0; 100]), None);
    }
}
