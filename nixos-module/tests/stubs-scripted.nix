# The scripted initrd's options (nixos/modules/system/boot/stage-1.nix), with
# nixpkgs' types: declared by a nixpkgs that still has the scripted initrd
# (deprecated in 26.05, removal planned for 26.11). Evaluation tests import
# this next to stubs.nix for that nixpkgs, and leave it out for one without.
{ lib, ... }:

let
  inherit (lib) mkOption types;

  # the shell hooks of the scripted initrd
  lines = mkOption {
    type = types.lines;
    default = "";
  };
in
{
  options.boot.initrd = {
    extraUtilsCommands = lines;
    extraUtilsCommandsTest = lines;
    postDeviceCommands = lines;
    postResumeCommands = lines;
    postMountCommands = lines;
    extraFiles = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.source = mkOption { type = types.package; };
        }
      );
      default = { };
    };
  };
}
