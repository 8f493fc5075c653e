package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the "deb" packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the "rpm" packager
)

// rpmArch maps Go/Debian architecture names to rpm's.
var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686"}

// Options is one mkpkg run.
type Options struct {
	Config  string   // nfpm.yaml
	Version string   // raw, e.g. git describe output
	Binary  string   // the cairn binary to ship
	Out     string   // output directory
	Formats []string // "deb", "rpm"
}

func main() {
	var o Options
	var formats string
	flag.StringVar(&o.Config, "config", "packaging/nfpm.yaml", "nfpm configuration")
	flag.StringVar(&o.Version, "version", "", "version (git describe output is fine; sanitised for dpkg/rpm)")
	flag.StringVar(&o.Binary, "binary", "bin/cairn", "cairn binary to package")
	flag.StringVar(&o.Out, "out", "dist", "output directory")
	flag.StringVar(&formats, "formats", "deb,rpm", "comma-separated package formats")
	flag.Parse()
	o.Formats = strings.Split(formats, ",")
	paths, err := Build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}

// FileName is the package's name in the output directory:
// cairn_<version>_amd64.deb or cairn-<version>.x86_64.rpm.
func FileName(format, name, version, arch string) (string, error) {
	switch format {
	case "deb":
		return fmt.Sprintf("%s_%s_%s.deb", name, version, arch), nil
	case "rpm":
		if a, ok := rpmArch[arch]; ok {
			arch = a
		}
		return fmt.Sprintf("%s-%s.%s.rpm", name, version, arch), nil
	}
	return "", fmt.Errorf("mkpkg: unsupported format %q (want deb or rpm)", format)
}

// Build writes one package per format and returns their paths.
func Build(o Options) ([]string, error) {
	if o.Version == "" {
		return nil, fmt.Errorf("mkpkg: --version is required")
	}
	version := PackageVersion(o.Version)
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return nil, fmt.Errorf("mkpkg: binary %s: not a file (run `make build`): %v", bin, err)
	}
	confDir, err := filepath.Abs(filepath.Dir(o.Config))
	if err != nil {
		return nil, err
	}
	gen, err := os.MkdirTemp("", "cairn-mkpkg-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(gen)

	vars := map[string]string{"CAIRN_VERSION": version, "CAIRN_BINARY": bin, "CAIRN_GENERATED": gen}
	// Only our variables expand: the build must not depend on the caller's
	// environment (signing passphrases included: packages are unsigned).
	cfg, err := nfpm.ParseFileWithEnvMapping(o.Config, func(k string) string { return vars[k] })
	if err != nil {
		return nil, fmt.Errorf("mkpkg: parse %s: %w", o.Config, err)
	}
	resolveSources(&cfg, confDir)
	if err := writeDocs(gen, bin, version, cfg.MTime); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("mkpkg: %w", err)
	}

	var out []string
	for _, format := range o.Formats {
		p, err := buildOne(&cfg, format, o.Out)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func buildOne(cfg *nfpm.Config, format, outDir string) (string, error) {
	info, err := cfg.Get(format)
	if err != nil {
		return "", fmt.Errorf("mkpkg: %s: %w", format, err)
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("mkpkg: %s: %w", format, err)
	}
	name, err := FileName(format, info.Name, info.Version, info.Arch)
	if err != nil {
		return "", err
	}
	packager, err := nfpm.Get(format)
	if err != nil {
		return "", fmt.Errorf("mkpkg: %w", err)
	}
	target := filepath.Join(outDir, name)
	tmp, err := os.CreateTemp(outDir, "."+name+".*")
	if err != nil {
		return "", fmt.Errorf("mkpkg: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	info.Target = target
	if err := packager.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("mkpkg: build %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("mkpkg: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("mkpkg: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", fmt.Errorf("mkpkg: %w", err)
	}
	return target, nil
}

// resolveSources makes relative content and script paths relative to the
// config file's directory instead of the process's working directory.
func resolveSources(cfg *nfpm.Config, dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	fix := func(o *nfpm.Overridables) {
		for _, c := range o.Contents {
			abs(&c.Source)
		}
		abs(&o.Scripts.PreInstall)
		abs(&o.Scripts.PostInstall)
		abs(&o.Scripts.PreRemove)
		abs(&o.Scripts.PostRemove)
		abs(&o.RPM.Scripts.PreTrans)
		abs(&o.RPM.Scripts.PostTrans)
	}
	fix(&cfg.Overridables)
	for _, o := range cfg.Overrides {
		if o != nil {
			fix(o)
		}
	}
}
