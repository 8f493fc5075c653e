package http

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/cairnd/cairn/cluster/structs"
)

// invalidUTF8 returns a 400 naming the JSON field whose string holds the
// first invalid UTF-8 byte of body, or nil if body is valid UTF-8.
// encoding/json would otherwise replace such bytes with U+FFFD silently,
// storing a name the client never sent.
func invalidUTF8(body []byte) error {
	if utf8.Valid(body) {
		return nil
	}
	off := 0
	for off < len(body) {
		r, size := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	field := jsonFieldAt(body, off)
	if field == "" {
		field = "body"
	}
	return badRequest("Request decode failed: %s: not valid UTF-8 (byte %d)", field, off)
}

// jsonFrame is one open JSON container while walking tokens.
type jsonFrame struct {
	array   bool
	index   int    // array: index of the current element
	key     string // object: key of the current value
	wantKey bool   // object: the next string token is a key
}

// jsonFieldAt returns the path ("Service.Tags[1]") of the JSON value or key
// that contains byte offset off of body, or "" if it cannot tell.
func jsonFieldAt(body []byte, off int) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []jsonFrame
	path := func(last string) string {
		var b []byte
		for _, f := range stack {
			if f.array {
				b = append(b, '[')
				b = strconv.AppendInt(b, int64(f.index), 10)
				b = append(b, ']')
				continue
			}
			if f.wantKey {
				continue
			}
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, f.key...)
		}
		if last != "" {
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, last...)
		}
		return string(b)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		end := int(dec.InputOffset())
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && !stack[n-1].array {
				stack[n-1].wantKey = true
			}
			continue
		}
		var top *jsonFrame
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		if top != nil && !top.array && top.wantKey {
			key, _ := tok.(string)
			if end > off {
				return path(key + " key")
			}
			top.key, top.wantKey = key, false
			continue
		}
		if top != nil && top.array {
			top.index++
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' {
				stack = append(stack, jsonFrame{wantKey: true})
			} else {
				stack = append(stack, jsonFrame{array: true, index: -1})
			}
			continue
		}
		if end > off {
			return path("")
		}
		if top != nil && !top.array {
			top.wantKey = true
		}
	}
}

// validateWrite turns a request's validation failure into a 400 naming the
// field, before anything is sent to a server.
func validateWrite(req structs.Validator) error {
	if err := req.Validate(); err != nil {
		return badRequest("%v", err)
	}
	return nil
}
