# Seeds 000 and 003: ZFS, rpool/local (erased at every boot) and rpool/safe
# (kept). rpool/local/root is rolled back to @blank, taken right after the
# dataset is created. Set `oldRoots` to keep each previous root for a while.
#
# A NixOS module; import it together with disko's module
# (inputs.disko.nixosModules.disko) and tabula's (inputs.tabula.nixosModules.default).
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
        # snapshot tools must leave rpool/local alone: `zfs rollback -r`
        # destroys every snapshot taken after @blank
        "com.sun:auto-snapshot" = "false";
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
          options."com.sun:auto-snapshot" = "true";
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
      oldRoots = null; # or "rpool/local/old_roots" to keep previous roots
    }
  ];

  # seed 000's systemDataLinks; /home is a dataset of its own
  tabula.persist."/persist" = {
    directories = [
      # read by NixOS activation, which runs before stage-2 mounts
      {
        path = "/var/lib/nixos";
        inInitrd = true;
      }
      "/var/lib/bluetooth"
      "/var/lib/systemd/coredump"
      "/var/lib/cups"
      "/var/cache/nix"
      "/etc/nixos"
    ];
    files = [
      {
        path = "/etc/machine-id";
        inInitrd = true;
      }
    ];
  };
  services.openssh.hostKeys = [
    {
      path = "/persist/etc/ssh/ssh_host_ed25519_key";
      type = "ed25519";
    }
  ];
}
