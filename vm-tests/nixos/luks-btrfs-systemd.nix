# luks-btrfs, systemd initrd: seed 001's Btrfs layout inside a LUKS2 container,
# opened in stage 1 with a key file before tabula-rollback, whose device is
# /dev/mapper/cryptroot; / is erased at every boot, persisted data kept, the
# previous root under @old_roots. The scenario is common.nix's luksBtrfs;
# mirrors the QEMU harness scenario of the same name.
{ self }:
(import ./common.nix { inherit self; }).luksBtrfs "systemd"
