# several-roots-zfs: one config, two ZFS targets, rpool/local/root and
# rpool/local/home (the storage seed's rpool/local/* layout), each rolled back
# to its own @blank in one boot; a missing snapshot on either target leaves
# that dataset as it was and the other is still rolled back, tabula-rollback
# exits 1 after `1 of 2 targets failed`, the machine boots. Mirrors the QEMU
# harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
  target = dataset: snapshot: {
    type = "zfs";
    inherit dataset snapshot;
  };
  targets =
    rootSnapshot: homeSnapshot:
    [
      (target "rpool/local/root" rootSnapshot)
      (target "rpool/local/home" homeSnapshot)
    ];
in
common.scenario {
  name = "several-roots-zfs";

  machine = common.node {
    flavour = "systemd";
    layout = "zfs";
    tabula =
      { lib, ... }:
      {
        tabula.rollback.targets = lib.mkForce (targets "blank" "blank");
        virtualisation.fileSystems."/home" = {
          device = "rpool/local/home";
          fsType = "zfs";
          # the rollback runs in the initrd (the module asserts it)
          neededForBoot = true;
        };
      };
    variants.rootbroken =
      { lib, ... }:
      {
        tabula.rollback.targets = lib.mkOverride 10 (targets "missing" "blank");
      };
    variants.homebroken =
      { lib, ... }:
      {
        tabula.rollback.targets = lib.mkOverride 10 (targets "blank" "missing");
      };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine)
    machine.succeed(
        "zpool import -f rpool",
        "zfs create -o mountpoint=legacy rpool/local/home",
        "zfs snapshot rpool/local/home@blank",
        "zpool export rpool",
    )


    def write_both(value):
        machine.succeed(f"echo {value} > /etc/tabula-marker", f"echo {value} > /home/marker", "sync")


    def markers():
        assert mounted(machine, "/home", "SOURCE") == "rpool/local/home"
        home = machine.succeed("cat /home/marker 2>/dev/null || true").strip()
        root = machine.succeed("cat /etc/tabula-marker 2>/dev/null || true").strip()
        return root, home


    def snapshots():
        return sorted(machine.succeed("zfs list -H -o name -t snapshot").split())


    def boot_entry(name):
        machine.succeed(f"bootctl set-oneshot nixos-generation-1-specialisation-{name}.conf", "sync")
        reboot(machine)


    boot_specialisation(machine)
    blanks = ["rpool/local/home@blank", "rpool/local/root@blank"]

    with subtest("both rolled back to their own @blank in one boot"):
        write_both("one")
        reboot(machine)
        log = rollback_log(machine)
        assert "rollback[1]" in log and "targets failed" not in log, log
        assert markers() == ("", ""), markers()
        assert snapshots() == blanks, snapshots()

    with subtest("the root's snapshot missing: the root left as it was, home rolled back"):
        write_both("two")
        boot_entry("tabula-rootbroken")
        log = rollback_log(machine)
        assert "1 of 2 targets failed" in log and "rpool/local/root@missing" in log, log
        assert markers() == ("two", ""), markers()
        assert snapshots() == blanks, snapshots()

    with subtest("home's snapshot missing: home left as it was, the root rolled back"):
        write_both("three")
        boot_entry("tabula-homebroken")
        log = rollback_log(machine)
        assert "1 of 2 targets failed" in log and "rpool/local/home@missing" in log, log
        assert markers() == ("", "three"), markers()
        assert snapshots() == blanks, snapshots()
  '';
}
