# zfs-rollback, systemd (After=/Requires=zfs-import-rpool.service) initrd: rpool/local/root goes back to @blank at every boot
# (zfs rollback -r), after the pool import and before the root is mounted;
# rpool/safe/persist keeps what is persisted. Mirrors the QEMU harness
# scenario of the same name.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
{
  name = "tabula-zfs-rollback-systemd";

  nodes.machine = common.node {
    flavour = "systemd";
    layout = "zfs";
  };

  testScript = common.helpers + ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine)
    boot_specialisation(machine)

    with subtest("the root is rpool/local/root"):
        machine.succeed("findmnt -no SOURCE,FSTYPE / | grep -qx 'rpool/local/root *zfs'")
        assert "rpool/local/root@blank" in rollback_log(machine), "tabula-rollback logged nothing about the rollback"
        # after the pool import, before the root is mounted
        assert_finished_before(machine, "zfs-import-rpool.service", "tabula-rollback.service")
        assert_finished_before(machine, "tabula-rollback.service", "sysroot.mount")

    with subtest("write to the root and to a persisted directory, reboot"):
        write_state(machine)
        machine.succeed("zfs snapshot rpool/local/root@later")
        reboot(machine)

    with subtest("the root is back at @blank, persisted data intact"):
        check_state(machine)
        snapshots = machine.succeed("zfs list -H -o name -t snapshot rpool/local/root").split()
        assert snapshots == ["rpool/local/root@blank"], f"rollback -r keeps only @blank, found {snapshots}"
  '';
}
