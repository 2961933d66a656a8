# failure-policy: a rollback that cannot happen (here: the snapshot it should
# roll back to does not exist) deletes nothing, and the boot continues on the
# root as it is (onFailure = "continue", the default); with onFailure =
# "block" the same failure stops the boot in the initrd. Mirrors the QEMU
# harness scenario.
#
# How "stops the boot" shows in a NixOS test VM (systemd stage 1): the failed
# unit fails initrd.target, which it is required by, and systemd isolates
# emergency.target. nixpkgs' test instrumentation boots with
# `boot.panic_on_fail` and `panic=1` (nixos/modules/testing/
# test-instrumentation.nix), so emergency.target starts nixpkgs'
# panic-on-fail.service (systemd/initrd.nix), which crashes the kernel through
# /proc/sysrq-trigger; panic=1 then reboots, and QEMU, started with
# -no-reboot, exits. The emergency shell's text would go to tty0 (the last
# console= is /dev/console), but the kernel's panic line reaches every
# console, the serial one the test reads included. The block entry is booted
# once (systemd-boot's one-shot entry), so the next start boots the default
# entry again.
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
    import base64

    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine, snapshot=None)
    boot_specialisation(machine)

    with subtest("the rollback failed, the boot continued"):
        log = rollback_log(machine)
        assert "rpool/local/root@missing" in log, f"the failure does not name the snapshot: {log}"
        assert mounted(machine, "/", "SOURCE") == "rpool/local/root"

    with subtest("nothing was deleted: what was written stays"):
        machine.succeed("echo still-here > /etc/tabula-written", "sync")
        reboot(machine)
        machine.succeed("grep -qx still-here /etc/tabula-written")
        machine.succeed("zfs list rpool/local/root rpool/safe/persist")

    with subtest("onFailure = block stops the boot in the initrd (a panic, in a test VM)"):
        machine.succeed(
            "bootctl set-oneshot nixos-generation-1-specialisation-tabula-block.conf", "sync"
        )
        machine.shutdown()
        machine.start()
        machine.wait_for_console_text("Kernel panic - not syncing: sysrq triggered crash", timeout=600)
        machine.wait_for_shutdown()

    with subtest("the next boot is the default entry again, and the blocked boot deleted nothing"):
        machine.start()
        machine.wait_for_unit("multi-user.target")
        machine.succeed("grep -qx still-here /etc/tabula-written")
        machine.succeed("zfs list rpool/local/root rpool/safe/persist")
        # systemd-boot's LoaderEntrySelected: 4 bytes of attributes, then UTF-16LE
        raw = machine.succeed(
            "tail -c +5 /sys/firmware/efi/efivars/LoaderEntrySelected-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f | base64 -w0"
        )
        entry = base64.b64decode(raw).decode("utf-16-le").rstrip("\0")
        assert entry == "nixos-generation-1-specialisation-tabula.conf", f"booted {entry!r}"
  '';
}
