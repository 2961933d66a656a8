# zfs-datasets: persisted directories whose source is a ZFS dataset of its
# own, with the per-service property table of the per-service ZFS design
# (Plex 1M, a SQLite app 16K, PostgreSQL data 8K, its WAL 128K uncompressed).
#
#   1. first boot of the `tabula` entry: every dataset is created by the
#      prepare step with its properties and mountpoint=legacy, mounted at its
#      source and bind-mounted at its path; a service writes into each;
#   2. reboot: the root is rolled back, the service's data is still there;
#   3. boot the `tabula-changed` entry, where Plex's recordsize is 128K and
#      the SQLite app is no longer listed: the new recordsize is applied,
#      the removed entry's dataset is left as it was (not destroyed, not
#      renamed, its data and properties intact, just not mounted).
{ self }:
let
  common = import ./common.nix { inherit self; };

  # common.nix's entries of every scenario (repeated where a boot entry
  # replaces the list)
  baseEntries = [
    {
      path = "/var/lib/nixos";
      inInitrd = true;
    }
    {
      path = "/var/lib/kept";
      user = "alice";
      group = "users";
      mode = "0750";
    }
  ];

  plex = recordsize: {
    path = "/var/lib/plex";
    zfs.properties = {
      inherit recordsize;
      compression = "lz4";
    };
  };
  # a dataset named in full, outside the storage's dataset
  sonarr = {
    path = "/var/lib/sonarr";
    user = "alice";
    group = "users";
    mode = "0750";
    zfs = {
      dataset = "rpool/safe/sonarr";
      properties = {
        recordsize = "16K";
        compression = "lz4";
      };
    };
  };
  postgresql = {
    path = "/var/lib/postgresql";
    mode = "0700";
    zfs.properties = {
      recordsize = "8K";
      compression = "lz4";
    };
  };
  wal = {
    path = "/var/lib/postgresql-wal";
    mode = "0700";
    zfs.properties = {
      recordsize = "128K";
      compression = "off";
    };
  };
  services = [
    "/var/lib/plex"
    "/var/lib/sonarr"
    "/var/lib/postgresql"
    "/var/lib/postgresql-wal"
  ];

  # Stands for the services: at every boot, once their directories are
  # mounted, appends the boot id to a file in each that exists (a path no
  # longer persisted is not there on the fresh root).
  writer =
    { lib, ... }:
    {
      systemd.services.dataset-writer = {
        wantedBy = [ "multi-user.target" ];
        after = [ "local-fs.target" ];
        unitConfig.RequiresMountsFor = lib.concatStringsSep " " services;
        serviceConfig.Type = "oneshot";
        serviceConfig.RemainAfterExit = true;
        script = lib.concatMapStrings (d: ''
          if [ -d ${d} ]; then cat /proc/sys/kernel/random/boot_id >> ${d}/boots; fi
        '') services;
      };
    };
in
common.scenario {
  name = "zfs-datasets";

  machine = common.node {
    flavour = "systemd";
    layout = "zfs";
    tabula = {
      imports = [ writer ];
      tabula.persist."/persist".directories = [
        (plex "1M")
        sonarr
        postgresql
        wal
      ];
    };
    variants.changed =
      { lib, ... }:
      {
        tabula.persist."/persist".directories = lib.mkForce (
          baseEntries
          ++ [
            (plex "128K")
            postgresql
            wal
          ]
        );
      };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine)
    boot_specialisation(machine)

    TABLE = {
        "/var/lib/plex": ("1M", "lz4"),
        "/var/lib/sonarr": ("16K", "lz4"),
        "/var/lib/postgresql": ("8K", "lz4"),
        "/var/lib/postgresql-wal": ("128K", "off"),
    }


    def dataset_of(path):
        """The dataset mounted at the entry's source, /persist + path."""
        assert mounted(machine, "/persist" + path, "FSTYPE") == "zfs", f"/persist{path} is not a ZFS mount"
        return mounted(machine, "/persist" + path, "SOURCE")


    def prop(dataset, name):
        return machine.succeed(f"zfs get -H -o value {name} {dataset}").strip()


    with subtest("first boot: every dataset created with its properties, mounted, bind-mounted"):
        machine.wait_for_unit("dataset-writer.service")
        datasets: dict[str, str] = {}
        for path, (recordsize, compression) in TABLE.items():
            dataset = dataset_of(path)
            datasets[path] = dataset
            assert prop(dataset, "recordsize") == recordsize, f"{dataset}: recordsize {prop(dataset, 'recordsize')}"
            assert prop(dataset, "compression") == compression, f"{dataset}: compression {prop(dataset, 'compression')}"
            assert prop(dataset, "mountpoint") == "legacy", f"{dataset}: mountpoint {prop(dataset, 'mountpoint')}"
            source = mounted(machine, path, "SOURCE")
            assert dataset in source or path in source, f"{path} is not a bind mount of {dataset}: {source!r}"
        assert datasets["/var/lib/sonarr"] == "rpool/safe/sonarr", datasets
        for path in ["/var/lib/plex", "/var/lib/postgresql", "/var/lib/postgresql-wal"]:
            assert datasets[path].startswith("rpool/safe/persist/"), f"{path}: {datasets[path]} is not a child of the storage's dataset"
        machine.succeed(
            "test \"$(stat -c %U:%G:%a /var/lib/sonarr)\" = alice:users:750",
            "test \"$(stat -c %a /var/lib/postgresql)\" = 700",
        )

    with subtest("the datasets are created after the pool import, mounted before the bind mounts and the service"):
        assert_finished_before(machine, "zfs-import-rpool.service", "tabula-sources.service")
        assert_finished_before(machine, "tabula-sources.service", "tabula-prepare.service")
        assert_finished_before(machine, "tabula-prepare.service", "dataset-writer.service")
        created = "\n".join(journal(machine, "tabula-sources.service"))
        for dataset in datasets.values():
            assert dataset in created, f"tabula-sources.service logged nothing about {dataset}: {created}"

    with subtest("data written by the service survives the root rollback"):
        write_state(machine)
        machine.succeed("echo plex-data > /var/lib/plex/library.db", "sync")
        reboot(machine)
        check_state(machine)
        machine.wait_for_unit("dataset-writer.service")
        machine.succeed("test \"$(cat /var/lib/plex/library.db)\" = plex-data")
        for path in TABLE:
            boots = machine.succeed(f"cat {path}/boots").split()
            assert len(boots) == 2 and boots[0] != boots[1], f"{path}/boots: {boots}"
            assert dataset_of(path) == datasets[path], f"{path}: another dataset after the reboot"

    with subtest("a changed property is applied on the next boot; a removed entry's dataset is left alone"):
        machine.succeed("zfs set recordsize=64K rpool/safe/sonarr")
        boot_specialisation(machine, "tabula-changed")
        assert prop(datasets["/var/lib/plex"], "recordsize") == "128K", prop(datasets["/var/lib/plex"], "recordsize")
        machine.succeed("test \"$(cat /var/lib/plex/library.db)\" = plex-data")
        names = machine.succeed("zfs list -H -o name -t filesystem").split()
        assert "rpool/safe/sonarr" in names, f"the removed entry's dataset is gone: {names}"
        # not corrected either: the configuration no longer names it
        assert prop("rpool/safe/sonarr", "recordsize") == "64K"
        assert prop("rpool/safe/sonarr", "mounted") == "no"
        machine.succeed(
            "mkdir -p /mnt && mount -t zfs rpool/safe/sonarr /mnt",
            "test $(wc -l < /mnt/boots) = 2",
            "umount /mnt",
        )
  '';
}
