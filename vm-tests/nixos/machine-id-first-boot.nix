# machine-id-first-boot: /etc/machine-id persisted with inInitrd (written
# method = "auto", as the impermanence compatibility module writes files;
# tabula makes it a bind mount there), three boots from an empty /persist:
# the first is a first boot whose id systemd-machine-id-commit writes
# through the bind mount into storage, the next two keep that id. The file
# is never a symbolic link, through which systemd 258 and later no longer
# create a first boot's id (systemd#39717, preservation#22). Mirrors the QEMU
# harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "machine-id-first-boot";

  machine = common.node {
    flavour = "systemd";
    layout = "btrfs";
    tabula = {
      tabula.persist."/persist".files = [
        {
          path = "/etc/machine-id";
          inInitrd = true;
          method = "auto";
        }
      ];
    };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)

    COMMIT = "systemd-machine-id-commit.service"


    def identity():
        mid = machine.succeed("cat /etc/machine-id").strip()
        assert re.fullmatch(r"[0-9a-f]{32}", mid) and mid != "0" * 32, f"not a machine id: {mid!r}"
        machine.succeed("test ! -L /etc/machine-id", "findmnt -no TARGET /etc/machine-id")
        machine.succeed("test ! -L /persist/etc/machine-id")
        persisted = machine.succeed("cat /persist/etc/machine-id").strip()
        assert persisted == mid, f"the persisted copy holds {persisted!r}, /etc/machine-id {mid!r}"
        return mid


    def commit_ran():
        started = machine.succeed(f"systemctl show -p ExecMainStartTimestampMonotonic --value {COMMIT}").strip()
        return started not in ("", "0")


    def first_boot_lines():
        return [l for l in journal(machine) if "detected first boot" in l.lower()]


    with subtest("boot 1, from an empty /persist: a first boot, its id committed into storage"):
        boot_specialisation(machine)
        assert first_boot_lines(), "systemd did not see a first boot"
        assert commit_ran(), f"{COMMIT} did not run"
        result = machine.succeed(f"systemctl show -p Result --value {COMMIT}").strip()
        assert result == "success", f"{COMMIT}: {result}"
        assert_finished_before(machine, "sysroot-etc-machine\\x2did.mount", "initrd-switch-root.service")
        first = identity()

    for n in (2, 3):
        with subtest(f"boot {n}: the same id, not a first boot, nothing to commit"):
            reboot(machine)
            assert identity() == first, f"boot {n}: the machine id changed"
            assert not first_boot_lines(), f"boot {n}: systemd saw a first boot"
            assert not commit_ran(), f"boot {n}: {COMMIT} ran"
  '';
}
