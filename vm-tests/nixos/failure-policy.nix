# failure-policy: a rollback that cannot happen (here: the snapshot it should
# roll back to does not exist) deletes nothing, and the boot continues on the
# root as it is (onFailure = "continue", the default); with onFailure =
# "block" the same failure stops the boot in the initrd. Mirrors the QEMU
# harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "failure-policy";

  machine = common.node {
    flavour = "systemd";
    layout = "zfs";
    target.snapshot = "missing";
    variants.block.tabula.rollback.onFailure = "block";
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine, snapshot=None)
    boot_specialisation(machine)

    with subtest("the rollback failed, the boot continued"):
        log = rollback_log(machine)
        assert "rpool/local/root@missing" in log, f"the failure does not name the snapshot: {log}"
        machine.succeed("findmnt -no SOURCE / | grep -qx rpool/local/root")

    with subtest("nothing was deleted: what was written stays"):
        machine.succeed("echo still-here > /etc/tabula-written", "sync")
        reboot(machine)
        machine.succeed("grep -qx still-here /etc/tabula-written")
        machine.succeed("zfs list rpool/local/root rpool/safe/persist")

    with subtest("onFailure = block stops the boot in the initrd"):
        machine.succeed(
            "bootctl set-default nixos-generation-1-specialisation-tabula-block.conf", "sync"
        )
        machine.shutdown()
        machine.start()
        machine.wait_for_console_text("emergency mode")
        machine.crash()
  '';
}
