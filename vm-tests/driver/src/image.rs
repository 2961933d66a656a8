//! Disk images: the guest OS tree, cached base images (Btrfs with `@usr`,
//! a ZFS pool made inside a VM), per-scenario copies, host-side mounts.

use crate::env::{Env, fresh};
use crate::initrd::{self, Flavour, Item, Payload};
use crate::qemu::{self, Vm};
use crate::{Context, Result, bail, sh};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The guest OS tree (`/usr` + skeleton + harness service), cached; returns
/// its stamp file (the tree is `.cache/os-usr`), whose mtime is its age.
pub fn os_tree(env: &Env) -> Result<PathBuf> {
    let out = env.cache.join("os-usr");
    let stamp = env.cache.join("os-usr.stamp");
    let inputs = [
        env.here.join("guest/build-os.sh"),
        env.cache.join("stamps/rootfs"),
        env.cache.join("stamps/zfs"),
    ];
    if !out.is_dir() || !fresh(&stamp, &inputs) {
        let t = std::time::Instant::now();
        sh::run(
            "bash",
            &[
                env.here.join("guest/build-os.sh").as_os_str(),
                env.cache.as_os_str(),
                out.as_os_str(),
            ],
        )?;
        std::fs::write(&stamp, "").ctx(stamp.display())?;
        eprintln!(
            "vm: built the guest OS tree in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(stamp)
}

/// A host-side mount of a filesystem image; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    /// Mount point.
    pub dir: PathBuf,
}

impl Mount {
    /// Mount the top level (subvolid=5) of a Btrfs image through a loop device.
    pub fn btrfs(img: &Path) -> Result<Mount> {
        let dir = img.with_extension("mnt");
        std::fs::create_dir_all(&dir).ctx(dir.display())?;
        sh::run(
            "mount",
            &[
                "-o",
                "loop,subvolid=5",
                &img.display().to_string(),
                &dir.display().to_string(),
            ],
        )?;
        Ok(Mount { dir })
    }

    /// A path inside the mount.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = sh::run("umount", &[&self.dir]);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Create a Btrfs subvolume at `path` (host side, btrfs-progs).
pub fn subvol(path: &Path) -> Result<()> {
    sh::run(
        "btrfs",
        &["-q", "subvolume", "create", &path.display().to_string()],
    )?;
    Ok(())
}

/// The cached Btrfs base image: label `tabula`, `@usr` holding the OS tree.
pub fn btrfs_base(env: &Env) -> Result<PathBuf> {
    let os_stamp = os_tree(env)?;
    let os = env.cache.join("os-usr");
    let out = env.cache.join("images/btrfs-base.img");
    if fresh(&out, &[os_stamp, env.here.join("guest/build-os.sh")]) {
        return Ok(out);
    }
    let t = std::time::Instant::now();
    std::fs::create_dir_all(env.cache.join("images")).ctx("images dir")?;
    let tmp = out.with_extension("tmp.img");
    let _ = std::fs::remove_file(&tmp);
    sh::run("truncate", &["-s", "3G", &tmp.display().to_string()])?;
    sh::run(
        "mkfs.btrfs",
        &["-q", "-L", "tabula", &tmp.display().to_string()],
    )?;
    {
        let m = Mount::btrfs(&tmp)?;
        subvol(&m.p("@usr"))?;
        sh::bash(r#"cp -a "$1/." "$2/""#, &[&os, &m.p("@usr")])?;
    }
    std::fs::rename(&tmp, &out).ctx(out.display())?;
    eprintln!(
        "vm: built the Btrfs base image in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// The datasets of the cached ZFS pool image (`rpool` on `/dev/vda1`).
pub const ZFS_LAYOUT: &str = "\
zpool create -f -o ashift=12 -o cachefile=none -O mountpoint=none -O atime=off \
 -O compression=lz4 -O acltype=posixacl -O xattr=sa rpool /dev/vda1
zfs create -o canmount=off rpool/local
zfs create -o mountpoint=legacy rpool/local/root
zfs snapshot rpool/local/root@blank
zfs create -o mountpoint=legacy rpool/local/usr
zfs create -o canmount=off -o mountpoint=none rpool/local/old_roots
zfs create -o canmount=off rpool/safe
zfs create -o mountpoint=legacy rpool/safe/persist
";

/// The cached ZFS base image, made inside a VM (the host kernel has no ZFS):
/// a GPT disk with one partition holding `rpool` (see [`ZFS_LAYOUT`]),
/// `rpool/local/usr` holding the OS tree.
pub fn zfs_base(env: &Env) -> Result<PathBuf> {
    zfs_pool_image(env, "zfs-base", "setup-zfs-base", ZFS_LAYOUT)
}

/// The key file of the encrypted pool, where the initrd carries it (its
/// `keylocation` is `file://` this path, as a NixOS machine would name a
/// key file it puts into the initrd).
pub const ZFS_KEY_PATH: &str = "/etc/tabula-harness/zfs.key";
/// The passphrase of the encrypted pool (`keyformat=passphrase`).
pub const ZFS_KEY: &str = "tabula-harness-zfs-passphrase";

/// [`ZFS_LAYOUT`] with native encryption on the pool's top dataset, which
/// every dataset inherits (`encryptionroot` is `rpool`): aes-256-gcm, a
/// passphrase read from [`ZFS_KEY_PATH`].
pub fn zfs_encrypted_layout() -> String {
    let opts = format!(
        "-O encryption=aes-256-gcm -O keyformat=passphrase -O keylocation=file://{ZFS_KEY_PATH} rpool"
    );
    format!(
        "mkdir -p {dir}\nprintf %s '{ZFS_KEY}' >{ZFS_KEY_PATH}\n{layout}",
        dir = Path::new(ZFS_KEY_PATH)
            .parent()
            .map_or_else(String::new, |d| d.display().to_string()),
        layout = ZFS_LAYOUT.replacen(" rpool /dev/vda1", &format!(" {opts} /dev/vda1"), 1)
    )
}

/// The cached encrypted ZFS pool image: [`zfs_base`] with
/// [`zfs_encrypted_layout`].
pub fn zfs_encrypted_base(env: &Env) -> Result<PathBuf> {
    zfs_pool_image(
        env,
        "zfs-encrypted-base",
        "setup-zfs-encrypted-base",
        &zfs_encrypted_layout(),
    )
}

fn zfs_pool_image(env: &Env, file: &str, vm_name: &str, layout: &str) -> Result<PathBuf> {
    image_in_vm(
        env,
        &InVm {
            file,
            vm_name,
            what: &format!("the ZFS pool image {file}.img"),
            zfs: true,
            payload: Payload::default(),
            script: format!(
                "set -e\n{layout}mkdir -p /mnt\nmount -t zfs rpool/local/usr /mnt\n\
                 cd /mnt && tar -xf /dev/vdb && cd /\numount /mnt\nzfs list -o name,mountpoint,canmount\n\
                 zpool export rpool\n"
            ),
        },
    )
}

/// A cached base image made inside a VM, where the host kernel lacks what
/// the image needs (ZFS, device-mapper).
struct InVm<'a> {
    /// `images/<file>.img` in the cache.
    file: &'a str,
    /// The VM's name (its console log's).
    vm_name: &'a str,
    /// What the progress and error lines call the image.
    what: &'a str,
    /// A ZFS pool: needs the ZFS modules, and the disk gets one GPT
    /// partition for the pool (`/dev/vda1`).
    zfs: bool,
    /// What the scripted initrd carries besides the harness.
    payload: Payload,
    /// Run in stage 1 with the new 3 GiB disk as `/dev/vda` and a tar of
    /// the OS tree as `/dev/vdb`; exit 0 when the image is complete.
    script: String,
}

/// Makes `spec`'s image unless the cached one is newer than the OS tree.
fn image_in_vm(env: &Env, spec: &InVm<'_>) -> Result<PathBuf> {
    let file = spec.file;
    let os_stamp = os_tree(env)?;
    let os = env.cache.join("os-usr");
    let out = env.cache.join(format!("images/{file}.img"));
    if fresh(&out, &[os_stamp, env.here.join("guest/build-os.sh")]) {
        return Ok(out);
    }
    if spec.zfs && !env.zfs {
        bail!("ZFS modules were not built: run vm-tests/setup.sh without --no-zfs");
    }
    let t = std::time::Instant::now();
    std::fs::create_dir_all(env.cache.join("images")).ctx("images dir")?;
    let tar = env.cache.join(format!("images/{file}-os-usr.tar"));
    sh::bash(r#"tar -C "$1" -cf "$2" ."#, &[&os, &tar])?;
    let tmp = out.with_extension("tmp.img");
    let _ = std::fs::remove_file(&tmp);
    sh::run("truncate", &["-s", "3G", &tmp.display().to_string()])?;
    if spec.zfs {
        sh::bash(
            r#"echo 'label: gpt' | sfdisk -q "$1" && echo ',,L' | sfdisk -q --append "$1""#,
            &[&tmp],
        )?;
    }
    let initrd_path = env.work.join(format!("{file}.initrd"));
    initrd::assemble(env, Flavour::Scripted, &spec.payload, &initrd_path)?;
    let vm = Vm {
        name: spec.vm_name.into(),
        initrd: initrd_path,
        append: "tabula.harness=script".into(),
        disks: vec![tmp.clone(), tar.clone()],
        script: Some(spec.script.clone()),
        timeout: Duration::from_secs(600),
        mem_mb: 1536,
        rtc_base: None,
    };
    let b = qemu::boot(env, &vm, &mut |_| qemu::Hook::Continue)?;
    if b.get("script-exit") != Some("0") {
        bail!("creating {} failed; {}", spec.what, b.describe());
    }
    std::fs::rename(&tmp, &out).ctx(out.display())?;
    let _ = std::fs::remove_file(&tar);
    eprintln!(
        "vm: built {} in {:.1} s",
        spec.what,
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// The passphrase of the harness's LUKS2 containers (a key file in the
/// initrd, as NixOS's `boot.initrd.luks.devices.<name>.keyFile` puts one).
pub const LUKS_KEY: &str = "tabula-harness-luks-key";
/// The name the initrd maps the container under (`/dev/mapper/<name>`).
pub const LUKS_NAME: &str = "cryptroot";

/// Where the initrd carries the key file of the LUKS2 container.
pub const LUKS_KEY_PATH: &str = "/etc/tabula-harness/luks.key";

/// The initrd files that open the harness's LUKS2 container: the
/// crypttab line (read by the systemd flavour's systemd-cryptsetup-generator,
/// and by the scripted `/init`, which also loads dm-crypt only when it
/// exists), the key file, and dm-crypt for systemd-modules-load.
pub fn luks_initrd_files() -> Vec<(String, Item)> {
    vec![
        (
            "/etc/crypttab".into(),
            Item::Text(
                format!("{LUKS_NAME} /dev/vda {LUKS_KEY_PATH} luks\n"),
                0o644,
            ),
        ),
        (LUKS_KEY_PATH.into(), Item::Text(LUKS_KEY.into(), 0o400)),
        (
            "/etc/modules-load.d/tabula-luks.conf".into(),
            Item::Text(
                "dm_mod\ndm_crypt\nxts\naesni_intel\nalgif_skcipher\n".into(),
                0o644,
            ),
        ),
    ]
}

/// The cached LUKS2 image, made inside a VM (the host kernel may lack
/// device-mapper): a LUKS2 container on the whole disk (cheap key
/// derivation, PBKDF2 with 1,000 iterations, so that unlocking costs
/// nothing under TCG) holding a Btrfs filesystem labelled `tabula` with
/// `@usr` (the OS tree), `@root`, `@persist` and `@old_roots`.
pub fn luks_btrfs_base(env: &Env) -> Result<PathBuf> {
    image_in_vm(
        env,
        &InVm {
            file: "luks-btrfs-base",
            vm_name: "setup-luks-btrfs-base",
            what: "the LUKS2 + Btrfs base image",
            zfs: false,
            payload: Payload {
                initrd_files: luks_initrd_files(),
                ..Payload::default()
            },
            script: format!(
                "set -e\nmkdir -p /run/cryptsetup /mnt\n\
                 cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 \
                 --pbkdf-force-iterations 1000 --key-file {LUKS_KEY_PATH} /dev/vda\n\
                 cryptsetup open --key-file {LUKS_KEY_PATH} /dev/vda {LUKS_NAME}\n\
                 mkfs.btrfs -q -L tabula /dev/mapper/{LUKS_NAME}\n\
                 mount -o subvolid=5 /dev/mapper/{LUKS_NAME} /mnt\n\
                 for s in @usr @root @persist @old_roots; do btrfs -q subvolume create /mnt/$s; done\n\
                 cd /mnt/@usr && tar -xf /dev/vdb && cd /\nls /mnt\numount /mnt\n\
                 cryptsetup close {LUKS_NAME}\n"
            ),
        },
    )
}
