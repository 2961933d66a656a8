# What the module evaluation tests (eval.nix, corpus.nix, build-check.nix)
# share: a fixed tabula package, and the parts of pkgs the module reads,
# without a store. Every derivation keeps what it was made from (the
# rendered value, the build-time check's script) for inspection.
{
  package = {
    type = "derivation";
    name = "tabula-0.1.0";
    outPath = "/nix/store/00000000000000000000000000000000-tabula-0.1.0";
  };
  pkgs = {
    # pkgs.formats.json: the value is kept
    formats.json = _: {
      generate = name: value: {
        type = "derivation";
        inherit name value;
        outPath = "/nix/store/11111111111111111111111111111111-${name}";
      };
    };
    # the build-time check: its script is kept
    runCommand = name: _: script: {
      type = "derivation";
      inherit name script;
      outPath = "/nix/store/33333333333333333333333333333333-${name}";
    };
    stdenv = {
      buildPlatform.canExecute = _: true;
      hostPlatform = { };
    };
  };
}
