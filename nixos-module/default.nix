# The tabula NixOS module: `imports = [ ./nixos-module ];` without flakes, or
# `tabula.nixosModules.default` with them. Split by concern:
#
#   options.nix         every option (mirrors docs/config.md)
#   render.nix          options -> /etc/tabula/config.json
#   assertions.nix      what must hold at evaluation time, warnings
#   check.nix           the rendered config checked by the binaries at build time
#   initrd-scripted.nix scripted stage 1 wiring (postResumeCommands)
#   initrd-systemd.nix  systemd stage 1 wiring (rollback-unit.json)
#   stage2.nix          the systemd generator
#   prune.nix           tabula-prune.service: old roots pruned after boot
#   impermanence.nix    environment.persistence compatibility (separate module)
{
  imports = [
    ./options.nix
    ./render.nix
    ./assertions.nix
    ./check.nix
    ./initrd-scripted.nix
    ./initrd-systemd.nix
    ./stage2.nix
    ./prune.nix
  ];
}
