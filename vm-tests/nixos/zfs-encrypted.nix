# zfs-encrypted: the storage seed's pool layout with native encryption on the
# pool (aes-256-gcm, keyformat=passphrase, keylocation=file://, the key file
# in the initrd through boot.initrd.secrets), every dataset inheriting it.
# NixOS's import unit loads the key after `zpool import -N`; then
# keep-previous and rollback to @blank both work on the encrypted root, the
# old roots stay encrypted under the pool's key, and persisted data on the
# encrypted rpool/safe/persist is intact. Mirrors the QEMU harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "zfs-encrypted";

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
    tabula.boot.initrd.secrets."/etc/tabula-zfs.key" =
      builtins.toFile "tabula-zfs-key" "tabula-harness-zfs-passphrase";
    variants.rollback =
      { lib, ... }:
      {
        tabula.rollback.targets = lib.mkForce [
          {
            type = "zfs";
            dataset = "rpool/local/root";
            snapshot = "blank";
            oldRoots = null;
          }
        ];
      };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    machine.succeed(
        "printf %s tabula-harness-zfs-passphrase > /etc/tabula-zfs.key",
        "zpool create -f -O mountpoint=none -O compression=lz4 -O encryption=aes-256-gcm"
        " -O keyformat=passphrase -O keylocation=file:///etc/tabula-zfs.key rpool /dev/vdb",
        "zfs create -o mountpoint=none rpool/local",
        "zfs create -o mountpoint=legacy rpool/local/root",
        "zfs create -o mountpoint=none rpool/local/old_roots",
        "zfs create -o mountpoint=none rpool/safe",
        "zfs create -o mountpoint=legacy rpool/safe/persist",
        "zfs snapshot rpool/local/root@blank",
        "zpool export rpool",
    )
    boot_specialisation(machine)


    def encryption(dataset):
        return machine.succeed(f"zfs get -H -o value encryption,encryptionroot,keystatus {dataset}").split()


    def old_roots():
        return machine.succeed("zfs list -H -o name -d 1 -t filesystem rpool/local/old_roots").split()[1:]


    with subtest("the key was loaded in stage 1; root and persisted data are encrypted"):
        assert mounted(machine, "/", "SOURCE") == "rpool/local/root"
        for dataset in ["rpool/local/root", "rpool/safe/persist"]:
            assert encryption(dataset) == ["aes-256-gcm", "rpool", "available"], encryption(dataset)

    with subtest("keep-previous on the encrypted root"):
        write_state(machine)
        reboot(machine)
        check_state(machine)
        kept = old_roots()
        assert len(kept) == 2 and all(is_old_root_name(k.rsplit("/", 1)[1]) for k in kept), kept
        for k in kept:
            assert encryption(k)[:2] == ["aes-256-gcm", "rpool"], (k, encryption(k))
        machine.succeed(
            "mkdir -p /mnt",
            "for d in $(zfs list -H -o name -d 1 -t filesystem rpool/local/old_roots | tail -n +2); do"
            "  mount -t zfs -o ro $d /mnt && grep -qx erased /mnt/etc/tabula-erased && found=1; umount /mnt;"
            " done; test -n \"$found\"",
        )

    with subtest("rollback to @blank on the encrypted root"):
        before = old_roots()
        write_state(machine)
        machine.succeed("bootctl set-oneshot nixos-generation-1-specialisation-tabula-rollback.conf", "sync")
        reboot(machine)
        check_state(machine)
        assert encryption("rpool/local/root") == ["aes-256-gcm", "rpool", "available"]
        assert old_roots() == before, (old_roots(), before)
        snapshots = machine.succeed("zfs list -H -o name -t snapshot rpool/local/root").split()
        assert "rpool/local/root@blank" in snapshots, snapshots
  '';
}
