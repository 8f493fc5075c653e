package resolver

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// madvNoHugePage is MADV_NOHUGEPAGE (not in package syscall).
const madvNoHugePage = 15

// TrimImage drops the page-table mappings of the agent binary's clean
// read-only segments (code and read-only data) and keeps them from being
// mapped by 2 MiB pages again; the pages fault back in, 4 KiB at a time
// (plus the kernel's fault-around), as they are used. It changes no data:
// only mappings with no private copy of any page are trimmed (smaps
// Anonymous: 0), whose pages re-read the same bytes from the page cache. A
// read-only mapping that was written before being made read-only (RELRO:
// a dynamically linked binary's relocated GOT) holds private pages and is
// left alone: dropping them would bring back the unrelocated file bytes.
//
// Why: on kernels with large page-cache folios (6.x on ext4/xfs), a whole
// 2 MiB folio of the executable is mapped (and counted in RSS) as soon as
// one byte of it is touched, so a client agent that uses a fraction of
// the server-heavy binary showed almost all of its 25 MB of text and
// rodata as resident. Measured on a client agent joined to a dev server
// after 100 DNS queries (kernel 6.18, ext4): VmRSS 25.0 MB (file 19.4)
// before, 18.0 MB (file 12.6) after; what stays is the working set, each
// page's fault bringing its 64 KiB fault-around neighbours. Writable
// segments are left alone. Best effort: any failure leaves the mappings as
// they were. A client agent calls it once it is up, and again when a
// burst of cache fills has ended (cache/memory.go), so the code that only
// start-up and fills run stops counting as resident.
func TrimImage() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	for _, m := range cleanImageMappings(smaps, exe) {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.lo, m.n, madvNoHugePage); e != 0 {
			continue
		}
		syscall.Syscall(syscall.SYS_MADVISE, m.lo, m.n, syscall.MADV_DONTNEED)
	}
}

type mapping struct{ lo, n uintptr }

// cleanImageMappings lists exe's private read-only mappings that hold no
// private (anonymous) page, from the text of /proc/self/smaps.
func cleanImageMappings(smaps []byte, exe string) []mapping {
	var out []mapping
	var cur *mapping // the exe's read-only private mapping being read, if any
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if start, end, ok := bytes.Cut(f[0], []byte{'-'}); ok && len(f) >= 5 && !bytes.HasSuffix(f[0], []byte{':'}) {
			// A mapping's header: start-end perms offset dev inode [path].
			cur = nil
			if len(f) < 6 || string(f[5]) != exe || len(f[1]) < 4 || f[1][1] == 'w' || f[1][3] != 'p' {
				continue
			}
			lo, err1 := strconv.ParseUint(string(start), 16, 64)
			hi, err2 := strconv.ParseUint(string(end), 16, 64)
			if err1 != nil || err2 != nil || hi <= lo {
				continue
			}
			cur = &mapping{lo: uintptr(lo), n: uintptr(hi - lo)}
			continue
		}
		if cur != nil && string(f[0]) == "Anonymous:" && len(f) >= 2 {
			if string(f[1]) == "0" {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	return out
}
