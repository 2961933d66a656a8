# Just enough of disko (nix-community/disko) to evaluate examples/: the
# `disko.devices` option, and the fileSystems entries disko derives from the
# shapes the examples use (GPT partitions holding a filesystem or Btrfs
# subvolumes, ZFS datasets with a mountpoint), named as disko names them
# (/dev/disk/by-partlabel/disk-<disk>-<partition>). Plus the plain NixOS
# options the examples set that tabula does not read.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  anything = mkOption {
    type = types.anything;
    default = null;
  };
  devices = config.disko.devices;

  partitionMounts = lib.concatLists (
    lib.mapAttrsToList (
      disk: d:
      lib.concatLists (
        lib.mapAttrsToList (
          part: p:
          let
            device = "/dev/disk/by-partlabel/disk-${disk}-${part}";
            c = p.content or { };
          in
          if c.type or null == "filesystem" && c ? mountpoint then
            [
              {
                name = c.mountpoint;
                value = {
                  inherit device;
                  fsType = c.format;
                  options = c.mountOptions or [ "defaults" ];
                };
              }
            ]
          else if c.type or null == "btrfs" then
            lib.concatLists (
              lib.mapAttrsToList (
                sub: s:
                lib.optional (s ? mountpoint) {
                  name = s.mountpoint;
                  value = {
                    inherit device;
                    fsType = "btrfs";
                    options = (s.mountOptions or [ "defaults" ]) ++ [ "subvol=${sub}" ];
                  };
                }
              ) (c.subvolumes or { })
            )
          else
            [ ]
        ) (d.content.partitions or { })
      )
    ) (devices.disk or { })
  );

  datasetMounts = lib.concatLists (
    lib.mapAttrsToList (
      pool: z:
      lib.concatLists (
        lib.mapAttrsToList (
          ds: v:
          lib.optional (v ? mountpoint) {
            name = v.mountpoint;
            value = {
              device = "${pool}/${ds}";
              fsType = "zfs";
              options = [ "defaults" ];
            };
          }
        ) (z.datasets or { })
      )
    ) (devices.zpool or { })
  );
in
{
  options = {
    disko.devices = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    networking.hostId = anything;
    services.openssh.hostKeys = anything;
    nix.settings = anything;
    services.sanoid = anything;
  };
  config.fileSystems = lib.listToAttrs (partitionMounts ++ datasetMounts);
}
