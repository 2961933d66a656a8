# The config file: options -> the JSON of docs/config.md, placed at
# /etc/tabula/config.json in stage 2 (the initrd modules place the same file
# in the initrd).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    filterAttrs
    mkIf
    ;

  cfg = config.tabula;

  # An entry: the bare path when every field is at its default (the contract's
  # string form), otherwise an object with only the fields that were set.
  renderEntry =
    e:
    let
      set = filterAttrs (_: v: v != null) {
        inherit (e) user group mode ownership method;
        inInitrd = if e.inInitrd then true else null;
        mountOptions = if e.mountOptions == [ ] then null else e.mountOptions;
        parentDirectory =
          if e.parentDirectory == null then
            null
          else
            filterAttrs (_: v: v != null) { inherit (e.parentDirectory) user group mode; };
        # every key of the source, `null` included (`dataset = null`: the
        # default child of the storage's dataset; `compression = null`: none)
        zfs = if e.zfs == null then null else { inherit (e.zfs) dataset properties; };
        btrfs =
          if e.btrfs == null then null else { inherit (e.btrfs) subvolume nodatacow compression; };
      };
    in
    if set == { } then e.path else { inherit (e) path; } // set;

  renderKeep = k: { inherit (k) days min max; };

  renderTarget =
    t:
    if t.type == "btrfs" then
      {
        type = "btrfs";
        inherit (t)
          device
          mountOptions
          subvolume
          blank
          oldRoots
          waitSeconds
          ;
        keep = renderKeep t.keep;
      }
    else
      {
        type = "zfs";
        inherit (t)
          dataset
          snapshot
          oldRoots
          zfsCommand
          ;
        keep = renderKeep t.keep;
      };

  renderUser = _: u: {
    inherit (u) home;
    directories = map renderEntry u.directories;
    files = map renderEntry u.files;
  };

  renderStorage = s: {
    inherit (s) storage hideMounts mountOptions;
    directories = map renderEntry s.directories;
    files = map renderEntry s.files;
    users = lib.mapAttrs renderUser s.users;
  };

  renderOverlay = o: {
    inherit (o)
      where
      lower
      upper
      work
      whenMounted
      before
      required
      mountOptions
      ;
  };

  enabledStorages = lib.filter (s: s.enable) (lib.attrValues cfg.persist);

  settings = {
    version = 1;
    rollback = map renderTarget cfg.rollback.targets;
    persist = map renderStorage enabledStorages;
    overlays = map renderOverlay (lib.attrValues cfg.overlays);
  };
in
{
  config = mkIf cfg.enable {
    tabula.settings = settings;
    tabula.configFile = (pkgs.formats.json { }).generate "tabula-config.json" settings;

    environment.etc."tabula/config.json".source = cfg.configFile;
  };
}
