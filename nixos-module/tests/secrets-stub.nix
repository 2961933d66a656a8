# The options of sops-nix and agenix that name the keys they decrypt with,
# with their modules' types (sops-nix modules/sops/default.nix, agenix
# modules/age.nix); defaults empty (upstream derives them from
# services.openssh.hostKeys, which the tests do not declare).
{ lib, ... }:

let
  inherit (lib) mkOption types;
in
{
  options = {
    sops.age.sshKeyPaths = mkOption {
      type = types.listOf types.path;
      default = [ ];
    };
    sops.age.keyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
    };
    sops.gnupg.sshKeyPaths = mkOption {
      type = types.listOf types.path;
      default = [ ];
    };
    age.identityPaths = mkOption {
      type = types.listOf types.path;
      default = [ ];
    };
  };
}
