# btrfs-rotation, scripted initrd (postResumeCommands): / is erased at every
# boot, persisted data keeps its owner and mode, and the previous root is kept
# under @old_roots with its creation time as name. The scenario is
# common.nix's btrfsRotation; mirrors the QEMU harness scenario of the same name.
{ self }:
(import ./common.nix { inherit self; }).btrfsRotation "scripted"
