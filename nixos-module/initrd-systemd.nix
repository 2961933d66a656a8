# systemd in stage 1: boot.initrd.systemd.services.tabula-rollback is built
# from rollback-unit.json, the one definition the QEMU harness renders too,
# plus one After=/Wants= per target on what it needs (Wants=, not Requires=:
# a second disk that never appears fails only its own target, see
# rollback-unit.json's _comment):
#
#   btrfs  the device unit of `device` (dev-disk-by\x2dlabel-nixos.device)
#   zfs    zfs-import-<pool>.service (nixpkgs' zfs.nix, one per root pool)
#
# and from the JSON itself: DefaultDependencies=no, After=local-fs-pre.target
# and systemd-hibernate-resume.service (never before a resume),
# Before=sysroot.mount (never after the root is mounted), wanted by
# initrd.target, or required by it with rollback.onFailure = "block".
#
# The generator goes into the initrd too when an entry has inInitrd: systemd
# runs /etc/systemd/system-generators/* in the initrd as in stage 2.
{
  config,
  lib,
  ...
}:

let
  tabulaLib = import ./lib.nix { inherit lib; };

  cfg = config.tabula;
  systemdInitrd = config.boot.initrd.systemd.enable;
  rollbackBin = "${cfg.package}/bin/tabula-rollback";
  generatorBin = "${cfg.package}/bin/tabula-generator";

  targetDeps =
    t:
    if t.type == "btrfs" then
      tabulaLib.deviceUnit t.device
    else
      "zfs-import-${tabulaLib.poolOf t.dataset}.service";

  inInitrd = lib.any (
    s:
    lib.any (e: e.inInitrd) (
      s.directories ++ s.files ++ lib.concatMap (u: u.directories ++ u.files) (lib.attrValues s.users)
    )
  ) (lib.filter (s: s.enable) (lib.attrValues cfg.persist));
in
{
  config = lib.mkIf (cfg.enable && systemdInitrd) (
    lib.mkMerge [
      (lib.mkIf (cfg.rollback.targets != [ ] || inInitrd) {
        boot.initrd.systemd.contents."/etc/tabula/config.json".source = cfg.configFile;
      })

      (lib.mkIf (cfg.rollback.targets != [ ]) {
        boot.initrd.systemd.storePaths = [ rollbackBin ];
        # also on PATH, for the emergency shell (tabula-rollback --dry-run)
        boot.initrd.systemd.extraBin.tabula-rollback = rollbackBin;

        boot.initrd.systemd.services.tabula-rollback = tabulaLib.serviceFromUnitJSON {
          unit = tabulaLib.rollbackUnitJSON;
          substitute."@tabulaRollback@" = rollbackBin;
          extraDeps = lib.unique (map targetDeps cfg.rollback.targets);
          required = cfg.rollback.onFailure == "block";
        };
      })

      (lib.mkIf inInitrd {
        boot.initrd.systemd.contents."/etc/systemd/system-generators/tabula".source = generatorBin;
        boot.initrd.systemd.storePaths = [ generatorBin ];
      })
    ]
  );
}
