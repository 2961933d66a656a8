# persist-files-and-homes: files are created, then bind-mounted (never
# symlinks) with their owner and mode; a user's home and its parents belong to
# the user; /etc/machine-id comes back from the systemd initrd (inInitrd), so
# the machine keeps its identity across reboots. Mirrors the QEMU harness
# scenario.
#
# SSH host keys are deliberately not persisted as files here: NixOS's sshd
# pre-start removes an empty key file before generating one, which a bind
# mount refuses (EBUSY); docs/nixos.md recommends pointing
# services.openssh.hostKeys into the storage instead.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "persist-files-and-homes";

  machine = common.node {
    flavour = "systemd";
    layout = "btrfs";
    tabula = {
      tabula.persist."/persist" = {
        files = [
          {
            path = "/etc/machine-id";
            inInitrd = true;
          }
          {
            path = "/etc/kept.conf";
            user = "alice";
            mode = "0640";
          }
        ];
        users.alice = {
          directories = [
            "Documents"
            {
              path = ".ssh";
              mode = "0700";
            }
            ".local/share/keyrings"
          ];
          files = [ ".bash_history" ];
        };
      };
    };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)
    boot_specialisation(machine)

    def machine_id():
        return machine.succeed("cat /etc/machine-id").strip()

    first = machine_id()
    assert len(first) == 32, f"no machine id: {first!r}"

    with subtest("machine-id was mounted in the initrd, before stage 2"):
        assert_finished_before(machine, "sysroot-etc-machine\\x2did.mount", "initrd-switch-root.service")

    with subtest("files are bind mounts of the persisted file, not symlinks"):
        for f in ["/etc/machine-id", "/etc/kept.conf", "/home/alice/.bash_history"]:
            machine.succeed(f"test ! -L {f}", f"findmnt -no TARGET {f}")
        machine.succeed(
            "test \"$(stat -c %U:%G:%a /etc/kept.conf)\" = alice:root:640",
            "test \"$(stat -c %U:%G:%a /persist/etc/kept.conf)\" = alice:root:640",
        )

    with subtest("the home and everything created in it belong to alice"):
        machine.succeed(
            "test \"$(stat -c %U:%G:%a /home/alice)\" = alice:users:700",
            "test \"$(stat -c %U:%G:%a /home/alice/.ssh)\" = alice:users:700",
            "test \"$(stat -c %U:%G /home/alice/.local /home/alice/.local/share /home/alice/.local/share/keyrings | sort -u)\" = alice:users",
            "test \"$(stat -c %U:%G /persist/home/alice/.local/share)\" = alice:users",
        )

    with subtest("write into the home, reboot"):
        machine.succeed(
            "su alice -c 'echo notes > /home/alice/Documents/notes && echo history >> /home/alice/.bash_history'",
            "echo erased > /home/alice/not-persisted",
            "echo setting=1 > /etc/kept.conf",
        )
        reboot(machine)

    with subtest("the identity, the file and the home survive, the rest is gone"):
        assert machine_id() == first, f"machine id changed: {first} -> {machine_id()}"
        machine.succeed("grep -qx setting=1 /etc/kept.conf")
        machine.succeed(
            "grep -qx notes /home/alice/Documents/notes",
            "grep -qx history /home/alice/.bash_history",
            "test \"$(stat -c %U /home/alice/Documents/notes)\" = alice",
        )
        machine.fail("test -e /home/alice/not-persisted")
        # systemd did not treat the boot as a first boot with a transient id
        first_boot = [l for l in journal(machine) if "first boot" in l.lower()]
        assert not first_boot, f"systemd saw a first boot: {first_boot}"
  '';
}
