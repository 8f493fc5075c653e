package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/cairnd/cairn/cluster/fsm"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// peersFileName is the manual-recovery file an operator puts in
// <data-dir>/raft/, Consul's name and place.
const peersFileName = "peers.json"

// maxPeersFile bounds peers.json: a few servers take a few hundred bytes.
const maxPeersFile = 1 << 20

// peerEntry is one server of peers.json, Consul's version 3 format.
type peerEntry struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter"`
}

// ParsePeersJSON reads Consul's peers.json (version 3: a list of
// {"id", "address", "non_voter"}) into a Raft configuration. It refuses
// the old list-of-addresses format, unknown keys, empty or duplicate IDs
// and addresses, and a configuration without a voter.
func ParsePeersJSON(b []byte) (raft.Configuration, error) {
	if len(b) > maxPeersFile {
		return raft.Configuration{}, fmt.Errorf("peers.json is larger than %d bytes", maxPeersFile)
	}
	var old []string
	if json.Unmarshal(b, &old) == nil && len(old) > 0 {
		return raft.Configuration{}, errors.New("peers.json: this is the old list-of-addresses format; use version 3: [{\"id\": \"<node name>\", \"address\": \"<ip>:<server port>\", \"non_voter\": false}]")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var entries []peerEntry
	if err := dec.Decode(&entries); err != nil {
		return raft.Configuration{}, fmt.Errorf("peers.json: %w", err)
	}
	if dec.More() {
		return raft.Configuration{}, errors.New("peers.json: unexpected data after the list")
	}
	var (
		conf   raft.Configuration
		ids    = map[string]bool{}
		addrs  = map[string]bool{}
		voters int
	)
	for i, e := range entries {
		if e.ID == "" {
			return raft.Configuration{}, fmt.Errorf("peers.json: entry %d has no id", i)
		}
		if _, _, err := net.SplitHostPort(e.Address); err != nil {
			return raft.Configuration{}, fmt.Errorf("peers.json: entry %d (%s): address %q: %w", i, e.ID, e.Address, err)
		}
		if ids[e.ID] || addrs[e.Address] {
			return raft.Configuration{}, fmt.Errorf("peers.json: entry %d: duplicate id %q or address %q", i, e.ID, e.Address)
		}
		ids[e.ID], addrs[e.Address] = true, true
		suffrage := raft.Voter
		if e.NonVoter {
			suffrage = raft.Nonvoter
		} else {
			voters++
		}
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(e.ID), Address: raft.ServerAddress(e.Address), Suffrage: suffrage})
	}
	if voters == 0 {
		return raft.Configuration{}, errors.New("peers.json: no voter listed")
	}
	return conf, nil
}

// recoverFromPeersFile performs Consul's manual outage recovery: when
// <raftDir>/peers.json exists, the Raft configuration is forced to the
// one it lists (raft.RecoverCluster) before Raft starts, and the file is
// deleted so the recovery happens once. A bad file stops the server with
// the reason; it is never half applied.
func (s *Server) recoverFromPeersFile(raftDir string, rc *raft.Config, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport) error {
	path := filepath.Join(raftDir, peersFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("server: read %s: %w", path, err)
	}
	conf, err := ParsePeersJSON(b)
	if err != nil {
		return fmt.Errorf("server: %s: %w", path, err)
	}
	s.log.Warn("found peers.json: recovering the Raft configuration from it (manual outage recovery)",
		zap.String("file", path), zap.Int("servers", len(conf.Servers)))
	for _, srv := range conf.Servers {
		s.log.Warn("peers.json server", zap.String("id", string(srv.ID)), zap.String("address", string(srv.Address)), zap.Bool("voter", srv.Suffrage == raft.Voter))
	}
	// RecoverCluster replays the log into a scratch FSM to build a
	// snapshot; the real FSM starts empty and loads that snapshot.
	if err := raft.RecoverCluster(rc, fsm.New(s.log.Named("recovery-fsm")), logs, stable, snaps, trans, conf); err != nil {
		return fmt.Errorf("server: recover from %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("server: recovered, but could not delete %s (delete it before the next start): %w", path, err)
	}
	s.log.Warn("Raft configuration recovered from peers.json; the file was deleted")
	return nil
}
