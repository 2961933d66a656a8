# Stage 2: the generator, run by systemd at every boot and daemon-reload,
# reads /etc/tabula/config.json and emits the mount units; the `tabula`
# command (what the next boot erases, old roots, restore, adopt) is installed.
#
# An entry whose source is a ZFS dataset of its own (`zfs`) is created and
# checked by tabula-sources.service, which the generator emits with
# After=zfs-import.target and a PATH that starts with NixOS's system
# profile; it runs the `zfs` program found there. A drop-in adds what only
# NixOS knows: the ZFS module's own `zfs` (boot.zfs.package, the one that
# matches the kernel module) first in PATH, and Wants=zfs-import.target, so
# that the pools are imported before a dataset is created or mounted even
# when nothing else pulls the import in.
{
  config,
  lib,
  ...
}:

let
  cfg = config.tabula;

  entriesOf = s: s.directories ++ lib.concatMap (u: u.directories) (lib.attrValues s.users);
  usesZfs = lib.any (e: e.zfs != null) (
    lib.concatMap entriesOf (lib.filter (s: s.enable) (lib.attrValues cfg.persist))
  );
in
{
  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      environment.systemPackages = [ cfg.package ];
    })
    (lib.mkIf (cfg.enable && (cfg.settings.persist != [ ] || cfg.settings.overlays != [ ])) {
      systemd.generators.tabula = "${cfg.package}/bin/tabula-generator";
    })
    (lib.mkIf (cfg.enable && usesZfs) {
      systemd.services.tabula-sources = {
        # a drop-in for the generator's unit, not a unit of its own
        overrideStrategy = "asDropin";
        wants = [ "zfs-import.target" ];
        after = [ "zfs-import.target" ];
        path = [ config.boot.zfs.package ];
      };
    })
  ];
}
