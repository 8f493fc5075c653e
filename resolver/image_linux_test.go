package resolver

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestTrimImage: after TrimImage every read-only mapping of the test
// binary is marked no-huge-page ("nh" in smaps) and none is mapped by
// 2 MiB pages; writable mappings keep their flags and contents.
func TestTrimImage(t *testing.T) {
	canary := []int{1, 2, 3} // lives in writable memory: must survive
	TrimImage()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip("no /proc/self/exe:", err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cur []string // header fields of the mapping being read
	checked := 0
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			cur = fields
			continue
		}
		if len(cur) < 6 || cur[5] != exe || cur[1][1] == 'w' {
			continue
		}
		switch {
		case strings.HasPrefix(line, "FilePmdMapped:") && fields[1] != "0":
			t.Errorf("%s %s: %s kB still mapped by huge pages", cur[0], cur[1], fields[1])
		case strings.HasPrefix(line, "VmFlags:"):
			checked++
			if !strings.Contains(line, " nh") {
				t.Errorf("%s %s: VmFlags %q lack nh", cur[0], cur[1], line)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no read-only mapping of the executable found in smaps")
	}
	if canary[0]+canary[1]+canary[2] != 6 {
		t.Fatal("writable memory changed")
	}
}
