package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// DecodeError is a decoding failure at one key path, such as
// "dns_config.only_pasing: unknown key". Path uses the keys as the input
// spelled them, with [i] for array elements; it is empty for the top level.
type DecodeError struct {
	Path   string
	Reason string
	// Suggest is, for an unknown key, the known key of the same object
	// closest to it when one is close enough to be a likely misspelling.
	// Error leaves it out (API bodies answer as Consul does); config file
	// errors add "did you mean".
	Suggest string
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// DecodeStrict decodes the JSON document data into v, which must be a
// non-nil pointer. Unlike encoding/json it:
//
//   - matches object keys to struct fields case-insensitively and ignoring
//     underscores, so "deregister_critical_service_after",
//     "DeregisterCriticalServiceAfter" and "deregistercriticalserviceafter"
//     name the same field; a field answers to its Go name, its json tag name
//     and any names in its `alias:"a,b"` tag;
//   - rejects unknown keys and mistyped values with the full key path;
//   - rejects trailing data after the document.
//
// Like encoding/json, decoding into a non-nil map adds keys, a slice is
// replaced, a struct is updated field by field and null zeroes pointers, maps,
// slices and interfaces and leaves other values alone. On error v may be
// partly written: decode into a scratch value when that matters.
func DecodeStrict(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: DecodeStrict needs a non-nil pointer, got %T", v)
	}
	doc, err := parseJSON(data)
	if err != nil {
		return err
	}
	return decodeValue(rv.Elem(), doc, "")
}

// parseJSON decodes data into generic values (numbers as json.Number),
// refusing trailing data.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, syntaxError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &DecodeError{Reason: "invalid JSON: unexpected data after the top-level value"}
	}
	return doc, nil
}

// syntaxError turns encoding/json's offset into a line and column.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return &DecodeError{Reason: fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, err)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &DecodeError{Reason: "invalid JSON: unexpected end of input"}
	}
	return &DecodeError{Reason: "invalid JSON: " + err.Error()}
}

func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
	durationType        = reflect.TypeFor[Duration]()
)

// jsonKind names the JSON type of a decoded value for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func mismatch(path, want string, got any) error {
	return &DecodeError{Path: path, Reason: fmt.Sprintf("want %s, got %s", want, jsonKind(got))}
}

// decodeValue stores the generic JSON value src into the settable dst.
func decodeValue(dst reflect.Value, src any, path string) error {
	if src == nil {
		switch dst.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			dst.SetZero()
		}
		return nil
	}
	if dst.Type() == rawMessageType {
		b, err := json.Marshal(src)
		if err != nil {
			return &DecodeError{Path: path, Reason: err.Error()}
		}
		dst.SetBytes(b)
		return nil
	}
	if dst.Kind() != reflect.Pointer && reflect.PointerTo(dst.Type()).Implements(textUnmarshalerType) {
		s, ok := src.(string)
		if !ok {
			want := "string"
			if dst.Type() == durationType {
				want = `duration string such as "10s"`
			}
			return mismatch(path, want, src)
		}
		if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return &DecodeError{Path: path, Reason: err.Error()}
		}
		return nil
	}

	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return decodeValue(dst.Elem(), src, path)
	case reflect.Interface:
		if dst.NumMethod() != 0 {
			return &DecodeError{Path: path, Reason: fmt.Sprintf("cannot decode into %s", dst.Type())}
		}
		dst.Set(reflect.ValueOf(plain(src)))
		return nil
	case reflect.Struct:
		obj, ok := src.(map[string]any)
		if !ok {
			return mismatch(path, "object", src)
		}
		return decodeStruct(dst, obj, path)
	case reflect.Map:
		return decodeMap(dst, src, path)
	case reflect.Slice:
		arr, ok := src.([]any)
		if !ok {
			return mismatch(path, "array", src)
		}
		out := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, el := range arr {
			if err := decodeValue(out.Index(i), el, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			return mismatch(path, "string", src)
		}
		dst.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			return mismatch(path, "boolean", src)
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := src.(json.Number)
		if !ok {
			return mismatch(path, "number", src)
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || dst.OverflowInt(i) {
			return &DecodeError{Path: path, Reason: fmt.Sprintf("want integer that fits %s, got %s", dst.Type(), n)}
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := src.(json.Number)
		if !ok {
			return mismatch(path, "number", src)
		}
		u, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil || dst.OverflowUint(u) {
			return &DecodeError{Path: path, Reason: fmt.Sprintf("want non-negative integer that fits %s, got %s", dst.Type(), n)}
		}
		dst.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := src.(json.Number)
		if !ok {
			return mismatch(path, "number", src)
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || dst.OverflowFloat(f) || math.IsInf(f, 0) {
			return &DecodeError{Path: path, Reason: fmt.Sprintf("number %s out of range", n)}
		}
		dst.SetFloat(f)
		return nil
	}
	return &DecodeError{Path: path, Reason: fmt.Sprintf("cannot decode into %s", dst.Type())}
}

func decodeMap(dst reflect.Value, src any, path string) error {
	obj, ok := src.(map[string]any)
	if !ok {
		return mismatch(path, "object", src)
	}
	t := dst.Type()
	if t.Key().Kind() != reflect.String {
		return &DecodeError{Path: path, Reason: fmt.Sprintf("cannot decode into %s", t)}
	}
	if dst.IsNil() {
		dst.Set(reflect.MakeMapWithSize(t, len(obj)))
	}
	for _, k := range sortedKeys(obj) {
		// A fresh element per key: map elements are not addressable.
		el := reflect.New(t.Elem()).Elem()
		if err := decodeValue(el, obj[k], joinPath(path, k)); err != nil {
			return err
		}
		dst.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), el)
	}
	return nil
}

func decodeStruct(dst reflect.Value, obj map[string]any, path string) error {
	fields, err := fieldsOf(dst.Type())
	if err != nil {
		return &DecodeError{Path: path, Reason: err.Error()}
	}
	seen := make(map[string]string, len(obj))
	for _, k := range sortedKeys(obj) {
		p := joinPath(path, k)
		norm := normalizeKey(k)
		idx, ok := fields[norm]
		if !ok {
			return &DecodeError{Path: p, Reason: "unknown key", Suggest: closestKey(dst.Type(), k)}
		}
		if prev, dup := seen[norm]; dup {
			return &DecodeError{Path: p, Reason: fmt.Sprintf("duplicate of key %q", prev)}
		}
		seen[norm] = k
		f, err := dst.FieldByIndexErr(idx)
		if err != nil {
			return &DecodeError{Path: p, Reason: err.Error()}
		}
		if err := decodeValue(f, obj[k], p); err != nil {
			return err
		}
	}
	return nil
}

// fieldsOf maps every accepted normalised key of struct type t to its field
// index. Promoted fields of embedded structs are included. It is computed per
// call: config documents are small and the package keeps no mutable globals.
func fieldsOf(t reflect.Type) (map[string][]int, error) {
	out := make(map[string][]int)
	depth := make(map[string]int)
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		names := []string{f.Name}
		if n, _, _ := strings.Cut(tag, ","); n != "" {
			names = append(names, n)
		}
		if a := f.Tag.Get("alias"); a != "" {
			names = append(names, strings.Split(a, ",")...)
		}
		for _, n := range names {
			k := normalizeKey(n)
			if d, ok := depth[k]; ok {
				if d == len(f.Index) && !equalIndex(out[k], f.Index) {
					return nil, fmt.Errorf("%s: fields collide on key %q", t, n)
				}
				if d <= len(f.Index) {
					continue
				}
			}
			out[k], depth[k] = f.Index, len(f.Index)
		}
	}
	return out, nil
}

func equalIndex(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// normalizeKey folds case and drops underscores: Consul's snake_case file
// keys and its CamelCase API keys then meet on one spelling.
func normalizeKey(k string) string {
	return strings.ToLower(strings.ReplaceAll(k, "_", ""))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// plain converts json.Number leaves to float64 so interface{} fields hold
// what encoding/json would have put there.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	case []any:
		for i := range x {
			x[i] = plain(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = plain(x[k])
		}
	}
	return v
}
