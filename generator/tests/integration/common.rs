//! Helpers shared by the integration test modules.

use tabula_testkit::Need;

/// `systemd-analyze`, which a build sandbox lacks.
pub const SYSTEMD_ANALYZE: Need = Need::Program {
    name: "systemd-analyze",
    package: "systemd",
};
