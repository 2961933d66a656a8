# Home Manager's side of the impermanence compatibility module: declares
# `home.persistence` as impermanence's home-manager.nix does (paths relative
# to the home, owned by the user). It does nothing by itself: the NixOS
# module (impermanence.nix) adds it to `home-manager.sharedModules` and maps
# every user's `home.persistence` onto that user's `tabula.persist` entries,
# as impermanence forwards it to its NixOS module.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  inherit (import ./impermanence-options.nix { inherit lib; }) locationModule;

  storagePaths = map (l: toString l.persistentStoragePath) (lib.attrValues config.home.persistence);
in
{
  options.home = {
    persistence = mkOption {
      type = types.attrsOf (types.submodule (locationModule { withUsers = false; }));
      default = { };
      description = ''
        impermanence's `home.persistence`: directories and files of this
        user's home, relative to it, persisted by tabula (through the NixOS
        module `tabula.nixosModules.impermanence`).
      '';
    };
    _tabulaNixosModuleImported = mkOption {
      type = types.bool;
      default = false;
      internal = true;
      description = "Set by tabula's NixOS impermanence module when it adds this module to home-manager.sharedModules.";
    };
  };

  config.assertions = [
    {
      assertion = config.home._tabulaNixosModuleImported;
      message = ''
        home.persistence: this module was imported by hand. Import
        tabula.nixosModules.impermanence in the NixOS configuration instead:
        it adds this module to home-manager.sharedModules and maps
        home.persistence onto tabula.persist (nothing else reads it).
      '';
    }
    {
      assertion = !(lib.any (lib.hasInfix config.home.homeDirectory) storagePaths);
      message = ''
        home.persistence: a persistentStoragePath contains the home directory
        (${config.home.homeDirectory}). As with impermanence, name the storage
        only ("/persist"); the path of the home is added to every entry.
      '';
    }
  ];
}
