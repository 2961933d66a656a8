# Scripted stage 1 (boot.initrd.systemd.enable = false), deprecated by
# nixpkgs 26.05 (systemd stage 1 is the default there) and to be removed in
# 26.11. The definitions below exist only while nixpkgs still declares the
# scripted initrd's options: a definition of an option that does not exist
# fails the evaluation even under `mkIf false`, so they are guarded by the
# options' existence, not by a condition on their value.
#
# The static binary is
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
  options,
  lib,
  ...
}:

let
  cfg = config.tabula;
  scripted = !config.boot.initrd.systemd.enable;
  wanted = cfg.enable && scripted && cfg.rollback.targets != [ ];

  # The scripted initrd's options this file defines.
  scriptedOptions = [
    "extraUtilsCommands"
    "extraUtilsCommandsTest"
    "extraFiles"
    "postResumeCommands"
  ];
  haveScripted = lib.all (o: options.boot.initrd ? ${o}) scriptedOptions;

  run = "tabula-rollback --config /etc/tabula/config.json";
  # "block": stage 1's `fail` prompts on the console (shell, reboot, or any
  # other key to go on), and with boot.panic_on_fail it panics instead. Any
  # other key runs the rollback again, so the boot never goes on with a root
  # that was not rolled back; a repair from the shell followed by a key
  # press resumes the boot.
  rollbackCommands =
    if cfg.rollback.onFailure == "block" then
      ''
        # tabula: roll back the root filesystem (after resume, after the pool import)
        until ${run}; do
          echo "tabula: the rollback failed and tabula.rollback.onFailure = \"block\": the boot stops here until it succeeds."
          fail
          echo "tabula: running the rollback again."
        done
      ''
    else
      ''
        # tabula: roll back the root filesystem (after resume, after the pool import)
        if ! ${run}; then
          echo "tabula: the rollback failed; booting the root as it is (tabula.rollback.onFailure = \"continue\")."
        fi
      '';
in
{
  config = lib.mkMerge [
    {
      assertions = [
        {
          assertion = !(wanted && !haveScripted);
          message = "tabula: this nixpkgs has no scripted initrd (boot.initrd.postResumeCommands and the rest are gone); set boot.initrd.systemd.enable = true.";
        }
      ];
    }
    (lib.optionalAttrs haveScripted {
      boot.initrd = lib.mkIf wanted {
        extraUtilsCommands = ''
          copy_bin_and_libs ${cfg.package}/bin/tabula-rollback
        '';
        # The copy must still run after extra-utils' patchelf/strip/nuke-refs: an
        # unknown flag is a usage error, exit status 2, before any file is read.
        extraUtilsCommandsTest = ''
          rc=0; $out/bin/tabula-rollback --tabula-selftest >/dev/null 2>&1 || rc=$?
          if [ "$rc" != 2 ]; then
            echo "tabula-rollback does not run from extra-utils (exit status $rc, expected 2)" >&2
            exit 1
          fi
        '';

        extraFiles."/etc/tabula/config.json".source = cfg.configFile;

        postResumeCommands = lib.mkAfter rollbackCommands;
      };
    })
  ];
}
