//! The Btrfs ioctls tabula needs, behind safe functions. This is the only
//! module of the workspace with `unsafe` code: each block is one `ioctl(2)`
//! on a borrowed, open file descriptor with a buffer this module owns, whose
//! layout is checked against `<linux/btrfs.h>` by the size assertions below.
//!
//! | ioctl | used for |
//! |---|---|
//! | `BTRFS_IOC_SUBVOL_CREATE_V2` | the new, empty root |
//! | `BTRFS_IOC_SNAP_CREATE_V2` | the new root as a writable snapshot of `blank` |
//! | `BTRFS_IOC_SNAP_DESTROY_V2` | deleting an old root and its nested subvolumes |
//! | `BTRFS_IOC_GET_SUBVOL_INFO` | a subvolume's id and creation time (otime, otransid) |
//! | `BTRFS_IOC_GET_SUBVOL_ROOTREF` | the subvolumes directly inside a subvolume |
//! | `BTRFS_IOC_INO_LOOKUP_USER` | where such a nested subvolume sits, relative to its parent |
//! | `BTRFS_IOC_TREE_SEARCH_V2` | the items of a subvolume's tree, from blocks written since a transaction (what `btrfs subvolume find-new` reads); old roots' creation transaction ids, parents and the default subvolume (root tree) |
//! | `BTRFS_IOC_INO_LOOKUP` | the path of a directory inode inside its subvolume (needs `CAP_SYS_ADMIN`) |
//!
//! The file is longer than the others on purpose: every `unsafe` block of
//! the workspace is here, next to the layouts it relies on.
//!
//! All of them exist since Linux 5.7 (`SNAP_DESTROY_V2`); NixOS's oldest
//! supported kernel is newer.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const BTRFS_IOCTL_MAGIC: u64 = 0x94;
const BTRFS_VOL_NAME_MAX: usize = 255;
const BTRFS_SUBVOL_NAME_MAX: usize = 4039;
const BTRFS_INO_LOOKUP_USER_PATH_MAX: usize = 4080 - BTRFS_VOL_NAME_MAX - 1;
const BTRFS_SUBVOL_RDONLY: u64 = 1 << 1;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (BTRFS_IOCTL_MAGIC << 8) | nr
}
const fn iow(nr: u64, size: usize) -> u64 {
    ioc(1, nr, size)
}
const fn ior(nr: u64, size: usize) -> u64 {
    ioc(2, nr, size)
}
const fn iowr(nr: u64, size: usize) -> u64 {
    ioc(3, nr, size)
}

/// `struct btrfs_ioctl_vol_args_v2`.
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; BTRFS_SUBVOL_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_timespec`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Timespec {
    sec: u64,
    nsec: u32,
}

/// `struct btrfs_ioctl_get_subvol_info_args`.
#[repr(C)]
struct GetSubvolInfoArgs {
    treeid: u64,
    name: [u8; BTRFS_VOL_NAME_MAX + 1],
    parent_id: u64,
    dirid: u64,
    generation: u64,
    flags: u64,
    uuid: [u8; 16],
    parent_uuid: [u8; 16],
    received_uuid: [u8; 16],
    ctransid: u64,
    otransid: u64,
    stransid: u64,
    rtransid: u64,
    ctime: Timespec,
    otime: Timespec,
    stime: Timespec,
    rtime: Timespec,
    reserved: [u64; 8],
}

/// One `rootref` of `struct btrfs_ioctl_get_subvol_rootref_args`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RootRef {
    treeid: u64,
    dirid: u64,
}

/// `struct btrfs_ioctl_get_subvol_rootref_args`.
#[repr(C)]
struct GetSubvolRootrefArgs {
    min_treeid: u64,
    rootref: [RootRef; 255],
    num_items: u8,
    align: [u8; 7],
}

/// `struct btrfs_ioctl_ino_lookup_user_args`.
#[repr(C)]
struct InoLookupUserArgs {
    dirid: u64,
    treeid: u64,
    name: [u8; BTRFS_VOL_NAME_MAX + 1],
    path: [u8; BTRFS_INO_LOOKUP_USER_PATH_MAX],
}

/// `struct btrfs_ioctl_search_key`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SearchKey {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: u64,
    unused2: u64,
    unused3: u64,
    unused4: u64,
}

/// `struct btrfs_ioctl_search_args_v2` without its flexible `buf[]`, which
/// follows it in the same allocation.
#[repr(C)]
#[derive(Clone, Copy)]
struct SearchArgsV2 {
    key: SearchKey,
    buf_size: u64,
}

/// `struct btrfs_ioctl_search_header`, read from the result buffer.
const SEARCH_HEADER_LEN: usize = 32;

/// `struct btrfs_ioctl_ino_lookup_args`.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

// The layouts above, checked against <linux/btrfs.h> (offsets measured with
// offsetof on x86_64; the kernel's structures are the same on every 64-bit
// architecture tabula targets).
const _: () = assert!(size_of::<VolArgsV2>() == 4096);
const _: () = assert!(std::mem::offset_of!(VolArgsV2, name) == 56);
const _: () = assert!(size_of::<Timespec>() == 16);
const _: () = assert!(size_of::<GetSubvolInfoArgs>() == 504);
const _: () = assert!(std::mem::offset_of!(GetSubvolInfoArgs, otransid) == 352);
const _: () = assert!(std::mem::offset_of!(GetSubvolInfoArgs, otime) == 392);
const _: () = assert!(size_of::<GetSubvolRootrefArgs>() == 4096);
const _: () = assert!(std::mem::offset_of!(GetSubvolRootrefArgs, num_items) == 4088);
const _: () = assert!(size_of::<InoLookupUserArgs>() == 4096);
const _: () = assert!(size_of::<SearchKey>() == 104);
const _: () = assert!(std::mem::offset_of!(SearchKey, min_type) == 56);
const _: () = assert!(std::mem::offset_of!(SearchKey, nr_items) == 64);
const _: () = assert!(size_of::<SearchArgsV2>() == 112);
const _: () = assert!(size_of::<InoLookupArgs>() == 4096);
const _: () = assert!(std::mem::offset_of!(GetSubvolInfoArgs, uuid) == 296);
const _: () = assert!(std::mem::offset_of!(GetSubvolInfoArgs, parent_uuid) == 312);
const _: () = assert!(std::mem::offset_of!(InoLookupUserArgs, path) == 272);

const BTRFS_IOC_TREE_SEARCH_V2: u64 = iowr(17, size_of::<SearchArgsV2>());
const BTRFS_IOC_INO_LOOKUP: u64 = iowr(18, size_of::<InoLookupArgs>());
const BTRFS_IOC_SNAP_CREATE_V2: u64 = iow(23, size_of::<VolArgsV2>());
const BTRFS_IOC_SUBVOL_CREATE_V2: u64 = iow(24, size_of::<VolArgsV2>());
const BTRFS_IOC_GET_SUBVOL_INFO: u64 = ior(60, size_of::<GetSubvolInfoArgs>());
const BTRFS_IOC_GET_SUBVOL_ROOTREF: u64 = iowr(61, size_of::<GetSubvolRootrefArgs>());
const BTRFS_IOC_INO_LOOKUP_USER: u64 = iowr(62, size_of::<InoLookupUserArgs>());
const BTRFS_IOC_SNAP_DESTROY_V2: u64 = iow(63, size_of::<VolArgsV2>());
const _: () = assert!(BTRFS_IOC_TREE_SEARCH_V2 == 0xc070_9411);
const _: () = assert!(BTRFS_IOC_INO_LOOKUP == 0xd000_9412);
const _: () = assert!(BTRFS_IOC_SNAP_CREATE_V2 == 0x5000_9417);
const _: () = assert!(BTRFS_IOC_SUBVOL_CREATE_V2 == 0x5000_9418);
const _: () = assert!(BTRFS_IOC_GET_SUBVOL_INFO == 0x81f8_943c);
const _: () = assert!(BTRFS_IOC_GET_SUBVOL_ROOTREF == 0xd000_943d);
const _: () = assert!(BTRFS_IOC_INO_LOOKUP_USER == 0xd000_943e);
const _: () = assert!(BTRFS_IOC_SNAP_DESTROY_V2 == 0x5000_943f);

fn vol_args(name: &CStr) -> io::Result<Box<VolArgsV2>> {
    let bytes = name.to_bytes();
    if bytes.is_empty() || bytes.len() > BTRFS_VOL_NAME_MAX || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single subvolume name"),
        ));
    }
    let mut args = Box::new(VolArgsV2 {
        fd: 0,
        transid: 0,
        flags: 0,
        unused: [0; 4],
        name: [0; BTRFS_SUBVOL_NAME_MAX + 1],
    });
    args.name[..bytes.len()].copy_from_slice(bytes);
    Ok(args)
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `FS_IOC_GETFLAGS` and `FS_IOC_SETFLAGS` (`_IOR`/`_IOW('f', 1/2, long)`
/// on 64-bit Linux): the inode flags `lsattr` and `chattr` show. The kernel
/// reads and writes an `int` through the pointer, whatever the `long` in
/// the definition.
const FS_IOC_GETFLAGS: u64 = 0x8008_6601;
const FS_IOC_SETFLAGS: u64 = 0x4008_6602;
/// `FS_NOCOW_FL`, `chattr +C`: no copy-on-write (nor checksums, nor
/// compression) for the file's data; on a directory, inherited by the files
/// created in it.
pub const FS_NOCOW_FL: u32 = 0x0080_0000;

/// The inode flags of the file open at `fd` (`FS_IOC_GETFLAGS`).
pub fn inode_flags(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut flags: libc::c_int = 0;
    // SAFETY: `fd` is open for the call's duration; `flags` is an owned
    // `int`, the size the kernel writes.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut flags) })?;
    // The flags are a bit pattern: the same 32 bits, read unsigned.
    Ok(u32::from_ne_bytes(flags.to_ne_bytes()))
}

/// Sets the inode flags of the file open at `fd` (`FS_IOC_SETFLAGS`) to
/// `flags`, as read by [`inode_flags`] and changed. Btrfs takes
/// [`FS_NOCOW_FL`] on a file only while it is empty; on a directory it only
/// applies to files created afterwards.
pub fn set_inode_flags(fd: BorrowedFd<'_>, flags: u32) -> io::Result<()> {
    // The same 32 bits, as the `int` the kernel reads.
    let flags = libc::c_int::from_ne_bytes(flags.to_ne_bytes());
    // SAFETY: `fd` is open for the call's duration; `flags` is an owned,
    // initialised `int`, which the kernel only reads.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_SETFLAGS as _, &flags) })
}

/// Creates an empty subvolume `name` in the directory `dir`.
pub fn subvol_create(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let mut args = vol_args(name)?;
    // SAFETY: `dir` is an open descriptor for the call's duration; `args` is
    // an owned, initialised `btrfs_ioctl_vol_args_v2` (size checked above)
    // with a NUL-terminated name, which the kernel only reads.
    check(unsafe {
        libc::ioctl(
            dir.as_raw_fd(),
            BTRFS_IOC_SUBVOL_CREATE_V2 as _,
            &raw mut *args,
        )
    })
}

/// Creates `name` in `dir` as a snapshot of the subvolume open at `source`,
/// writable unless `readonly`.
pub fn snap_create(
    dir: BorrowedFd<'_>,
    name: &CStr,
    source: BorrowedFd<'_>,
    readonly: bool,
) -> io::Result<()> {
    let mut args = vol_args(name)?;
    args.fd = i64::from(source.as_raw_fd());
    if readonly {
        args.flags = BTRFS_SUBVOL_RDONLY;
    }
    // SAFETY: as in `subvol_create`; `args.fd` names `source`, which stays
    // open for the call's duration.
    check(unsafe {
        libc::ioctl(
            dir.as_raw_fd(),
            BTRFS_IOC_SNAP_CREATE_V2 as _,
            &raw mut *args,
        )
    })
}

/// Deletes the subvolume `name` directly in the directory `dir`. The kernel
/// refuses (`ENOTEMPTY`) while subvolumes are nested inside it.
pub fn snap_destroy(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let mut args = vol_args(name)?;
    // SAFETY: as in `subvol_create`; flags 0 selects the subvolume by name.
    check(unsafe {
        libc::ioctl(
            dir.as_raw_fd(),
            BTRFS_IOC_SNAP_DESTROY_V2 as _,
            &raw mut *args,
        )
    })
}

/// What tabula needs to know about a subvolume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubvolInfo {
    /// The subvolume (tree) id.
    pub id: u64,
    /// The id of the subvolume that contains it.
    pub parent_id: u64,
    /// Transaction that created it: a clock that cannot be wrong.
    pub otransid: u64,
    /// Last transaction that changed anything in it; equal to `otransid`
    /// while nothing was written to it since it was made.
    pub generation: u64,
    /// Creation time, seconds since the epoch, as the clock said then.
    pub otime: i64,
    /// Its UUID.
    pub uuid: [u8; 16],
    /// The UUID of the subvolume it is a snapshot of; all zero for none.
    pub parent_uuid: [u8; 16],
}

/// Describes the subvolume that contains the open file `fd`.
pub fn subvol_info(fd: BorrowedFd<'_>) -> io::Result<SubvolInfo> {
    let mut args = Box::new(GetSubvolInfoArgs {
        treeid: 0,
        name: [0; BTRFS_VOL_NAME_MAX + 1],
        parent_id: 0,
        dirid: 0,
        generation: 0,
        flags: 0,
        uuid: [0; 16],
        parent_uuid: [0; 16],
        received_uuid: [0; 16],
        ctransid: 0,
        otransid: 0,
        stransid: 0,
        rtransid: 0,
        ctime: Timespec { sec: 0, nsec: 0 },
        otime: Timespec { sec: 0, nsec: 0 },
        stime: Timespec { sec: 0, nsec: 0 },
        rtime: Timespec { sec: 0, nsec: 0 },
        reserved: [0; 8],
    });
    // SAFETY: `fd` is open for the call; `args` is an owned, initialised
    // `btrfs_ioctl_get_subvol_info_args` (size checked above) that the kernel
    // fills in.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            BTRFS_IOC_GET_SUBVOL_INFO as _,
            &raw mut *args,
        )
    })?;
    Ok(SubvolInfo {
        id: args.treeid,
        parent_id: args.parent_id,
        otransid: args.otransid,
        generation: args.generation,
        otime: i64::try_from(args.otime.sec).unwrap_or(i64::MAX),
        uuid: args.uuid,
        parent_uuid: args.parent_uuid,
    })
}

/// A subvolume directly inside another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    /// Its subvolume id.
    pub id: u64,
    /// The inode, in the parent subvolume, of the directory holding it.
    pub dirid: u64,
}

/// The subvolumes directly inside the subvolume that contains the open
/// file `fd`, wherever in it they sit (see [`Child::dirid`]).
pub fn children(fd: BorrowedFd<'_>) -> io::Result<Vec<Child>> {
    let mut found = Vec::new();
    let mut args = Box::new(GetSubvolRootrefArgs {
        min_treeid: 0,
        rootref: [RootRef {
            treeid: 0,
            dirid: 0,
        }; 255],
        num_items: 0,
        align: [0; 7],
    });
    loop {
        // SAFETY: `fd` is open for the call; `args` is an owned, initialised
        // `btrfs_ioctl_get_subvol_rootref_args` (size checked above). The
        // kernel reads `min_treeid` and writes the refs, `num_items` and the
        // next `min_treeid`.
        let ret = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                BTRFS_IOC_GET_SUBVOL_ROOTREF as _,
                &raw mut *args,
            )
        };
        let more = match check(ret) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EOVERFLOW) => true,
            Err(e) => return Err(e),
        };
        let n = usize::from(args.num_items).min(args.rootref.len());
        found.extend(args.rootref[..n].iter().map(|r| Child {
            id: r.treeid,
            dirid: r.dirid,
        }));
        if !more {
            return Ok(found);
        }
    }
}

/// Where the nested subvolume `child` sits, relative to the directory open
/// at `fd` (in the parent subvolume, at or above the child's directory;
/// the kernel refuses with `EACCES` otherwise): the directory path (empty,
/// or ending in `/`) and the child's name in that directory.
pub fn child_path(fd: BorrowedFd<'_>, child: Child) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut args = Box::new(InoLookupUserArgs {
        dirid: child.dirid,
        treeid: child.id,
        name: [0; BTRFS_VOL_NAME_MAX + 1],
        path: [0; BTRFS_INO_LOOKUP_USER_PATH_MAX],
    });
    // SAFETY: `fd` is open for the call; `args` is an owned, initialised
    // `btrfs_ioctl_ino_lookup_user_args` (size checked above); the kernel
    // writes NUL-terminated strings into `name` and `path`.
    check(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            BTRFS_IOC_INO_LOOKUP_USER as _,
            &raw mut *args,
        )
    })?;
    let until_nul = |b: &[u8]| b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec();
    Ok((until_nul(&args.path), until_nul(&args.name)))
}

/// Which items of which tree [`tree_search`] returns: keys from
/// `(min_objectid, min_type, min_offset)` to `(max_objectid, max_type,
/// max_offset)` in key order, from tree blocks written in a transaction in
/// `min_transid..=max_transid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Search {
    /// The tree: a subvolume id, or 0 for the subvolume of the descriptor.
    pub tree_id: u64,
    pub min_objectid: u64,
    pub max_objectid: u64,
    pub min_type: u32,
    pub max_type: u32,
    pub min_offset: u64,
    pub max_offset: u64,
    pub min_transid: u64,
    pub max_transid: u64,
}

impl Search {
    /// Every item of the tree `tree_id`.
    #[must_use]
    pub fn all(tree_id: u64) -> Search {
        Search {
            tree_id,
            min_objectid: 0,
            max_objectid: u64::MAX,
            min_type: 0,
            max_type: u32::MAX,
            min_offset: 0,
            max_offset: u64::MAX,
            min_transid: 0,
            max_transid: u64::MAX,
        }
    }
}

/// One item found by [`tree_search`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The generation of the tree block holding the item.
    pub transid: u64,
    pub objectid: u64,
    pub item_type: u32,
    pub offset: u64,
    /// The item's bytes, as stored (little-endian structures).
    pub data: Vec<u8>,
}

/// Calls `found` for each item that `search` selects, in key order, until
/// it returns `false`. `fd` is any open file on the filesystem.
pub fn tree_search(
    fd: BorrowedFd<'_>,
    search: &Search,
    mut found: impl FnMut(Item) -> bool,
) -> io::Result<()> {
    const HEAD: usize = size_of::<SearchArgsV2>();
    // One object's items (an inode and its names) fit in a page; a range
    // gets 64 KiB. An item larger than the buffer makes the kernel answer
    // EOVERFLOW with the size it needs, and the search retries with it.
    let mut buf_len: usize = if search.min_objectid == search.max_objectid {
        4096
    } else {
        64 * 1024
    };
    // u64 words keep the header's alignment; the kernel writes the items
    // into the bytes after the header.
    let mut words = vec![0u64; (HEAD + buf_len).div_ceil(8)];
    let mut next = (search.min_objectid, search.min_type, search.min_offset);
    loop {
        let args = SearchArgsV2 {
            key: SearchKey {
                tree_id: search.tree_id,
                min_objectid: next.0,
                max_objectid: search.max_objectid,
                min_offset: next.2,
                max_offset: search.max_offset,
                min_transid: search.min_transid,
                max_transid: search.max_transid,
                min_type: next.1,
                max_type: search.max_type,
                nr_items: 4096,
                unused: 0,
                unused1: 0,
                unused2: 0,
                unused3: 0,
                unused4: 0,
            },
            buf_size: buf_len as u64,
        };
        let head = words.as_mut_ptr().cast::<SearchArgsV2>();
        // SAFETY: `words` is an owned, zeroed, 8-byte aligned allocation of
        // at least `HEAD + buf_len` bytes; the header written here is a
        // `btrfs_ioctl_search_args_v2` (size checked above) whose `buf_size`
        // says how many bytes follow it, so the kernel writes only inside
        // the allocation; `fd` is open for the call.
        let ret = check(unsafe {
            head.write(args);
            libc::ioctl(fd.as_raw_fd(), BTRFS_IOC_TREE_SEARCH_V2 as _, head)
        });
        // SAFETY: `head` points at the initialised header of `words`, which
        // is still alive and not otherwise borrowed.
        let (nr, wanted) = unsafe { ((*head).key.nr_items as usize, (*head).buf_size) };
        match ret {
            // The next item alone does not fit: the kernel copied nothing
            // back but the size it needs.
            Err(e) if e.raw_os_error() == Some(libc::EOVERFLOW) => {
                let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
                if wanted <= buf_len || wanted > 16 << 20 {
                    return Err(e);
                }
                buf_len = wanted;
                words = vec![0u64; (HEAD + buf_len).div_ceil(8)];
                continue;
            }
            other => other?,
        }
        if nr == 0 {
            return Ok(());
        }
        // SAFETY: any initialised u64 memory is valid as bytes; the view
        // covers exactly the allocation of `words` and lives no longer.
        let bytes: &[u8] =
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) };
        let buf = &bytes[HEAD..];
        let mut at = 0usize;
        let mut last = next;
        for _ in 0..nr {
            let Some(h) = buf.get(at..at + SEARCH_HEADER_LEN) else {
                break;
            };
            let u64_at = |i: usize| u64::from_ne_bytes(h[i..i + 8].try_into().unwrap_or([0; 8]));
            let u32_at = |i: usize| u32::from_ne_bytes(h[i..i + 4].try_into().unwrap_or([0; 4]));
            let len = u32_at(28) as usize;
            let start = at + SEARCH_HEADER_LEN;
            let Some(data) = buf.get(start..start + len) else {
                break;
            };
            let item = Item {
                transid: u64_at(0),
                objectid: u64_at(8),
                offset: u64_at(16),
                item_type: u32_at(24),
                data: data.to_vec(),
            };
            last = (item.objectid, item.item_type, item.offset);
            at = start + len;
            if !found(item) {
                return Ok(());
            }
        }
        // The key after the last one returned, as btrfs-progs computes it.
        next = match last {
            (o, t, off) if off < u64::MAX => (o, t, off + 1),
            (o, t, _) if t < u32::MAX => (o, t + 1, 0),
            (o, _, _) if o < u64::MAX => (o + 1, 0, 0),
            _ => return Ok(()),
        };
        if (next.0, next.1, next.2) > (search.max_objectid, search.max_type, search.max_offset) {
            return Ok(());
        }
    }
}

/// The path of the directory inode `dir` inside the subvolume `tree_id`,
/// relative to the subvolume's top: empty for its top directory, else
/// ending in `/`. Needs `CAP_SYS_ADMIN`; `fd` is any open file on the
/// filesystem.
pub fn ino_lookup(fd: BorrowedFd<'_>, tree_id: u64, dir: u64) -> io::Result<Vec<u8>> {
    let mut args = Box::new(InoLookupArgs {
        treeid: tree_id,
        objectid: dir,
        name: [0; 4080],
    });
    // SAFETY: `fd` is open for the call; `args` is an owned, initialised
    // `btrfs_ioctl_ino_lookup_args` (size checked above); the kernel writes
    // a NUL-terminated path into `name`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), BTRFS_IOC_INO_LOOKUP as _, &raw mut *args) })?;
    let end = args
        .name
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(args.name.len());
    Ok(args.name[..end].to_vec())
}

/// The tree of tree roots, and the keys tabula reads in it.
const BTRFS_ROOT_TREE_OBJECTID: u64 = 1;
const BTRFS_ROOT_TREE_DIR_OBJECTID: u64 = 6;
const BTRFS_DIR_ITEM_KEY: u32 = 84;
const BTRFS_ROOT_ITEM_KEY: u32 = 132;
const BTRFS_ROOT_BACKREF_KEY: u32 = 144;
/// `offsetof(struct btrfs_root_item, otransid)` (the struct is packed);
/// root items written before Linux 3.5 end before it.
const ROOT_ITEM_OTRANSID: usize = 303;
/// `offsetof(struct btrfs_dir_item, name_len)`, `sizeof(struct btrfs_dir_item)`.
const DIR_ITEM_NAME_LEN: usize = 27;
const DIR_ITEM_LEN: usize = 30;

/// The items of tree `tree_id` with objectid `objectid` and type
/// `item_type` (any offset), as (key offset, item body). Needs
/// `CAP_SYS_ADMIN`.
fn items_of(
    fd: BorrowedFd<'_>,
    tree_id: u64,
    objectid: u64,
    item_type: u32,
) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let mut found = Vec::new();
    let search = Search {
        min_objectid: objectid,
        max_objectid: objectid,
        min_type: item_type,
        max_type: item_type,
        ..Search::all(tree_id)
    };
    tree_search(fd, &search, |item| {
        if item.objectid == objectid && item.item_type == item_type {
            found.push((item.offset, item.data));
        }
        true
    })?;
    Ok(found)
}

/// The creation transaction id (`otransid`) of subvolume `id`, read from
/// its root item in the root tree, without opening the subvolume: the
/// filesystem's own order of creation, which no clock can disturb. `0` for
/// a root item older than Linux 3.5, which has none.
pub fn subvol_otransid(fd: BorrowedFd<'_>, id: u64) -> io::Result<u64> {
    let items = items_of(fd, BTRFS_ROOT_TREE_OBJECTID, id, BTRFS_ROOT_ITEM_KEY)?;
    let (_, item) = items.first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("subvolume {id} has no root item"),
        )
    })?;
    Ok(item
        .get(ROOT_ITEM_OTRANSID..ROOT_ITEM_OTRANSID + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes))
}

/// The filesystem's default subvolume (`btrfs subvolume set-default`), the
/// one a mount without `subvol=`/`subvolid=` shows: the `default` entry of
/// the root tree's directory. `5` (the top level) when none is set.
pub fn default_subvol(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let items = items_of(
        fd,
        BTRFS_ROOT_TREE_OBJECTID,
        BTRFS_ROOT_TREE_DIR_OBJECTID,
        BTRFS_DIR_ITEM_KEY,
    )?;
    for (_, item) in items {
        // An item holds one or more `btrfs_dir_item`s (on hash collisions),
        // each: location key (objectid u64, type u8, offset u64), transid
        // u64, data_len u16, name_len u16, type u8, then the name and data.
        let mut at = 0;
        while let Some(head) = item.get(at..at + DIR_ITEM_LEN) {
            let le16 = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
            let name_len = usize::from(le16(DIR_ITEM_NAME_LEN));
            let data_len = usize::from(le16(DIR_ITEM_NAME_LEN - 2));
            let name = item.get(at + DIR_ITEM_LEN..at + DIR_ITEM_LEN + name_len);
            if name == Some(b"default".as_slice()) {
                let mut location = [0u8; 8];
                location.copy_from_slice(&head[0..8]);
                return Ok(u64::from_le_bytes(location));
            }
            at += DIR_ITEM_LEN + name_len + data_len;
        }
    }
    Ok(5)
}

/// The subvolume that contains subvolume `id` (its root backref), or
/// `None` for the top level (and for a subvolume deleted meanwhile).
pub fn subvol_parent(fd: BorrowedFd<'_>, id: u64) -> io::Result<Option<u64>> {
    let items = items_of(fd, BTRFS_ROOT_TREE_OBJECTID, id, BTRFS_ROOT_BACKREF_KEY)?;
    Ok(items.first().map(|(parent, _)| *parent))
}
