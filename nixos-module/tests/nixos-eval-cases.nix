# The `nixos-eval-*` flake checks: the module in a real NixOS evaluation, for
# each root layout and initrd flavour (the same layouts as tests/eval.nix).
# Every case sets boot.initrd.systemd.enable itself (tests/eval.nix checks it).
let
  btrfs = {
    fileSystems."/" = {
      device = "/dev/disk/by-label/nixos";
      fsType = "btrfs";
      options = [ "subvol=@root" ];
    };
    fileSystems."/persist" = {
      device = "/dev/disk/by-label/nixos";
      fsType = "btrfs";
      options = [ "subvol=@persist" ];
      neededForBoot = true;
    };
    tabula.enable = true;
    tabula.rollback.targets = [
      {
        type = "btrfs";
        device = "/dev/disk/by-label/nixos";
      }
    ];
    # a subvolume of its own
    tabula.persist."/persist".directories = [
      {
        path = "/var/lib/containers";
        btrfs.nodatacow = true;
      }
    ];
  };
  zfs = {
    boot.supportedFilesystems = [ "zfs" ];
    fileSystems."/" = {
      device = "rpool/local/root";
      fsType = "zfs";
    };
    fileSystems."/persist" = {
      device = "rpool/safe/persist";
      fsType = "zfs";
      neededForBoot = true;
    };
    tabula.enable = true;
    tabula.rollback.targets = [
      {
        type = "zfs";
        dataset = "rpool/local/root";
        oldRoots = "rpool/local/old_roots";
      }
    ];
    # a dataset of its own: the drop-in for tabula-sources.service, with
    # nixpkgs' own types for `path` and `overrideStrategy`
    tabula.persist."/persist".directories = [
      {
        path = "/var/lib/plex";
        zfs.properties = {
          recordsize = "1M";
          compression = "lz4";
        };
      }
    ];
  };
  systemd = {
    boot.initrd.systemd.enable = true;
    tabula.persist."/persist" = {
      directories = [
        {
          path = "/var/lib/nixos";
          inInitrd = true;
        }
      ];
      files = [
        {
          path = "/etc/machine-id";
          inInitrd = true;
        }
      ];
      users.alice.directories = [ "Documents" ];
    };
  };
  # nixpkgs 26.05 deprecated the scripted initrd (removal planned for 26.11):
  # on a nixpkgs without it, these cases fail with tabula's assertion.
  scripted = {
    boot.initrd.systemd.enable = false;
    tabula.persist."/persist".directories = [ "/srv" ];
  };
in
{
  btrfs-scripted.imports = [
    btrfs
    scripted
  ];
  btrfs-systemd.imports = [
    btrfs
    systemd
  ];
  zfs-scripted.imports = [
    zfs
    scripted
  ];
  zfs-systemd.imports = [
    zfs
    systemd
  ];
}
