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

// TestCleanImageMappings: only the executable's private read-only
// mappings without a private page are trimmed. A RELRO page (a dynamically
// linked binary's GOT, written by the loader, then made read-only) holds
// an anonymous copy: dropping it brought back the unrelocated file bytes
// and a race-enabled test binary jumped to address 0 at exit.
func TestCleanImageMappings(t *testing.T) {
	const exe = "/usr/bin/cairn"
	smaps := `00400000-00402000 r--p 00000000 fe:00 1 /usr/bin/cairn
Size:                  8 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
00402000-01b86000 r-xp 00002000 fe:00 1 /usr/bin/cairn
Size:              24080 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
02bc6000-02bc7000 r--p 027c5000 fe:00 1 /usr/bin/cairn
Size:                  4 kB
Anonymous:             4 kB
VmFlags: rd mr mw me ac
02bc7000-02c6c000 rw-p 027c6000 fe:00 1 /usr/bin/cairn
Anonymous:           144 kB
7f0000000000-7f0000001000 r--p 00000000 fe:00 2 /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000002000-7f0000003000 r-xs 00000000 fe:00 1 /usr/bin/cairn
Anonymous:             0 kB
`
	got := cleanImageMappings([]byte(smaps), exe)
	want := []mapping{{lo: 0x400000, n: 0x2000}, {lo: 0x402000, n: 0x1b86000 - 0x402000}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mapping %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
