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

// TrimImage drops the page-table mappings of the agent binary's read-only
// segments (code and read-only data) and keeps them from being mapped by
// 2 MiB pages again; the pages fault back in, 4 KiB at a time (plus the
// kernel's fault-around), as they are used. It changes no data: read-only
// private file mappings re-read the same bytes from the page cache.
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
// they were.
func TrimImage() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(f[5]) != exe || f[1][1] == 'w' || f[1][3] != 'p' {
			continue
		}
		start, end, ok := bytes.Cut(f[0], []byte{'-'})
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(string(start), 16, 64)
		hi, err2 := strconv.ParseUint(string(end), 16, 64)
		if err1 != nil || err2 != nil || hi <= lo {
			continue
		}
		n := uintptr(hi - lo)
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(lo), n, madvNoHugePage); e != 0 {
			continue
		}
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(lo), n, syscall.MADV_DONTNEED)
	}
}
