package structs

import (
	"errors"
	"testing"
)

// Errors cross RPC as text; ErrorFromString must give back the sentinel,
// with its details when the server added some.
func TestErrorFromString(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want error // nil: not a sentinel
	}{
		{ErrWriteOutcomeUnknown.Error(), ErrWriteOutcomeUnknown},
		{ErrWriteOutcomeUnknown.Error() + ": KVS.Apply forwarded to leader 10.0.0.1:8300: leader changed", ErrWriteOutcomeUnknown},
		{ErrNotLeader.Error(), ErrNotLeader},
		{ErrNotLeader.Error() + ": consistent read: leadership not verified", ErrNotLeader},
		{ErrNoLeader.Error(), ErrNoLeader},
		{ErrACLBootstrapDone.Error() + " (reset index: 7)", ErrACLBootstrapDone},
		{ErrACLBootstrapDone.Error() + "(no space)", nil},
		{"not leaderish", nil},
		{"some handler error", nil},
		{"", nil},
	} {
		got := ErrorFromString(tc.msg)
		switch {
		case tc.want == nil && got != nil:
			t.Errorf("%q: got %v, want no sentinel", tc.msg, got)
		case tc.want != nil && !errors.Is(got, tc.want):
			t.Errorf("%q: got %v, want %v", tc.msg, got, tc.want)
		case got != nil && got.Error() != tc.msg:
			t.Errorf("%q: text became %q", tc.msg, got.Error())
		}
	}
}
