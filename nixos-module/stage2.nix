# Stage 2: the generator, run by systemd at every boot and daemon-reload,
# reads /etc/tabula/config.json and emits the mount units.
{
  config,
  lib,
  ...
}:

let
  cfg = config.tabula;
in
{
  config = lib.mkIf (cfg.enable && (cfg.settings.persist != [ ] || cfg.settings.overlays != [ ])) {
    systemd.generators.tabula = "${cfg.package}/bin/tabula-generator";
  };
}
