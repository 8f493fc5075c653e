package rpc

import (
	"bytes"
	"testing"
)

// FuzzReadRequest feeds arbitrary bytes to the server's request decoder:
// it must never panic, never return a frame over the limit, and a request
// it accepts must carry a method.
func FuzzReadRequest(f *testing.F) {
	f.Add(validRequest(f, "Test.Echo", &echoArgs{Msg: "hi", N: 1}))
	f.Add([]byte{0, 0, 0, 100, 1, 2, 3})
	f.Add([]byte{0x05, 0xf5, 0xe1, 0x00})
	f.Add([]byte{})
	const limit = 1 << 16
	pool := newCodecPool()
	f.Fuzz(func(t *testing.T, data []byte) {
		st := pool.get(bytes.NewReader(data), nil)
		defer pool.put(st)
		hdr, err := st.readRequest(limit)
		if err != nil {
			return
		}
		if hdr.Method == "" {
			t.Fatal("accepted a request without method")
		}
		if len(st.hdr) > limit || len(st.body) > limit {
			t.Fatalf("frame over limit: %d/%d", len(st.hdr), len(st.body))
		}
		var v any
		_ = st.Decode(&v)
	})
}

// validRequest encodes a request the way Session.Call does.
func validRequest(tb testing.TB, method string, args any) []byte {
	tb.Helper()
	var buf bytes.Buffer
	pool := newCodecPool()
	st := pool.get(nil, &buf)
	if err := st.writeFrame(&requestHeader{Method: method}, DefaultMaxFrameSize); err != nil {
		tb.Fatal(err)
	}
	if err := st.writeFrame(args, DefaultMaxFrameSize); err != nil {
		tb.Fatal(err)
	}
	if err := st.bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
