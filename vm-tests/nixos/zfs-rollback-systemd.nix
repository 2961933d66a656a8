# zfs-rollback, systemd initrd (After=/Requires=zfs-import-rpool.service):
# rpool/local/root goes back to @blank at every boot (zfs rollback -r), after
# the pool import and before the root is mounted, as the journal shows;
# rpool/safe/persist keeps what is persisted. The scenario is common.nix's
# zfsRollback; mirrors the QEMU harness scenario of the same name.
{ self }:
(import ./common.nix { inherit self; }).zfsRollback "systemd"
