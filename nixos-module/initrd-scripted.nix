# Scripted stage 1 (boot.initrd.systemd.enable = false): the static binary is
# copied into extra-utils, the config file into the initrd, and the rollback
# runs from postResumeCommands, after nixpkgs' own commands there:
#
#   postDeviceCommands   devices exist                 (too early: a hibernated
#                                                       system may still resume)
#   -- resume attempt --                              (stage-1-init.sh)
#   postResumeCommands   nixpkgs' ZFS pool import      (zfs.nix, default priority)
#                        tabula-rollback               (this module, lib.mkAfter)
#   -- mount fileSystems needed for boot --
#
# A root is never touched before the kernel had its chance to resume from
# hibernation, and a ZFS pool is imported before its dataset is rolled back.
{
  config,
  lib,
  ...
}:

let
  cfg = config.tabula;
  scripted = !config.boot.initrd.systemd.enable;
  onFailure =
    if cfg.rollback.onFailure == "block" then
      ''
        echo "tabula: the rollback failed and tabula.rollback.onFailure = \"block\": stopping the boot."
        fail
      ''
    else
      ''
        echo "tabula: the rollback failed; booting the root as it is (tabula.rollback.onFailure = \"continue\")."
      '';
in
{
  config = lib.mkIf (cfg.enable && scripted && cfg.rollback.targets != [ ]) {
    boot.initrd.extraUtilsCommands = ''
      copy_bin_and_libs ${cfg.package}/bin/tabula-rollback
    '';
    # The copy must still run after extra-utils' patchelf/strip/nuke-refs: an
    # unknown flag is a usage error, exit status 2, before any file is read.
    boot.initrd.extraUtilsCommandsTest = ''
      rc=0; $out/bin/tabula-rollback --tabula-selftest >/dev/null 2>&1 || rc=$?
      if [ "$rc" != 2 ]; then
        echo "tabula-rollback does not run from extra-utils (exit status $rc, expected 2)" >&2
        exit 1
      fi
    '';

    boot.initrd.extraFiles."/etc/tabula/config.json".source = cfg.configFile;

    boot.initrd.postResumeCommands = lib.mkAfter ''
      # tabula: roll back the root filesystem (after resume, after the pool import)
      if ! tabula-rollback --config /etc/tabula/config.json; then
        ${onFailure}
      fi
    '';
  };
}
