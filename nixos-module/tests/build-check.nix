# The build-time config check of check.nix as the module wires it, for
# run.sh to run with the binaries built from this checkout: its script, the
# store paths in it to replace, and two configs: the rendered one, and the
# same with one mistake, standing for any rule the option types might miss.
#
#   nix-instantiate --eval --strict --json tests/build-check.nix --arg lib ...
{ lib }:

let
  inherit (import ./stub-pkgs.nix) package pkgs;
  evalWith =
    extra:
    (lib.evalModules {
      modules = [
        ./stubs.nix
        ../default.nix
        {
          _module.args = {
            inherit pkgs;
            utils = { };
          };
          tabula.package = package;
          fileSystems."/" = {
            device = "/dev/disk/by-label/nixos";
            fsType = "btrfs";
            options = [ "subvol=@root" ];
          };
          tabula.enable = true;
          tabula.rollback.targets = [
            {
              type = "btrfs";
              device = "/dev/disk/by-label/nixos";
            }
          ];
        }
        extra
      ];
    }).config;
  good = evalWith { };
  # the good file with a mistake the option types refuse (tabula.settings is
  # read-only): a zfs target whose zfsCommand is relative
  badSettings = good.tabula.settings // {
    rollback = [
      {
        type = "zfs";
        dataset = "rpool/local/root";
        snapshot = "blank";
        oldRoots = null;
        zfsCommand = "bin/zfs";
        inherit (lib.head good.tabula.settings.rollback) keep;
      }
    ];
  };
in
{
  package = package.outPath;
  script = (lib.head good.system.checks).script;
  configFile = good.tabula.configFile.outPath;
  good = good.tabula.settings;
  bad = badSettings;
}
