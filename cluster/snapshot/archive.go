package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Member names inside the archive (Consul's).
const (
	metaName  = "meta.json"
	stateName = "state.bin"
	sumsName  = "SHA256SUMS"
)

const (
	// MaxStateSize bounds the FSM stream an archive may hold. It is far
	// above what one RPC frame carries, so it only guards against
	// decompression bombs, never against a real snapshot.
	MaxStateSize = 1 << 30
	// maxMetaSize bounds meta.json and SHA256SUMS: a raft configuration of
	// a few servers is a few hundred bytes.
	maxMetaSize = 1 << 20
)

// ErrCorrupt marks an archive that is not a complete, intact snapshot.
var ErrCorrupt = errors.New("snapshot archive is corrupt or truncated")

// Archive is a verified snapshot: its Raft metadata and the FSM stream.
type Archive struct {
	Meta  raft.SnapshotMeta
	State []byte
}

// Write writes an archive of meta and the FSM stream state to w.
func Write(w io.Writer, meta *raft.SnapshotMeta, state []byte) error {
	m := *meta
	m.Size = int64(len(state))
	mb, err := json.Marshal(&m)
	if err != nil {
		return fmt.Errorf("snapshot: encode meta: %w", err)
	}
	ms, ss := sha256.Sum256(mb), sha256.Sum256(state)
	sums := fmt.Sprintf("%x  %s\n%x  %s\n", ms, metaName, ss, stateName)

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	now := time.Now()
	for _, f := range []struct {
		name string
		data []byte
	}{{metaName, mb}, {stateName, state}, {sumsName, []byte(sums)}} {
		hdr := &tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("snapshot: write %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("snapshot: write %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("snapshot: close tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("snapshot: close gzip: %w", err)
	}
	return nil
}

// Encode returns the archive bytes of meta and state.
func Encode(meta *raft.SnapshotMeta, state []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := Write(&buf, meta, state); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Read reads and verifies a whole archive from r; see the package doc for
// what "verified" means.
func Read(r io.Reader) (*Archive, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, corrupt("not a gzip stream: %v", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	members := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, corrupt("read tar: %v", err)
		}
		limit := int64(maxMetaSize)
		switch hdr.Name {
		case metaName, sumsName:
		case stateName:
			limit = MaxStateSize
		default:
			return nil, corrupt("unexpected member %q", hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, corrupt("member %q is not a regular file", hdr.Name)
		}
		if _, dup := members[hdr.Name]; dup {
			return nil, corrupt("member %q appears twice", hdr.Name)
		}
		if hdr.Size < 0 || hdr.Size > limit {
			return nil, corrupt("member %q has size %d, limit %d", hdr.Name, hdr.Size, limit)
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, corrupt("read %s: %v", hdr.Name, err)
		}
		members[hdr.Name] = data
	}
	// Drain to the gzip trailer so its CRC and length are checked too.
	if n, err := io.Copy(io.Discard, io.LimitReader(gz, maxMetaSize)); err != nil {
		return nil, corrupt("read gzip trailer: %v", err)
	} else if n >= maxMetaSize {
		return nil, corrupt("too much data after the tar end")
	}
	for _, name := range []string{metaName, stateName, sumsName} {
		if _, ok := members[name]; !ok {
			return nil, corrupt("member %q is missing", name)
		}
	}
	if err := verifySums(members); err != nil {
		return nil, err
	}
	a := &Archive{State: members[stateName]}
	if err := json.Unmarshal(members[metaName], &a.Meta); err != nil {
		return nil, corrupt("decode %s: %v", metaName, err)
	}
	if a.Meta.Size != int64(len(a.State)) {
		return nil, corrupt("meta says %d state bytes, archive has %d", a.Meta.Size, len(a.State))
	}
	if a.Meta.Index == 0 || a.Meta.Term == 0 {
		return nil, corrupt("meta has index %d term %d", a.Meta.Index, a.Meta.Term)
	}
	return a, nil
}

// Decode reads an archive held in memory.
func Decode(b []byte) (*Archive, error) { return Read(bytes.NewReader(b)) }

func verifySums(members map[string][]byte) error {
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(members[sumsName]), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 2*sha256.Size {
			return corrupt("bad %s line %q", sumsName, line)
		}
		if _, dup := want[name]; dup {
			return corrupt("%s names %q twice", sumsName, name)
		}
		want[name] = sum
	}
	for _, name := range []string{metaName, stateName} {
		sum, ok := want[name]
		if !ok {
			return corrupt("%s has no sum for %s", sumsName, name)
		}
		got := sha256.Sum256(members[name])
		if sum != hex.EncodeToString(got[:]) {
			return corrupt("SHA-256 mismatch for %s", name)
		}
	}
	if len(want) != 2 {
		return corrupt("%s has %d entries, want 2", sumsName, len(want))
	}
	return nil
}

// SaveFile writes data to path atomically: temp file in the same
// directory, fsync, rename, fsync of the directory.
func SaveFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("snapshot: create temp file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("snapshot: fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("snapshot: close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("snapshot: rename to %s: %w", path, err)
	}
	d, derr := os.Open(dir)
	if derr != nil {
		return fmt.Errorf("snapshot: open dir %s: %w", dir, derr)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("snapshot: fsync dir %s: %w", dir, err)
	}
	return nil
}
