# Stage 2: the generator, run by systemd at every boot and daemon-reload,
# reads /etc/tabula/config.json and emits the mount units; the `tabula`
# command (what the next boot erases, old roots, restore, adopt) is installed.
{
  config,
  lib,
  ...
}:

let
  cfg = config.tabula;
in
{
  config = lib.mkMerge [
    (lib.mkIf cfg.enable {
      environment.systemPackages = [ cfg.package ];
    })
    (lib.mkIf (cfg.enable && (cfg.settings.persist != [ ] || cfg.settings.overlays != [ ])) {
      systemd.generators.tabula = "${cfg.package}/bin/tabula-generator";
    })
  ];
}
