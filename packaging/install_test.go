package packaging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnd/cairn/cluster/testutil"
)

const (
	// suite is the Debian release the install test boots.
	suite = "bookworm"
	// rootfsCache keeps the debootstrap tree between runs (minutes to build).
	rootfsCache = "/var/cache/cairn-test-rootfs"
	// image is the docker image imported from the cached tree.
	image = "cairn-test-rootfs:" + suite
	// bootTimeout bounds systemd reaching "running" in the container.
	bootTimeout = 60 * time.Second
	// dnsTimeout bounds the one-server cluster electing itself and
	// registering service "consul".
	dnsTimeout = 45 * time.Second
	// reloadTimeout bounds the agent applying a SIGHUP reload.
	reloadTimeout = 15 * time.Second
)

// oneServer is the config the test installs over the packaged client one:
// a lone bootstrapping server, DNS on 127.0.0.1:53 as packaged.
const oneServer = `{
  "server": true,
  "bootstrap_expect": 1,
  "node_name": "pkgtest",
  "datacenter": "dc1",
  "data_dir": "/var/lib/cairn",
  "bind_addr": "127.0.0.1",
  "client_addr": "127.0.0.1",
  "ports": {"dns": 53},
  "recursors": [],
  "retry_join": [],
  "log_level": "debug"
}
`

// dockerRunArgs boot systemd as PID 1. --privileged is refused on hosts
// whose docker daemon lacks CAP_SYS_RESOURCE ("unable to apply caps"), so
// grant every capability but that one and lift seccomp/AppArmor instead;
// a private cgroup namespace keeps the container's systemd off the host's
// cgroup tree.
var dockerRunArgs = []string{
	"run", "-d", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
	"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
	"--cgroupns=private", "--tmpfs", "/run", "--tmpfs", "/run/lock",
	"-e", "container=docker", "--stop-signal", "SIGRTMIN+3",
}

func TestInstallOnSystemdHost(t *testing.T) {
	needTools(t, "go", "docker", "debootstrap")
	if os.Geteuid() != 0 {
		t.Skip("install test needs root (debootstrap, docker)")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("docker daemon not reachable: %v", err)
	}
	_, deb, _ := buildPackages(t)
	ensureImage(t)

	name := fmt.Sprintf("cairn-install-test-%d", os.Getpid())
	run(t, "", "docker", append(dockerRunArgs, "--name", name, image, "/sbin/init")...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	c := container{t: t, name: name}
	c.waitBooted()

	run(t, "", "docker", "cp", deb, name+":/tmp/cairn.deb")
	c.must("dpkg -i /tmp/cairn.deb")
	c.must("getent passwd cairn && test -x /usr/bin/cairn && test -f /etc/cairn.d/cairn.json")
	c.must(`test "$(stat -c %U:%G:%a /var/lib/cairn)" = cairn:cairn:750`)
	c.must(`test "$(stat -c %U:%G:%a /etc/cairn.d/cairn.json)" = root:cairn:640`)
	c.must("! systemctl is-enabled cairn") // configure first, then enable

	// Overwrite the conffile in place (keeps its owner and mode).
	c.mustStdin(oneServer, "cat > /etc/cairn.d/cairn.json")
	if out, err := c.sh("systemctl start cairn"); err != nil {
		t.Fatalf("systemctl start cairn: %v\n%s\n%s", err, out, c.out("systemctl status cairn --no-pager; journalctl -u cairn --no-pager -n 50"))
	}
	c.mustUnit("Type=notify", "ActiveState=active", "SubState=running")
	pid := c.out("systemctl show -p MainPID --value cairn")

	err := testutil.Wait(context.Background(), dnsTimeout, func() error {
		ans := c.out("dig @127.0.0.1 -p 53 +short +time=2 +tries=1 consul.service.consul A")
		if !strings.Contains(ans, "127.0.0.1") {
			return fmt.Errorf("answer %q", ans)
		}
		t.Logf("dig consul.service.consul: %s", ans)
		return nil
	})
	if err != nil {
		t.Fatalf("dig @127.0.0.1 consul.service.consul: no answer after %v: %v\n%s", dnsTimeout, err,
			c.out("dig @127.0.0.1 -p 53 consul.service.consul; journalctl -u cairn --no-pager -n 50"))
	}

	// The agent logs each reload it applied: wait for one more such line
	// than before, then check it is still the same running process.
	reloaded := func() int {
		n, _ := strconv.Atoi(c.out("journalctl -u cairn --no-pager -o cat | grep -c 'configuration reloaded'"))
		return n
	}
	before := reloaded()
	c.must("systemctl reload cairn")
	if err := testutil.Wait(context.Background(), reloadTimeout, func() error {
		if n := reloaded(); n <= before {
			return fmt.Errorf("%d reloads logged, want > %d", n, before)
		}
		return nil
	}); err != nil {
		t.Fatalf("systemctl reload cairn: %v\n%s", err, c.out("journalctl -u cairn --no-pager -n 50"))
	}
	c.mustUnit("ActiveState=active", "SubState=running")
	if got := c.out("systemctl show -p MainPID --value cairn"); got != pid {
		t.Errorf("reload restarted the agent: MainPID %s → %s", pid, got)
	}

	c.must("systemctl stop cairn")
	c.mustUnit("ActiveState=inactive", "Result=success")

	c.must("dpkg -r cairn")
	c.must("! test -e /usr/bin/cairn && ! test -e /usr/lib/systemd/system/cairn.service")
	c.must("grep -q bootstrap_expect /etc/cairn.d/cairn.json") // local edits kept
	c.must("getent passwd cairn && test -d /var/lib/cairn")
	c.mustEqual("dpkg-query -W -f '${db:Status-Abbrev}' cairn", "rc")

	c.must("dpkg -P cairn")
	c.must("! test -e /etc/cairn.d && ! test -e /var/lib/cairn && ! getent passwd cairn && ! getent group cairn")
	c.must("! dpkg-query -W cairn 2>/dev/null")
}

// container runs shell commands in a booted test container.
type container struct {
	t    *testing.T
	name string
}

func (c container) sh(script string) (string, error) {
	out, err := exec.Command("docker", "exec", c.name, "sh", "-c", script).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c container) out(script string) string {
	out, _ := c.sh(script)
	return out
}

func (c container) must(script string) {
	c.t.Helper()
	if out, err := c.sh(script); err != nil {
		c.t.Fatalf("in container: %s: %v\n%s", script, err, out)
	}
}

func (c container) mustStdin(stdin, script string) {
	c.t.Helper()
	cmd := exec.Command("docker", "exec", "-i", c.name, "sh", "-c", script)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("in container: %s: %v\n%s", script, err, out)
	}
}

func (c container) mustEqual(script, want string) {
	c.t.Helper()
	if got, err := c.sh(script); err != nil || got != want {
		c.t.Fatalf("in container: %s = %q (%v), want %q", script, got, err, want)
	}
}

// mustUnit checks cairn.service's properties, each given as Name=value.
func (c container) mustUnit(props ...string) {
	c.t.Helper()
	for _, p := range props {
		name, _, _ := strings.Cut(p, "=")
		c.mustEqual("systemctl show -p "+name+" cairn", p)
	}
}

func (c container) waitBooted() {
	c.t.Helper()
	var state string
	err := testutil.Wait(context.Background(), bootTimeout, func() error {
		state, _ = c.sh("systemctl is-system-running")
		if state != "running" && state != "degraded" {
			return fmt.Errorf("state %q", state)
		}
		return nil
	})
	if err != nil {
		logs, _ := exec.Command("docker", "logs", c.name).CombinedOutput()
		c.t.Fatalf("systemd in container not up after %v: %v\n%s", bootTimeout, err, logs)
	}
	c.t.Logf("container systemd: %s", state)
}

// ensureImage imports the cached debootstrap tree as a docker image,
// building the tree first if needed. No registry is contacted: only the
// Debian mirror this host's apt already uses.
func ensureImage(t *testing.T) {
	t.Helper()
	if exec.Command("docker", "image", "inspect", image).Run() == nil {
		return
	}
	tree := filepath.Join(rootfsCache, suite)
	if _, err := os.Stat(filepath.Join(tree, "lib/systemd/systemd")); err != nil {
		mirror := aptMirror(t)
		tmp := tree + ".tmp"
		_ = os.RemoveAll(tmp)
		if err := os.MkdirAll(rootfsCache, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("debootstrap %s from %s into %s (cached for later runs)", suite, mirror, tree)
		run(t, "", "debootstrap", "--variant=minbase",
			"--include=systemd,systemd-sysv,dbus,dnsutils,adduser,procps,iproute2",
			suite, tmp, mirror)
		if err := os.Rename(tmp, tree); err != nil {
			t.Fatal(err)
		}
	}
	tar := exec.Command("tar", "-C", tree, "-c", ".")
	imp := exec.Command("docker", "import", "-c", `CMD ["/sbin/init"]`, "-", image)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	if err := tar.Wait(); err != nil {
		t.Fatalf("tar %s: %v", tree, err)
	}
}

// aptMirror returns the Debian archive URI configured for this suite in
// /etc/apt/sources.list or sources.list.d (one-line or deb822 format).
func aptMirror(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	for _, f := range append([]string{"/etc/apt/sources.list"}, files...) {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		var uris []string
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) >= 3 && fields[0] == "deb" && !strings.HasPrefix(fields[1], "["):
				if fields[2] == suite && strings.HasSuffix(strings.TrimSuffix(fields[1], "/"), "/debian") {
					fh.Close()
					return fields[1]
				}
			case len(fields) >= 2 && fields[0] == "URIs:":
				uris = fields[1:]
			case len(fields) >= 2 && fields[0] == "Suites:":
				for _, s := range fields[1:] {
					for _, u := range uris {
						if s == suite && strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
							fh.Close()
							return u
						}
					}
				}
			case len(fields) == 0:
				uris = nil
			}
		}
		fh.Close()
	}
	t.Skipf("no Debian %s mirror in /etc/apt/sources.list*: cannot debootstrap", suite)
	return ""
}
