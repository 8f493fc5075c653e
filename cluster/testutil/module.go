package testutil

import (
	"errors"
	"os"
	"path/filepath"
)

// ModuleRoot returns the directory holding go.mod at or above the working
// directory: where tests and harnesses run `go build ./cmd/cairn`.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
