# The names of old roots, for the NixOS VM tests' scripts (common.nix puts
# this file at the top of every script). The definition is the config
# crate's (config/src/old_root.rs); both are held to the cases of
# config/rules.json, `oldRootName` (nixos-module/tests/run.sh checks this
# file, the crate's tests check the crate).
import re

OLD_ROOT_NAME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z(?:\.([1-9][0-9]*))?"
)


def is_old_root_name(name):
    """Whether `name` is an old root's name: the UTC time the root was
    created, `2026-11-21T23:56:00Z`, a real date and time, with `.1`, `.2`…
    appended (no leading zero, below 2^64) when that name was taken."""
    m = OLD_ROOT_NAME.fullmatch(name)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    counter = m.group(7)
    return (
        1 <= month <= 12
        and 1 <= day <= days[month - 1]
        and hour < 24
        and minute < 60
        and second < 60
        and (counter is None or int(counter) < 2**64)
    )
