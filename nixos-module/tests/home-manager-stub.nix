# Home Manager's NixOS module, as far as the impermanence compatibility
# module touches it (home-manager's nixos/common.nix): `home-manager.users`,
# each a Home Manager configuration built from `home-manager.sharedModules`,
# with the options those modules read (home.username, home.homeDirectory,
# assertions), typed as Home Manager types them.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;

  homeBase =
    { name, ... }:
    {
      options = {
        home.username = mkOption {
          type = types.str;
          default = name;
        };
        home.homeDirectory = mkOption {
          type = types.path;
          default = "/home/${name}";
        };
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
      };
    };
in
{
  options.home-manager = {
    sharedModules = mkOption {
      type = types.listOf types.raw;
      default = [ ];
    };
    users = mkOption {
      type = types.attrsOf (
        types.submoduleWith {
          modules = [ homeBase ] ++ config.home-manager.sharedModules;
          specialArgs = { inherit lib; };
        }
      );
      default = { };
    };
  };
}
