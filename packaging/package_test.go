package packaging

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.files from the built packages")

const (
	// testVersion exercises the version sanitiser: a dirty build 4 commits
	// after tag v1.2.3.
	testVersion = "v1.2.3-4-gabcdef0-dirty"
	pkgVersion  = "1.2.3+4.gabcdef0.dirty"

	// maxExposure is the bar for `systemd-analyze security`.
	maxExposure = 2.0
)

// repoRoot is the module root; go test runs in the package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("packaging tests build packages: skipped with -short")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install rpm dpkg systemd): %v", tool, err)
		}
	}
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// binaryEnv names a prebuilt cairn binary to package instead of building
// ./cmd/cairn (e.g. CAIRN_PKG_BINARY=$PWD/bin/cairn after `make build`).
const binaryEnv = "CAIRN_PKG_BINARY"

// cairnBinary returns $CAIRN_PKG_BINARY or a fresh static build of ./cmd/cairn.
func cairnBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(binaryEnv); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	bin := filepath.Join(t.TempDir(), "cairn")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/cairn")
	cmd.Dir, cmd.Env = repoRoot(t), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cairn: %v\n%s", err, out)
	}
	return bin
}

// buildPackages runs packaging/cmd/mkpkg on the cairn binary, as
// `make package` does, into a temporary directory. It returns the paths of
// the binary, the .deb and the .rpm.
func buildPackages(t *testing.T) (bin, deb, rpm string) {
	t.Helper()
	root, dir := repoRoot(t), t.TempDir()
	bin = cairnBinary(t)
	mkpkg := filepath.Join(dir, "mkpkg")
	run(t, root, "go", "build", "-o", mkpkg, "./packaging/cmd/mkpkg")
	out := filepath.Join(dir, "dist")
	run(t, root, mkpkg, "--version", testVersion, "--binary", bin, "--out", out,
		"--config", filepath.Join(root, "packaging", "nfpm.yaml"))
	deb = filepath.Join(out, "cairn_"+pkgVersion+"_amd64.deb")
	rpm = filepath.Join(out, "cairn-"+pkgVersion+".x86_64.rpm")
	for _, p := range []string{deb, rpm} {
		if _, err := os.Stat(p); err != nil {
			entries, _ := os.ReadDir(out)
			t.Fatalf("expected %s: %v (dist holds %v)", filepath.Base(p), err, entries)
		}
	}
	return bin, deb, rpm
}

// debFiles lists "mode owner/group path" from `dpkg-deb -c`.
func debFiles(t *testing.T, deb string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "", "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l) // perms owner/group size date time path
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if path == "" {
			continue
		}
		lines = append(lines, f[0]+" "+f[1]+" "+path)
	}
	return strings.Join(lines, "\n") + "\n"
}

// rpmFiles lists "mode owner/group path" from `rpm -qp`.
func rpmFiles(t *testing.T, rpm string) string {
	return run(t, "", "rpm", "-qp", "--qf", `[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILENAMES}\n]`, rpm)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the built package (run with -update if intended)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestPackages(t *testing.T) {
	needTools(t, "go", "dpkg-deb", "rpm")
	_, deb, rpm := buildPackages(t)

	t.Run("deb/files", func(t *testing.T) {
		got := debFiles(t, deb)
		t.Logf("dpkg-deb -c %s:\n%s", filepath.Base(deb), got)
		golden(t, "deb.files", got)
	})
	t.Run("rpm/files", func(t *testing.T) {
		got := rpmFiles(t, rpm)
		t.Logf("rpm -qpl %s:\n%s", filepath.Base(rpm), got)
		golden(t, "rpm.files", got)
		if l := run(t, "", "rpm", "-qpl", rpm); !strings.Contains(l, "/usr/bin/cairn\n") {
			t.Errorf("rpm -qpl lacks /usr/bin/cairn:\n%s", l)
		}
	})
	t.Run("deb/control", func(t *testing.T) {
		info := run(t, "", "dpkg-deb", "-I", deb)
		for _, want := range []string{"Package: cairn", "Version: " + pkgVersion + "-1", "Architecture: amd64", " conffiles", " postinst", " prerm", " postrm"} {
			if !strings.Contains(info, want) {
				t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
			}
		}
		ctl := t.TempDir()
		run(t, "", "dpkg-deb", "-e", deb, ctl)
		conf, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
		if err != nil || string(conf) != "/etc/cairn.d/cairn.json\n" {
			t.Errorf("conffiles = %q (%v), want /etc/cairn.d/cairn.json", conf, err)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			got, err := os.ReadFile(filepath.Join(ctl, s))
			want, _ := os.ReadFile(filepath.Join("scripts", "deb", s))
			if err != nil || string(got) != string(want) {
				t.Errorf("control %s differs from scripts/deb/%s (%v)", s, s, err)
			}
			if st, err := os.Stat(filepath.Join(ctl, s)); err != nil || st.Mode().Perm()&0o111 == 0 {
				t.Errorf("control %s not executable: %v", s, err)
			}
		}
		if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
			t.Errorf("unexpected preinst in the .deb")
		}
	})
	t.Run("rpm/scripts", func(t *testing.T) {
		if c := run(t, "", "rpm", "-qpc", rpm); c != "/etc/cairn.d/cairn.json\n" {
			t.Errorf("rpm config files = %q", c)
		}
		// %config(noreplace): flag bit 16 (RPMFILE_NOREPLACE) on the conffile.
		flags := run(t, "", "rpm", "-qp", "--qf", `[%{FILEFLAGS:fflags} %{FILENAMES}\n]`, rpm)
		if !strings.Contains(flags, "cn /etc/cairn.d/cairn.json") {
			t.Errorf("cairn.json is not %%config(noreplace):\n%s", flags)
		}
		scripts := run(t, "", "rpm", "-qp", "--scripts", rpm)
		for section, file := range map[string]string{
			"preinstall scriptlet": "pre", "postinstall scriptlet": "post",
			"preuninstall scriptlet": "preun", "postuninstall scriptlet": "postun",
		} {
			body, _ := os.ReadFile(filepath.Join("scripts", "rpm", file))
			if !strings.Contains(scripts, section) || !strings.Contains(scripts, strings.TrimSpace(string(body))) {
				t.Errorf("rpm %s does not carry scripts/rpm/%s", section, file)
			}
		}
	})
	t.Run("resolv.conf untouched", func(t *testing.T) {
		for _, s := range []string{"deb/postinst", "deb/prerm", "deb/postrm", "rpm/pre", "rpm/post", "rpm/preun", "rpm/postun"} {
			body, _ := os.ReadFile(filepath.Join("scripts", s))
			if strings.Contains(string(body), "resolv.conf") {
				t.Errorf("scripts/%s mentions resolv.conf: the package must never rewrite it", s)
			}
		}
	})
}

// unitForVerify copies systemd/cairn.service into a temp dir with ExecStart
// pointing at bin, since verify checks that the executable exists.
func unitForVerify(t *testing.T, bin string) string {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "systemd", "cairn.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/cairn ") {
		t.Fatal("systemd/cairn.service: ExecStart no longer runs /usr/bin/cairn")
	}
	path := filepath.Join(t.TempDir(), "cairn.service")
	text := strings.Replace(string(unit), "ExecStart=/usr/bin/cairn ", "ExecStart="+bin+" ", 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func TestUnit(t *testing.T) {
	needTools(t, "go", "systemd-analyze")
	unit := unitForVerify(t, cairnBinary(t))

	out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	t.Logf("systemd-analyze verify cairn.service: err=%v output=%q", err, out)
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify not clean: %v\n%s", err, out)
	}

	out, err = exec.Command("systemd-analyze", "security", "--offline=true", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure figure in:\n%s", out)
	}
	exposure, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline=true: exposure %.1f (max %.1f)", exposure, maxExposure)
	var open []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "✗") {
			open = append(open, strings.Join(strings.Fields(l), " "))
		}
	}
	t.Logf("settings still counted against it:\n%s", strings.Join(open, "\n"))
	if exposure > maxExposure {
		t.Errorf("exposure %.1f > %.1f", exposure, maxExposure)
	}
}
