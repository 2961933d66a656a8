# Seed 001: one disk, GPT, ESP + swap + a flat Btrfs layout with @subvolumes.
# @root is erased at every boot: tabula moves it to @old_roots/<creation time>
# and creates an empty one; old roots are kept 30 days (always the newest).
#
# A NixOS module; import it together with disko's module
# (inputs.disko.nixosModules.disko) and tabula's (inputs.tabula.nixosModules.default).
{
  disko.devices.disk.main = {
    type = "disk";
    device = "/dev/nvme0n1";
    content = {
      type = "gpt";
      partitions = {
        ESP = {
          size = "1G";
          type = "EF00";
          content = {
            type = "filesystem";
            format = "vfat";
            mountpoint = "/boot";
            mountOptions = [ "umask=0077" ];
          };
        };
        swap = {
          size = "32G";
          content = {
            type = "swap";
            resumeDevice = true; # hibernation: tabula runs after the resume attempt
          };
        };
        root = {
          size = "100%";
          content = {
            type = "btrfs";
            extraArgs = [
              "-f"
              "-L"
              "nixos"
            ];
            subvolumes =
              let
                opts = level: [
                  "compress=zstd:${toString level}"
                  "noatime"
                  "ssd"
                  "space_cache=v2"
                  "discard=async"
                ];
              in
              {
                "@root" = {
                  mountpoint = "/";
                  mountOptions = opts 3;
                };
                "@nix" = {
                  mountpoint = "/nix";
                  mountOptions = opts 1;
                };
                "@persist" = {
                  mountpoint = "/persist";
                  mountOptions = opts 3;
                };
                "@log" = {
                  mountpoint = "/var/log";
                  mountOptions = opts 3;
                };
                # not mounted: tabula mounts the top level itself
                "@old_roots" = { };
              };
          };
        };
      };
    };
  };

  # disko mounts the subvolumes from /dev/disk/by-partlabel/disk-main-root;
  # tabula's `device` must be that same path (an assertion checks it).
  fileSystems."/persist".neededForBoot = true;
  fileSystems."/var/log".neededForBoot = true;

  boot.initrd.systemd.enable = true;

  tabula.enable = true;
  tabula.rollback.targets = [
    {
      type = "btrfs";
      device = "/dev/disk/by-partlabel/disk-main-root";
      subvolume = "@root";
      oldRoots = "@old_roots";
      mountOptions = [ "compress=zstd:3" ];
      keep = {
        days = 30;
        min = 1;
      };
    }
  ];

  tabula.persist."/persist" = {
    hideMounts = true;
    directories = [
      # read by NixOS activation, which runs before stage-2 mounts
      {
        path = "/var/lib/nixos";
        inInitrd = true;
      }
      "/var/lib/systemd/coredump"
      "/var/lib/containers"
      "/var/lib/caddy"
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
