# Stage 2: the generator, run by systemd at every boot and daemon-reload,
# reads /etc/tabula/config.json and emits the mount units; the `tabula`
# command (what the next boot erases, old roots, restore, adopt) is installed.
#
# An entry whose source is a ZFS dataset of its own (`zfs`) is created and
# checked by the prepare step (tabula-prepare.service, which the generator
# emits) with the `zfs` program, looked up in PATH. What only NixOS knows is
# added to that unit by a drop-in: the `zfs` of the running ZFS module in
# PATH, and the order after the pool imports (zfs-import.target), so that a
# dataset is created and mounted once its pool is there.
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
      systemd.services.tabula-prepare = {
        # a drop-in for the generator's unit, not a unit of its own
        overrideStrategy = "asDropin";
        wants = [ "zfs-import.target" ];
        after = [ "zfs-import.target" ];
        path = [ config.boot.zfs.package ];
      };
    })
  ];
}
