package rpc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// An echo stream: the handler refuses an opening body with Msg "no",
// otherwise sends back every frame it receives, N times.
func handleEchoStream(srv *Server) {
	srv.HandleStream("Test.Stream", func(ctx context.Context, dec Decoder, open func() (*Stream, error)) error {
		var hello echoArgs
		if err := dec.Decode(&hello); err != nil {
			return err
		}
		if hello.Msg == "no" {
			return errors.New("refused: field Msg")
		}
		st, err := open()
		if err != nil {
			return err
		}
		for {
			var a echoArgs
			if err := st.Recv(&a); err != nil {
				return err
			}
			for range max(a.N, 1) {
				if err := st.Send(&a); err != nil {
					return err
				}
			}
		}
	})
}

func TestStreamRoundTripsRefusalAndClose(t *testing.T) {
	ts := startServer(t, Limits{})
	handleEchoStream(ts.srv)
	s := dial(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if _, err := s.OpenStream(ctx, "Test.Stream", &echoArgs{Msg: "no"}); err == nil || !strings.Contains(err.Error(), "field Msg") {
		t.Fatalf("refused open: %v", err)
	}
	if _, err := s.OpenStream(ctx, "Test.Nope", &echoArgs{}); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Fatalf("unknown method: %v", err)
	}
	st, err := s.OpenStream(ctx, "Test.Stream", &echoArgs{})
	if err != nil {
		t.Fatal(err)
	}
	// Sends and receives interleave on one stream, in order.
	go func() {
		for i := range 100 {
			if err := st.Send(&echoArgs{Msg: "m", N: i % 3}); err != nil {
				return
			}
		}
	}()
	want := 0
	for i := range 100 {
		want += max(i%3, 1)
	}
	for got := 0; got < want; got++ {
		var a echoArgs
		if err := st.Recv(&a); err != nil {
			t.Fatalf("recv %d: %v", got, err)
		}
	}
	// Plain calls share the session meanwhile.
	var out echoArgs
	if err := s.Call(ctx, "Test.Echo", &echoArgs{Msg: "hi"}, &out); err != nil || out.Msg != "hi" {
		t.Fatalf("call beside a stream: %v %+v", err, out)
	}
	// Close wakes a blocked Recv.
	errc := make(chan error, 1)
	go func() {
		var a echoArgs
		errc <- st.Recv(&a)
	}()
	st.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Recv after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Recv")
	}
	st.Close() // twice is harmless
	if err := st.Send(&echoArgs{}); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

// The server's session dying ends the stream on both sides.
func TestStreamEndsWithSession(t *testing.T) {
	ts := startServer(t, Limits{})
	handleEchoStream(ts.srv)
	s := dial(t, ts.addr)
	st, err := s.OpenStream(context.Background(), "Test.Stream", &echoArgs{})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.Close()
	var a echoArgs
	var te *TransportError
	if err := st.Recv(&a); !errors.As(err, &te) {
		t.Fatalf("Recv after server close: %v", err)
	}
}
