# btrfs-rotation, systemd (tabula-rollback.service) initrd: / is erased at every boot, persisted data keeps
# its owner and mode, and the previous root is kept under @old_roots with its
# creation time as name. Mirrors the QEMU harness scenario of the same name.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
{
  name = "tabula-btrfs-rotation-systemd";

  nodes.machine = common.node {
    flavour = "systemd";
    layout = "btrfs";
  };

  testScript = common.helpers + ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)
    boot_specialisation(machine)

    with subtest("the root is the fresh @root"):
        machine.succeed("findmnt -no FSTYPE,OPTIONS / | grep -E '^btrfs .*subvol=/@root(,|$)'")
        assert "@root" in rollback_log(machine), "tabula-rollback logged nothing about @root"
        # ran as the initrd unit built from rollback-unit.json, before the root was mounted
        machine.succeed("journalctl -b -o cat -u tabula-rollback.service | grep -q '^Finished'")
        assert_finished_before(machine, "tabula-rollback.service", "sysroot.mount")

    with subtest("write to the root and to a persisted directory, reboot"):
        write_state(machine)
        reboot(machine)

    with subtest("the root is clean, persisted data intact"):
        check_state(machine)

    with subtest("the previous root is under @old_roots, named by its creation time"):
        machine.succeed("mkdir -p /mnt && mount -o subvolid=5 /dev/disk/by-label/tabula /mnt")
        names = machine.succeed("ls /mnt/@old_roots").split()
        assert len(names) == 2, f"expected the two previous roots, found {names}"
        assert all(TIMESTAMP.match(n) for n in names), f"old roots not named by time: {names}"
        machine.succeed("grep -qx erased /mnt/@old_roots/*/etc/tabula-erased")
        machine.succeed("umount /mnt")
  '';
}
