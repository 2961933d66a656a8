# The rendered /etc/tabula/config.json, checked at build time by the binaries
# that will read it at boot: `tabula-rollback --check-config` and
# `tabula-generator --check-config` run the same parser and checks as the
# initrd and the generator, and refuse (exit status 2, one line per problem)
# what a boot would refuse without looking at a disk. The check is a
# derivation in system.checks, so a refused configuration stops
# `nixos-rebuild` instead of a boot. The option types state the same rules
# (lib.nix `rules`); this catches whatever they might miss.
#
# Skipped when the build machine cannot run the package's binaries (a cross
# build): the types and assertions still apply there.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.tabula;
  canRun = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
in
{
  config = lib.mkIf cfg.enable {
    system.checks = lib.optional canRun (
      pkgs.runCommand "tabula-check-config" { } ''
        status=0
        for program in tabula-rollback tabula-generator; do
          if ! ${cfg.package}/bin/$program --check-config ${cfg.configFile}; then
            echo "tabula: $program refuses the configuration rendered from the tabula.* options (the lines above name each field); fix those options" >&2
            status=1
          fi
        done
        if [ "$status" = 0 ]; then touch "$out"; fi
        exit "$status"
      ''
    );
  };
}
