package main

import (
	"regexp"
	"strings"
)

// untaggedBase is the upstream version given to builds before the first
// release tag; `~` makes 0.1.0~gitX sort below a real 0.1.0 in dpkg and rpm.
const untaggedBase = "0.1.0"

var (
	// v1.2.3, v1.2.3-rc1, v1.2.3-4-gabc1234, v1.2.3-4-gabc1234-dirty, 1.2.3-dirty
	tagged = regexp.MustCompile(`^v?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.]+?))??(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)
	// git describe --always without a tag: abc1234, abc1234-dirty
	untagged = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
	// Anything outside [0-9A-Za-z.] becomes '.'; both dpkg and rpm accept it.
	unsafeChars = regexp.MustCompile(`[^0-9A-Za-z.]+`)
)

// PackageVersion turns `git describe --tags --always --dirty` output (or a
// plain release number) into a version both dpkg and rpm accept and order
// sensibly: pre-releases and untagged builds sort before the release
// (`~`), builds after a tag sort after it (`+`). It never contains '-',
// which both formats reserve for the package release.
func PackageVersion(raw string) string {
	raw = strings.TrimSpace(raw)
	if m := untagged.FindStringSubmatch(raw); m != nil && !isAllDigits(m[1]) {
		v := untaggedBase + "~git" + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v
	}
	if m := tagged.FindStringSubmatch(raw); m != nil {
		v := m[1]
		if m[2] != "" { // pre-release: v1.2.3-rc1
			v += "~" + m[2]
		}
		var meta []string
		if m[3] != "" {
			meta = append(meta, m[3], "g"+m[4])
		}
		if m[5] != "" {
			meta = append(meta, "dirty")
		}
		if len(meta) > 0 {
			v += "+" + strings.Join(meta, ".")
		}
		return v
	}
	// Unknown shape: keep the information, make it syntactically valid.
	clean := strings.Trim(unsafeChars.ReplaceAllString(raw, "."), ".")
	if clean == "" {
		return untaggedBase
	}
	return untaggedBase + "~" + clean
}

func isAllDigits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}
