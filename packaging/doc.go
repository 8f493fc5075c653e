// Package packaging builds and tests Cairn's Linux packages; it holds no
// code the agent imports.
//
// One nfpm configuration (nfpm.yaml) describes both the .deb and the .rpm:
// /usr/bin/cairn, the systemd unit from ../systemd, the client-mode
// /etc/cairn.d/cairn.json (a conffile, so upgrades keep local edits),
// /var/lib/cairn, examples and --help-derived docs under /usr/share. Only
// the maintainer scripts differ per format (scripts/deb, scripts/rpm),
// because dpkg and rpm call them with different arguments. cmd/mkpkg turns
// the config into dist/cairn_<version>_amd64.deb and
// dist/cairn-<version>.x86_64.rpm; `make package` runs it.
//
// Invariants the tests pin: the package never edits /etc/resolv.conf;
// `dpkg -r` keeps /etc/cairn.d and `dpkg -P` removes it, the data directory
// and the cairn system user; the unit stays `systemd-analyze verify` clean
// with a `security` exposure of at most 2.0.
//
// package_test.go checks the built packages' file lists, conffiles and
// scripts against testdata/. install_test.go installs the .deb on a Debian
// container booted with systemd as PID 1 (root, Docker and debootstrap
// required; skipped otherwise and under -short).
package packaging
