# btrfs-blank-template: with `blank` set, each new root is a writable
# snapshot of that subvolume instead of an empty one, so what the template
# holds is there at every boot and what was written is not. Mirrors the QEMU
# harness scenario of the same name.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "btrfs-blank-template";

  machine = common.node {
    flavour = "systemd";
    layout = "btrfs";
    target.blank = "@blank";
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)
    machine.succeed(
        "mount /dev/vdb /mnt",
        "btrfs subvolume create /mnt/@blank",
        "mkdir -p /mnt/@blank/etc && echo template > /mnt/@blank/etc/from-blank",
        "umount /mnt",
    )
    boot_specialisation(machine)

    with subtest("the root is a snapshot of @blank"):
        machine.succeed("grep -qx template /etc/from-blank")

    with subtest("writes, also to the template's files, are gone after a reboot"):
        write_state(machine)
        machine.succeed("echo changed > /etc/from-blank")
        reboot(machine)
        check_state(machine)
        machine.succeed("grep -qx template /etc/from-blank")

    with subtest("@blank itself is untouched"):
        machine.succeed(
            "mkdir -p /mnt",
            "mount -o subvolid=5 /dev/disk/by-label/tabula /mnt",
            "grep -qx template /mnt/@blank/etc/from-blank",
            "test ! -e /mnt/@blank/etc/tabula-erased",
            "umount /mnt",
        )
  '';
}
