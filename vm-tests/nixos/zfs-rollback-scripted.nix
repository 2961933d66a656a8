# zfs-rollback, scripted initrd (postResumeCommands, after nixpkgs' pool
# import there): rpool/local/root goes back to @blank at every boot (zfs
# rollback -r), before the root is mounted; rpool/safe/persist keeps what is
# persisted. The scenario is common.nix's zfsRollback; mirrors the QEMU
# harness scenario of the same name.
{ self }:
(import ./common.nix { inherit self; }).zfsRollback "scripted"
