# several-roots-btrfs: one config, two Btrfs targets on two disks (the root
# @root on /dev/vdb, a second filesystem with @home on /dev/vdc), rolled back
# in one boot; each target's result is independent of the other's failure.
# A missing `blank` on the root, or the second disk missing (its label
# changed, so /dev/disk/by-label/home never appears), fails that target only:
# it is left as it was, the other is rotated, tabula-rollback exits 1 after
# `1 of 2 targets failed`, and the machine boots. The unit only wants each
# device (never Requires=), so the missing disk's device job timing out does
# not fail the unit by dependency. Mirrors the QEMU harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
  root = {
    type = "btrfs";
    device = "/dev/disk/by-label/tabula";
    subvolume = "@root";
    oldRoots = "@old_roots";
  };
  home = {
    type = "btrfs";
    device = "/dev/disk/by-label/home";
    subvolume = "@home";
    oldRoots = "@old_homes";
    waitSeconds = 5;
  };
in
common.scenario {
  name = "several-roots-btrfs";

  machine = common.node {
    flavour = "systemd";
    layout = "btrfs";
    disks = [ 512 ];
    tabula =
      { lib, ... }:
      {
        tabula.rollback.targets = lib.mkForce [
          root
          home
        ];
        # nofail: the boot with the disk missing must go on
        virtualisation.fileSystems."/home" = {
          device = "/dev/disk/by-label/home";
          fsType = "btrfs";
          # the rollback runs in the initrd (the module asserts it)
          neededForBoot = true;
          options = [
            "subvol=@home"
            "nofail"
            "x-systemd.device-timeout=5s"
          ];
        };
      };
    variants.rootbroken =
      { lib, ... }:
      {
        tabula.rollback.targets = lib.mkOverride 10 [
          (root // { blank = "@missing"; })
          home
        ];
      };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)
    machine.succeed(
        "mkfs.btrfs -q -f -L home /dev/vdc",
        "mkdir -p /h && mount /dev/vdc /h",
        "btrfs subvolume create /h/@home",
        "btrfs subvolume create /h/@old_homes",
        "echo home-1 > /h/@home/marker",
        "umount /h",
    )


    def old_roots():
        machine.succeed("mkdir -p /mnt && mount -o subvolid=5 /dev/disk/by-label/tabula /mnt")
        names = machine.succeed("ls /mnt/@old_roots").split()
        machine.succeed("umount /mnt")
        return names


    def home_state(device="/dev/disk/by-label/home"):
        """@old_homes's names, and the marker in @home ("" when none)."""
        machine.succeed(f"mkdir -p /h && mount -o subvolid=5 {device} /h")
        names = machine.succeed("ls /h/@old_homes").split()
        marker = machine.succeed("cat /h/@home/marker 2>/dev/null || true").strip()
        machine.succeed("umount /h")
        return names, marker


    def write_home(value, device="/dev/disk/by-label/home"):
        machine.succeed(f"mkdir -p /h && mount -o subvolid=5 {device} /h", f"echo {value} > /h/@home/marker", "umount /h", "sync")


    def unit_exited_1():
        lines = journal(machine)
        failed = [l for l in lines if "tabula-rollback.service: Main process exited, code=exited, status=1/FAILURE" in l]
        dependency = [l for l in lines if "Dependency failed" in l and "tabula" in l]
        return bool(failed), dependency


    boot_specialisation(machine)

    with subtest("both targets rolled back in one boot"):
        log = rollback_log(machine)
        assert "rollback[1]" in log and "targets failed" not in log, log
        assert len(old_roots()) == 1, old_roots()
        names, marker = home_state()
        assert len(names) == 1 and marker == "", (names, marker)
        machine.succeed("mkdir -p /h && mount -o subvolid=5 /dev/disk/by-label/home /h")
        machine.succeed(f"grep -qx home-1 /h/@old_homes/{names[0]}/marker")
        machine.succeed("umount /h")

    with subtest("the root's blank missing: the root left as it was, home still rotated"):
        machine.succeed("echo still-here > /etc/tabula-written", "sync")
        write_home("home-2")
        before = old_roots()
        machine.succeed(
            "bootctl set-oneshot nixos-generation-1-specialisation-tabula-rootbroken.conf", "sync"
        )
        reboot(machine)
        log = rollback_log(machine)
        assert "1 of 2 targets failed" in log and "@missing" in log, log
        failed, dependency = unit_exited_1()
        assert failed and not dependency, (failed, dependency)
        machine.succeed("grep -qx still-here /etc/tabula-written")
        assert old_roots() == before, (old_roots(), before)
        names, marker = home_state()
        assert len(names) == 2 and marker == "", (names, marker)

    with subtest("the second disk missing: the root still rotated, the boot goes on"):
        write_home("home-3")
        machine.succeed("umount /home", "btrfs filesystem label /dev/vdc gone", "sync")
        before = old_roots()
        reboot(machine)
        log = rollback_log(machine)
        assert "1 of 2 targets failed" in log and "/dev/disk/by-label/home" in log, log
        failed, dependency = unit_exited_1()
        assert failed and not dependency, (failed, dependency)
        machine.fail("test -e /etc/tabula-written")
        assert len(old_roots()) == len(before) + 1, (old_roots(), before)
        names, marker = home_state("/dev/vdc")
        assert len(names) == 2 and marker == "home-3", (names, marker)
        machine.succeed("btrfs filesystem label /dev/vdc home", "sync")
  '';
}
