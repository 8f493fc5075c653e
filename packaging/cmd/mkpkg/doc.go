// Command mkpkg builds Cairn's .deb and .rpm from packaging/nfpm.yaml with
// nfpm used as a library (no nfpm binary needed):
//
//	go run ./packaging/cmd/mkpkg --version "$(git describe --tags --always --dirty)" \
//	    --binary bin/cairn --out dist
//
// writes dist/cairn_<version>_amd64.deb and dist/cairn-<version>.x86_64.rpm.
// <version> is --version made valid for both dpkg and rpm (see
// PackageVersion): `v1.2.3` → 1.2.3, `v1.2.3-4-gabc1234` → 1.2.3+4.gabc1234,
// `abc1234-dirty` (no tag yet) → 0.1.0~gitabc1234.dirty.
//
// Before packaging it runs the binary's --help for the root and for every
// command it lists, and turns the text into /usr/share/doc/cairn/cairn.txt,
// a man page and a bash completion script, so the docs always match the
// binary in the package. The binary must therefore run on the build host.
package main
