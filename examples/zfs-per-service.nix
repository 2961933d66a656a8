# The per-service ZFS design: seeds 000/003's rpool/local (erased at every
# boot) and rpool/safe (kept), plus a dataset of its own for each service,
# tuned for its workload (Plex 1M records, SQLite apps 16K, PostgreSQL data
# 8K, its WAL 128K uncompressed). tabula creates each dataset at boot when it
# is missing, sets its properties again when they drift, mounts it at
# /persist/<path> and bind-mounts it at <path> before the service starts
# (docs/nixos.md, "A dataset or subvolume per directory").
#
# A NixOS module; import it together with disko's module
# (inputs.disko.nixosModules.disko) and tabula's (inputs.tabula.nixosModules.default).
let
  # one dataset per service, under the container rpool/safe/services; the
  # owner is the service's user (its NixOS module creates it)
  service = user: dataset: path: properties: {
    inherit path user;
    group = user;
    mode = "0750";
    zfs = {
      dataset = "rpool/safe/services/${dataset}";
      inherit properties;
    };
  };
  media = {
    recordsize = "1M";
    compression = "lz4";
  };
  sqlite = {
    recordsize = "16K";
    compression = "lz4";
  };
in
{
  disko.devices = {
    disk.main = {
      type = "disk";
      device = "/dev/nvme0n1";
      content = {
        type = "gpt";
        partitions = {
          ESP = {
            size = "2G";
            type = "EF00";
            content = {
              type = "filesystem";
              format = "vfat";
              mountpoint = "/boot";
              mountOptions = [ "umask=0077" ];
            };
          };
          zfs = {
            size = "100%";
            content = {
              type = "zfs";
              pool = "rpool";
            };
          };
        };
      };
    };

    zpool.rpool = {
      type = "zpool";
      rootFsOptions = {
        mountpoint = "none";
        compression = "lz4";
        acltype = "posixacl";
        xattr = "sa";
      };
      datasets = {
        "local" = {
          type = "zfs_fs";
          options.mountpoint = "none";
        };
        "local/root" = {
          type = "zfs_fs";
          mountpoint = "/";
          options.mountpoint = "legacy";
          postCreateHook = "zfs list -H -t snapshot -o name rpool/local/root@blank || zfs snapshot rpool/local/root@blank";
        };
        "local/nix" = {
          type = "zfs_fs";
          mountpoint = "/nix";
          options.mountpoint = "legacy";
        };
        "safe" = {
          type = "zfs_fs";
          options.mountpoint = "none";
        };
        "safe/persist" = {
          type = "zfs_fs";
          mountpoint = "/persist";
          options.mountpoint = "legacy";
        };
        "safe/home" = {
          type = "zfs_fs";
          mountpoint = "/home";
          options.mountpoint = "legacy";
        };
        # the services' datasets are tabula's; this only holds them
        "safe/services" = {
          type = "zfs_fs";
          options.mountpoint = "none";
        };
      };
    };
  };

  fileSystems."/persist".neededForBoot = true;
  networking.hostId = "8425e349";
  boot.initrd.systemd.enable = true; # for inInitrd below

  tabula.enable = true;
  tabula.rollback.targets = [
    {
      type = "zfs";
      dataset = "rpool/local/root";
      snapshot = "blank";
      oldRoots = "rpool/local/old_roots";
    }
  ];

  tabula.persist."/persist" = {
    directories = [
      # read by NixOS activation, which runs before stage-2 mounts
      {
        path = "/var/lib/nixos";
        inInitrd = true;
      }
      "/var/lib/systemd/coredump"
      (service "plex" "plex" "/var/lib/plex" media)
      (service "sonarr" "sonarr" "/var/lib/sonarr" sqlite)
      (service "radarr" "radarr" "/var/lib/radarr" sqlite)
      (service "hass" "home-assistant" "/var/lib/hass" sqlite)
      (service "postgres" "postgresql" "/var/lib/postgresql" {
        recordsize = "8K";
        compression = "lz4";
      } // { mode = "0700"; })
      # the WAL: give initdb --waldir=/var/lib/postgresql-wal/<major version>
      # (services.postgresql.initdbArgs)
      (service "postgres" "postgresql-wal" "/var/lib/postgresql-wal" {
        recordsize = "128K";
        compression = "off";
      } // { mode = "0700"; })
    ];
    files = [
      {
        path = "/etc/machine-id";
        inInitrd = true;
      }
    ];
  };

  # Snapshots and replication: rpool/safe and every child (/persist, /home,
  # the services' datasets); rpool/local (the rolled-back root, its old roots
  # and the Nix store) is not listed, so no snapshot of the root is taken
  # that the next boot's rollback would destroy.
  services.sanoid = {
    enable = true;
    datasets."rpool/safe" = {
      recursive = true;
      autosnap = true;
      autoprune = true;
      hourly = 24;
      daily = 30;
      monthly = 6;
    };
  };
  tabula.rollback.warnSnapshotTools = false; # rpool/local is out of sanoid's plan

  services.openssh.hostKeys = [
    {
      path = "/persist/etc/ssh/ssh_host_ed25519_key";
      type = "ed25519";
    }
  ];
}
