# The option reference, rendered by nixpkgs' nixosOptionsDoc from the
# module's own declarations (the flake's `packages.<system>.docs` and
# `checks.<system>.option-docs`; a missing description fails the build).
{ pkgs, lib }:

let
  eval = lib.evalModules {
    modules = [
      ./options.nix
      {
        _module.check = false;
        _module.args.pkgs = pkgs;
      }
    ];
  };
in
pkgs.nixosOptionsDoc {
  options = { inherit (eval.options) tabula; };
  transformOptions = opt: opt // { declarations = [ ]; };
  warningsAreErrors = true;
}
