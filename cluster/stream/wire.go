package stream

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairnd/cairn/cluster/structs"
)

// MethodSubscribe opens the subscription stream of a session.
const MethodSubscribe = "Stream.Subscribe"

// Topic names what a subscription follows.
type Topic uint8

// Topics.
const (
	// TopicServiceHealth follows one service's health (Key = service name):
	// the result of Health.ServiceNodes with the subscription's filters.
	TopicServiceHealth Topic = 1
	// TopicNode follows one node's catalog row (Key = node name).
	TopicNode Topic = 2
)

// String names the topic for metrics and logs.
func (t Topic) String() string {
	switch t {
	case TopicServiceHealth:
		return "service_health"
	case TopicNode:
		return "node"
	}
	return fmt.Sprintf("topic(%d)", uint8(t))
}

// Op is a client request's operation.
type Op uint8

// Client operations.
const (
	OpSubscribe   Op = 1
	OpUnsubscribe Op = 2
)

// Hello is the body that opens the stream.
type Hello struct {
	// Datacenter must be the server's own: subscriptions are local.
	Datacenter string
}

// Request is one client -> server frame.
type Request struct {
	Op Op
	// ID is chosen by the client, unique among its live subscriptions on
	// this stream; every Event names it.
	ID          uint64
	Topic       Topic
	Key         string
	Tag         string
	PassingOnly bool
	Datacenter  string
	// Index, when > 0, is the index of the last result the client holds
	// for this subscription (a resume): the server answers KindResumed if
	// nothing changed since.
	Index uint64
}

// Source is a subscription as its client holds it. Subscription returns
// the Request's Topic, Key, Tag and PassingOnly; the rest is the
// subscriber's (Op, ID, Datacenter, and Index, its resume point). A client
// re-sends every live subscription when its stream is replaced, and asks
// the source again then instead of keeping a copy per subscription: a
// client agent has one per cached name (forwarder.Subscriptions). It is
// called under the subscriber's lock, so it must neither block nor take
// a lock.
type Source interface {
	Subscription() Request
}

// Fixed is a Source that gives the same Request each time.
type Fixed Request

// Subscription implements Source.
func (f *Fixed) Subscription() Request { return Request(*f) }

// Kind says what an Event carries.
type Kind uint8

// Event kinds.
const (
	// KindSnapshot: the whole current result; replaces whatever the
	// client held for the subscription.
	KindSnapshot Kind = 1
	// KindUpdate: the whole result after a change, at a higher index.
	KindUpdate Kind = 2
	// KindResumed: the client's copy at Index is current; no result.
	KindResumed Kind = 3
	// KindError: the subscription is refused or ended; Error says why.
	KindError Kind = 4
)

// String names the kind for metrics.
func (k Kind) String() string {
	switch k {
	case KindSnapshot:
		return "snapshot"
	case KindUpdate:
		return "update"
	case KindResumed:
		return "resumed"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one server -> client frame.
type Event struct {
	ID    uint64
	Kind  Kind
	Index uint64
	// Health is the result of a TopicServiceHealth subscription.
	Health []structs.CheckServiceNode
	// Node is the result of a TopicNode subscription (nil: no such node).
	Node  *structs.Node
	Error string
}

// Limits on what a client may ask.
const (
	// MaxKeyLen bounds a Key or Tag: service and node names are DNS labels
	// in practice; 512 leaves room for long Consul names.
	MaxKeyLen = 512
	// DefaultMaxSubscriptions bounds the live subscriptions of one
	// session: the client cache's default max_entries (10,000).
	DefaultMaxSubscriptions = 10000
)

// Errors of Validate.
var (
	ErrBadOp    = errors.New("stream: unknown op")
	ErrBadTopic = errors.New("stream: unknown topic")
	ErrBadKey   = errors.New("stream: bad key")
)

// Validate checks a decoded request before the server acts on it; the
// error names the field.
func (r *Request) Validate() error {
	switch r.Op {
	case OpUnsubscribe:
		return nil
	case OpSubscribe:
	default:
		return fmt.Errorf("%w %d (field Op)", ErrBadOp, r.Op)
	}
	switch r.Topic {
	case TopicServiceHealth, TopicNode:
	default:
		return fmt.Errorf("%w %d (field Topic)", ErrBadTopic, r.Topic)
	}
	switch {
	case r.Key == "":
		return fmt.Errorf("%w: empty (field Key)", ErrBadKey)
	case len(r.Key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d (field Key)", ErrBadKey, len(r.Key), MaxKeyLen)
	case len(r.Tag) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d (field Tag)", ErrBadKey, len(r.Tag), MaxKeyLen)
	case len(r.Datacenter) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d (field Datacenter)", ErrBadKey, len(r.Datacenter), MaxKeyLen)
	case r.Topic == TopicNode && (r.Tag != "" || r.PassingOnly):
		return fmt.Errorf("%w: node subscriptions take no Tag or PassingOnly (field Tag)", ErrBadKey)
	}
	return nil
}

// appendEvent appends the msgpack encoding of Event{ID: id, Kind: kind,
// Index: idx} carrying body, the already-encoded result of topic, so one
// encoding of a result serves every subscriber. It decodes exactly as the
// struct encoding does (a map keyed by field name; wire_test.go checks
// them against each other and that Event has no other field).
func appendEvent(dst []byte, id uint64, kind Kind, idx uint64, topic Topic, body []byte) []byte {
	const msgpackNil = 0xc0
	dst = append(dst, 0x80|6) // fixmap, 6 entries
	dst = appendStr(dst, "ID")
	dst = appendUint(dst, id)
	dst = appendStr(dst, "Kind")
	dst = appendUint(dst, uint64(kind))
	dst = appendStr(dst, "Index")
	dst = appendUint(dst, idx)
	health, node := []byte{msgpackNil}, []byte{msgpackNil}
	if len(body) > 0 {
		if topic == TopicNode {
			node = body
		} else {
			health = body
		}
	}
	dst = appendStr(dst, "Health")
	dst = append(dst, health...)
	dst = appendStr(dst, "Node")
	dst = append(dst, node...)
	dst = appendStr(dst, "Error")
	return appendStr(dst, "")
}

// appendStr appends a msgpack fixstr (s is at most 31 bytes here).
func appendStr(dst []byte, s string) []byte {
	return append(append(dst, 0xa0|byte(len(s))), s...)
}

// appendUint appends a msgpack uint64.
func appendUint(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}
