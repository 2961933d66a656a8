# zfs-keep-previous: with oldRoots set, the previous root is not destroyed but
# renamed to rpool/local/old_roots/<creation time>, and a clone of @blank takes
# its place, mounting as before. Mirrors the QEMU harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "zfs-keep-previous";

  machine = common.node {
    flavour = "systemd";
    layout = "zfs";
    target = {
      oldRoots = "rpool/local/old_roots";
      keep = {
        days = 30;
        min = 1;
        max = 5;
      };
    };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine, old_roots=True)
    boot_specialisation(machine)

    with subtest("write to the root, reboot"):
        write_state(machine)
        reboot(machine)

    with subtest("the root is fresh, persisted data intact"):
        check_state(machine)
        assert mounted(machine, "/", "SOURCE") == "rpool/local/root"
        assert machine.succeed("zfs get -H -o value mountpoint rpool/local/root").strip() == "legacy"

    with subtest("the previous root is kept under rpool/local/old_roots"):
        kept = machine.succeed("zfs list -H -o name -d 1 -t filesystem rpool/local/old_roots").split()[1:]
        names = [k.rsplit("/", 1)[1] for k in kept]
        assert len(names) == 2, f"expected the two previous roots, found {kept}"
        assert all(is_old_root_name(n) for n in names), f"old roots not named by time: {names}"
        machine.succeed(
            "mkdir -p /mnt",
            "for d in $(zfs list -H -o name -d 1 -t filesystem rpool/local/old_roots | tail -n +2); do"
            "  mount -t zfs -o ro $d /mnt && grep -qx erased /mnt/etc/tabula-erased && found=1; umount /mnt;"
            " done; test -n \"$found\"",
        )
  '';
}
