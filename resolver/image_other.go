//go:build !linux

package resolver

// TrimImage is a no-op where the executable's mappings are not tuned.
func TrimImage() {}
