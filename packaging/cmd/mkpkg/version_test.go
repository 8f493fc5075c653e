package main

import (
	"regexp"
	"testing"
)

// Both dpkg (upstream_version without '-') and rpm (Version tag) accept
// this alphabet; the result must also start with a digit for dpkg.
var validVersion = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)

func TestPackageVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2", "1.2"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"v1.2.3-rc1-4-gabc1234", "1.2.3~rc1+4.gabc1234"},
		{"abc1234", "0.1.0~gitabc1234"},
		{"abc1234-dirty", "0.1.0~gitabc1234.dirty"},
		{"58b2117", "0.1.0~git58b2117"},
		{"0.1.0-dev", "0.1.0~dev"},
		{" v2.0.0\n", "2.0.0"},
		{"feature/x y", "0.1.0~feature.x.y"},
		{"", "0.1.0"},
	} {
		got := PackageVersion(tc.in)
		if got != tc.want {
			t.Errorf("PackageVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !validVersion.MatchString(got) {
			t.Errorf("PackageVersion(%q) = %q: not a valid dpkg/rpm version", tc.in, got)
		}
	}
}
