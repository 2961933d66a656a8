//! The guest's side of cli-zfs: the scripts of its two boots, which print
//! `tabula`'s answers (prefixed `@@BEFORE `, `@@AFTER `, `@@ROOTS `, ...)
//! and `@@TABULA key=value` marks for the checks in the parent module.

/// Shell helpers: extended attributes through perl's `syscall` (the guest
/// has no attr tools): `setx FILE NAME VALUE`, `getx FILE NAME`; `meta
/// FILE`: uid:gid:mode:size:mtime:atime (read before the content, which
/// would touch the access time).
pub(super) const HELPERS: &str = r#"
T=/opt/tabula/bin/tabula
setx() { perl -e 'syscall(188, $ARGV[0], $ARGV[1], $ARGV[2], length($ARGV[2]), 0) == 0 or die "setxattr $ARGV[0]: $!\n"' "$@"; }
getx() { perl -e 'my $b = "\0" x 256; my $n = syscall(191, $ARGV[0], $ARGV[1], $b, 256); print $n < 0 ? "none" : substr($b, 0, $n)' "$@"; }
meta() { stat -c '%u:%g:%a:%s:%Y:%X' "$1" 2>/dev/null || echo missing; }
dmesg -n 1 || true
"#;

/// Boot 1: the answer before, the planted files, the answer after.
pub(super) const BOOT1: &str = r#"
set -e -o pipefail
sync
$T diff --json --all >/run/diff-before.json
mkdir -p /srv/planted/sub
printf 'planted data\n' >/srv/planted/file
chown nobody:nogroup /srv/planted/file
chmod 0640 /srv/planted/file
setx /srv/planted/file user.tabula kept-xattr
setx /srv/planted user.tabula dir-xattr
touch -m -d @1700000000 /srv/planted/file
touch -a -d @1700000100 /srv/planted/file
printf 'x' >"/srv/planted/sub/new
line"
printf 'y' >"/srv/planted/sub/$(printf '\377')name"
ln -s /nix/store/00000000000000000000000000000000-bash/bin/sh /srv/planted/store-link
printf 'conf\n' >/etc/planted.conf
echo persisted >/var/lib/tabula-test/planted-persisted
echo secret >/etc/tabula-test.conf
sync
$T diff --json --all >/run/diff-after.json
sed 's/^/@@BEFORE /' /run/diff-before.json
sed 's/^/@@AFTER /' /run/diff-after.json
mark "planted-meta=$(meta /srv/planted/file)"
wait_prune
"#;

/// Boot 2: the old roots, then the restores and the checks.
pub(super) const BOOT2: &str = r#"
set -e -o pipefail
wait_prune
$T roots --json >/run/roots.json
sed 's/^/@@ROOTS /' /run/roots.json
old=$(sed -n 's/^ *"name": "\(.*\)",\{0,1\}$/\1/p' /run/roots.json | head -n 1)
mark "old-root=$old"
ds=rpool/local/old_roots/$old
zfs snapshot "$ds@tabula-check"
props() { zfs get -H -p -o value guid,written,written@tabula-check,referenced "$ds" | paste -sd,; }
mark "old-props-snapshot=$(props)"
# The tree of the old root (names, types, owners, modes, sizes, mtimes,
# content), through a plain read-only mount. The first mount of a dataset
# that was a running root also finishes its intent log (ZFS writes the log
# header, read-only mounts too); done here, before the measure.
mkdir -p /run/old
digest() {
  mount -t zfs -o ro "$ds" /run/old || { echo unmountable; return; }
  echo "$(find /run/old | wc -l):$( (cd /run/old && find . -printf '%p %y %U:%G %m %s %T@\n' | LC_ALL=C sort &&
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum | cut -c1-16)"
  umount /run/old
}
mark "old-digest-before=$(digest)"
mark "old-props-before=$(props)"
$T restore /srv/planted --from "$old" --dry-run | sed 's/^/@@DRY /'
mark "dry-storage=$([ -e /persist/srv ] && echo present || echo absent) dry-place=$([ -e /srv/planted ] && echo present || echo absent)"
$T restore /srv/planted --from "$old" --to storage | sed 's/^/@@STORAGE /'
$T restore /srv/planted/file --from "$old" --to place | sed 's/^/@@PLACE /'
mark "storage-meta=$(meta /persist/srv/planted/file) place-meta=$(meta /srv/planted/file)"
mark "storage-dir-mode=$(stat -c %a /persist/srv/planted)"
mark "storage-xattr=$(getx /persist/srv/planted/file user.tabula) place-xattr=$(getx /srv/planted/file user.tabula) storage-dir-xattr=$(getx /persist/srv/planted user.tabula)"
mark "storage-data=$(tr ' ' + </persist/srv/planted/file) place-data=$(tr ' ' + </srv/planted/file)"
mark "storage-newline=$([ -f "/persist/srv/planted/sub/new
line" ] && echo present || echo absent) storage-byte=$([ -f "/persist/srv/planted/sub/$(printf '\377')name" ] && echo present || echo absent)"
mark "storage-link=$(readlink /persist/srv/planted/store-link)"
mark "old-props-after=$(props)"
mark "old-mounted=$(zfs get -H -o value mounted "$ds") old-in-mountinfo=$(grep -c old_roots /proc/self/mountinfo || true)"
mark "old-digest-after=$(digest)"
zfs destroy "$ds@tabula-check"
"#;
