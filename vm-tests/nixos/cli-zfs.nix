# cli-zfs: the `tabula` command on a ZFS keep-previous machine, after real
# boots. Mirrors the QEMU harness scenario (vm-tests/driver/src/scenarios/cli_zfs.rs):
# `tabula diff --json` before and after planting files lists, in between,
# exactly the planted ephemeral files (a store link among them regenerated),
# never a persisted path; after the reboot `tabula roots --json` lists the
# archived root, and `tabula restore` (--dry-run, --to storage, --to place)
# copies with owner, mode, times and extended attributes, the old root
# unmodified and no mount left behind.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "cli-zfs";

  machine = common.node {
    flavour = "systemd";
    layout = "zfs";
    target = {
      oldRoots = "rpool/local/old_roots";
      keep = {
        days = 30;
        min = 1;
        max = 5;
      };
    };
    tabula =
      { pkgs, ... }:
      {
        # The module installs the `tabula` command itself (stage2.nix);
        # getfattr is for the checks.
        environment.systemPackages = [ pkgs.attr ];
      };
  };

  script = ''
    import json

    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_zfs(machine, old_roots=True)
    boot_specialisation(machine)


    # /srv is there before the first answer (systemd's home.conf makes it).
    machine.succeed("mkdir -p /srv")


    def diff_entries():
        doc = json.loads(machine.succeed("sync; tabula diff --json --all"))
        assert doc["filesystem"] == "zfs", doc["filesystem"]
        out = {}
        for e in doc["entries"]:
            path = bytes(e["path_bytes"]) if "path_bytes" in e else e["path"].encode()
            out[path] = f'{e["class"]} {e["type"]} {e["size"]} {e["change"]}'
        return out


    PLANTED = {
        b"/etc/planted.conf": "lost file 5 new",
        b"/srv/planted": "lost directory 0 new",
        b"/srv/planted/file": "lost file 13 new",
        b"/srv/planted/store-link": "regenerated symlink 0 new",
        b"/srv/planted/sub": "lost directory 0 new",
        b"/srv/planted/sub/new\nline": "lost file 1 new",
        b"/srv/planted/sub/\xffname": "lost file 1 new",
    }
    PERSISTED = [b"/var/lib/nixos", b"/var/lib/kept"]
    META = "stat -c %u:%g:%a:%s:%Y:%X"

    with subtest("tabula diff lists exactly the planted ephemeral files, never persisted ones"):
        before = diff_entries()
        machine.succeed(
            "mkdir -p /srv/planted/sub",
            "printf 'planted data\\n' > /srv/planted/file",
            "chown nobody:nogroup /srv/planted/file && chmod 0640 /srv/planted/file",
            "setfattr -n user.tabula -v kept-xattr /srv/planted/file",
            "setfattr -n user.tabula -v dir-xattr /srv/planted",
            "touch -m -d @1700000000 /srv/planted/file && touch -a -d @1700000100 /srv/planted/file",
            "printf x > \"/srv/planted/sub/new\nline\"",
            "printf y > \"/srv/planted/sub/$(printf '\\377')name\"",
            "ln -s /nix/store/00000000000000000000000000000000-bash/bin/sh /srv/planted/store-link",
            "printf 'conf\\n' > /etc/planted.conf",
            "echo persisted > /var/lib/kept/planted-persisted",
        )
        after = diff_entries()
        appeared = {p: c for p, c in after.items() if p not in before}
        assert appeared == PLANTED, f"appeared between the two answers: {appeared}"
        for p, c in before.items():
            assert p in after and after[p].split()[0] == c.split()[0], f"{p!r} changed: {c} / {after.get(p)}"
        for listing in (before, after):
            for p in listing:
                assert not any(p == d or p.startswith(d + b"/") for d in PERSISTED), f"persisted path listed: {p!r}"
        doc = json.loads(machine.succeed("tabula diff --json --all"))
        systemd_dir = [e for e in doc["entries"] if e["path"] == "/var/lib/systemd"]
        assert systemd_dir and systemd_dir[0]["class"] == "regenerated", systemd_dir
        reason = systemd_dir[0]["reason"]
        assert reason.startswith("made by systemd-tmpfiles at every boot: `d /var/lib/systemd "), reason
        planted_meta = machine.succeed(f"{META} /srv/planted/file").strip()
        assert planted_meta == "65534:65534:640:13:1700000000:1700000100", planted_meta
        reboot(machine)

    with subtest("tabula roots lists the archived root of the first boot, newest first"):
        roots = json.loads(machine.succeed("tabula roots --json"))
        assert len(roots) == 2, f"expected two old roots: {roots}"
        old = roots[0]["name"]
        assert TIMESTAMP.match(old), old
        assert roots[0]["location"] == f"rpool/local/old_roots/{old}", roots[0]
        assert roots[0]["next_boot"] == "keep", roots[0]
        ds = f"rpool/local/old_roots/{old}"
        machine.succeed(f"zfs snapshot {ds}@tabula-check", "mkdir -p /mnt/old")
        props = f"zfs get -H -p -o value guid,written,written@tabula-check,referenced {ds}"


        def old_digest():
            """The old root's whole tree, through a plain read-only mount."""
            return machine.succeed(
                f"mount -t zfs -o ro {ds} /mnt/old",
                "(cd /mnt/old && find . -printf '%p %y %U:%G %m %s %T@\\n' | LC_ALL=C sort"
                " && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum",
                "umount /mnt/old",
            )


        # The first mount of a dataset that was a running root finishes its
        # intent log (ZFS writes the log header, read-only mounts too): done
        # by the digest, before the measure.
        digest_before = old_digest()
        props_before = machine.succeed(props)

    with subtest("restore --dry-run changes nothing"):
        out = machine.succeed(f"tabula restore /srv/planted --from {old} --dry-run")
        assert "would copy" in out, out
        machine.fail("test -e /persist/srv")
        machine.fail("test -e /srv/planted")

    with subtest("restore into the storage and in place keeps owner, mode, times, xattrs"):
        machine.succeed(f"tabula restore /srv/planted --from {old} --to storage")
        machine.succeed(f"tabula restore /srv/planted/file --from {old} --to place")
        for path in ("/persist/srv/planted/file", "/srv/planted/file"):
            assert machine.succeed(f"{META} {path}").strip() == planted_meta, path
            assert machine.succeed(f"getfattr --only-values -n user.tabula {path}") == "kept-xattr", path
            assert machine.succeed(f"cat {path}") == "planted data\n", path
        assert machine.succeed("getfattr --only-values -n user.tabula /persist/srv/planted") == "dir-xattr"
        machine.succeed(
            "test -f \"/persist/srv/planted/sub/new\nline\"",
            "test -f \"/persist/srv/planted/sub/$(printf '\\377')name\"",
            "test \"$(readlink /persist/srv/planted/store-link)\" = /nix/store/00000000000000000000000000000000-bash/bin/sh",
        )

    with subtest("the old root is unmodified and no mount is left behind"):
        props_after = machine.succeed(props)
        assert props_after == props_before, f"{props_before!r} -> {props_after!r}"
        assert machine.succeed(f"zfs get -H -o value mounted {ds}").strip() == "no"
        assert "old_roots" not in machine.succeed("cat /proc/self/mountinfo")
        assert old_digest() == digest_before, "the old root's tree changed"
        machine.succeed(f"zfs destroy {ds}@tabula-check")
  '';
}
