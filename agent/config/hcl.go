package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/hashicorp/hcl/hcl/ast"
	hclparser "github.com/hashicorp/hcl/hcl/parser"
	"github.com/hashicorp/hcl/hcl/token"
)

// parseHCL parses an HCL (v1) config file into the value encoding/json
// would have produced for the equivalent JSON file, so that both formats
// share one strict decoder. HCL v1 has no schema: a block may be written
// once or many times, and a list may be written as repeated blocks. The
// conversion is therefore directed by t, the Go type being decoded:
//
//   - a block (or "key = { }") for a slice field becomes a one-element
//     list; repeated blocks for a slice field concatenate;
//   - repeated blocks for anything else are an error, except Consul's
//     top-level "service" and "check", which append to services/checks;
//   - `a "b" { }` is `a { b { } }`;
//   - numbers become json.Number (hex and octal HCL literals in decimal).
//
// lines receives the line of every key path the decoder can report.
func parseHCL(data []byte, t reflect.Type, lines map[string]int) (doc any, err error) {
	defer func() {
		// hcl v1 panics on a few malformed inputs (found by fuzzing its
		// token.Value); a config file must never crash the agent.
		if r := recover(); r != nil {
			doc, err = nil, &DecodeError{Reason: fmt.Sprintf("invalid HCL: %v", r)}
		}
	}()
	f, err := hclparser.Parse(data)
	if err != nil {
		var pe *hclparser.PosError
		if errors.As(err, &pe) {
			// The same shape as JSON syntax errors.
			return nil, &DecodeError{Reason: fmt.Sprintf("invalid HCL at line %d, column %d: %v", pe.Pos.Line, pe.Pos.Column, pe.Err)}
		}
		return nil, &DecodeError{Reason: "invalid HCL: " + err.Error()}
	}
	list, ok := f.Node.(*ast.ObjectList)
	if !ok {
		return nil, &DecodeError{Reason: "invalid HCL: the file is not a list of keys"}
	}
	h := hclConv{lines: lines}
	return h.objectList(list, t, "", true)
}

type hclConv struct {
	lines map[string]int
}

func (h *hclConv) mark(path string, pos token.Pos) {
	if _, ok := h.lines[path]; !ok && pos.Line > 0 {
		h.lines[path] = pos.Line
	}
}

// hclGroup is the items of one object list that share a key.
type hclGroup struct {
	key   string
	items []*ast.ObjectItem
}

// objectList converts the items of an HCL object into a map, directed by
// t (a struct or map type, or nil when unknown). top is the file root.
func (h *hclConv) objectList(list *ast.ObjectList, t reflect.Type, path string, top bool) (map[string]any, error) {
	t = deref(t)
	var groups []*hclGroup
	index := map[string]*hclGroup{}
	for _, item := range list.Items {
		if len(item.Keys) == 0 {
			return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("line %d: value without a key", item.Pos().Line)}
		}
		key, err := keyText(item.Keys[0])
		if err != nil {
			return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("line %d: %v", item.Keys[0].Pos().Line, err)}
		}
		if len(item.Keys) > 1 {
			// `a "b" { }` is `a { b { } }`.
			item = &ast.ObjectItem{
				Keys: item.Keys[:1],
				Val: &ast.ObjectType{Lbrace: item.Keys[1].Pos(), List: &ast.ObjectList{Items: []*ast.ObjectItem{{
					Keys: item.Keys[1:], Val: item.Val,
				}}}},
			}
		}
		g := index[key]
		if g == nil {
			g = &hclGroup{key: key}
			index[key] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, item)
	}

	out := make(map[string]any, len(groups))
	for _, g := range groups {
		if len(g.items) == 0 {
			continue // converted by appendRepeated
		}
		ft := fieldType(t, g.key)
		p := joinPath(path, g.key)
		h.mark(p, g.items[0].Keys[0].Pos())
		if top && len(g.items) > 1 && t == reflect.TypeFor[fileConfig]() {
			// Consul's repeated top-level "service { }" / "check { }".
			switch normalizeKey(g.key) {
			case "service", "check":
				if err := h.appendRepeated(out, g, index); err != nil {
					return nil, err
				}
				continue
			}
		}
		st := deref(ft)
		if st != nil && st.Kind() == reflect.Slice && st.Elem().Kind() != reflect.Uint8 {
			var all []any
			for _, item := range g.items {
				vs, err := h.listValues(item.Val, st, p, len(all))
				if err != nil {
					return nil, err
				}
				all = append(all, vs...)
			}
			out[g.key] = all
			continue
		}
		if len(g.items) > 1 {
			return nil, &DecodeError{Path: p, Reason: fmt.Sprintf("given %d times (lines %d and %d); only one is allowed",
				len(g.items), g.items[0].Pos().Line, g.items[1].Pos().Line)}
		}
		v, err := h.value(g.items[0].Val, ft, p)
		if err != nil {
			return nil, err
		}
		out[g.key] = v
	}
	return out, nil
}

// appendRepeated turns repeated top-level service/check blocks into
// elements of services/checks (after any the file lists there itself).
func (h *hclConv) appendRepeated(out map[string]any, g *hclGroup, index map[string]*hclGroup) error {
	listKey := "services"
	if normalizeKey(g.key) == "check" {
		listKey = "checks"
	}
	for k := range index {
		if normalizeKey(k) == listKey {
			listKey = k
		}
	}
	elem := reflect.TypeFor[ServiceDefinition]()
	if listKey == "checks" || normalizeKey(listKey) == "checks" {
		elem = reflect.TypeFor[CheckDefinition]()
	}
	// The explicit list is converted when its own group comes; here the
	// repeated blocks are kept aside and appended afterwards.
	existing, _ := out[listKey].([]any)
	if _, listed := index[listKey]; listed && existing == nil {
		li := index[listKey]
		var err error
		existing, err = h.listValues(li.items[0].Val, reflect.SliceOf(elem), joinPath("", listKey), 0)
		if err != nil {
			return err
		}
		for _, item := range li.items[1:] {
			vs, err := h.listValues(item.Val, reflect.SliceOf(elem), joinPath("", listKey), len(existing))
			if err != nil {
				return err
			}
			existing = append(existing, vs...)
		}
		delete(index, listKey) // converted here: skip its own group
		li.items = nil
	}
	for _, item := range g.items {
		p := fmt.Sprintf("%s[%d]", listKey, len(existing))
		h.mark(p, item.Pos())
		v, err := h.value(item.Val, elem, p)
		if err != nil {
			return err
		}
		existing = append(existing, v)
	}
	out[listKey] = existing
	return nil
}

// listValues converts one occurrence of a slice-typed key: a list, or a
// single block standing for one element. first is the index of its first
// element in the whole list.
func (h *hclConv) listValues(n ast.Node, st reflect.Type, path string, first int) ([]any, error) {
	switch n := n.(type) {
	case *ast.ListType:
		out := make([]any, 0, len(n.List))
		for i, el := range n.List {
			p := fmt.Sprintf("%s[%d]", path, first+i)
			h.mark(p, el.Pos())
			v, err := h.value(el, st.Elem(), p)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *ast.ObjectType:
		p := fmt.Sprintf("%s[%d]", path, first)
		h.mark(p, n.Pos())
		v, err := h.value(n, st.Elem(), p)
		if err != nil {
			return nil, err
		}
		return []any{v}, nil
	}
	// A scalar for a list: let the strict decoder name the mismatch.
	v, err := h.value(n, st, path)
	if err != nil {
		return nil, err
	}
	return []any{v}, nil
}

// value converts one HCL value directed by t (nil when unknown).
func (h *hclConv) value(n ast.Node, t reflect.Type, path string) (any, error) {
	switch n := n.(type) {
	case *ast.LiteralType:
		return literal(n.Token, path)
	case *ast.ListType:
		var et reflect.Type
		if st := deref(t); st != nil && st.Kind() == reflect.Slice {
			et = st.Elem()
		}
		out := make([]any, 0, len(n.List))
		for i, el := range n.List {
			p := fmt.Sprintf("%s[%d]", path, i)
			h.mark(p, el.Pos())
			v, err := h.value(el, et, p)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *ast.ObjectType:
		if st := deref(t); st != nil && st.Kind() == reflect.Slice {
			p := path + "[0]"
			h.mark(p, n.Pos())
			v, err := h.objectList(n.List, st.Elem(), p, false)
			if err != nil {
				return nil, err
			}
			return []any{v}, nil
		}
		return h.objectList(n.List, t, path, false)
	}
	return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("unsupported HCL value %T", n)}
}

// literal converts an HCL literal to its JSON-decoded equivalent.
func literal(tok token.Token, path string) (any, error) {
	switch tok.Type {
	case token.BOOL:
		return tok.Text == "true", nil
	case token.NUMBER:
		i, err := strconv.ParseInt(tok.Text, 0, 64)
		if err != nil {
			return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("number %s out of range", tok.Text)}
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case token.FLOAT:
		f, err := strconv.ParseFloat(tok.Text, 64)
		if err != nil {
			return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("number %s out of range", tok.Text)}
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case token.STRING, token.HEREDOC:
		s, ok := tok.Value().(string)
		if !ok {
			return nil, &DecodeError{Path: path, Reason: "invalid string"}
		}
		return s, nil
	}
	return nil, &DecodeError{Path: path, Reason: fmt.Sprintf("unsupported HCL value %s", tok.Text)}
}

func keyText(k *ast.ObjectKey) (string, error) {
	switch k.Token.Type {
	case token.IDENT:
		return k.Token.Text, nil
	case token.STRING:
		if s, ok := k.Token.Value().(string); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("invalid key %s", k.Token.Text)
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldType is the Go type key decodes into inside t, or nil when t is
// not a struct or map or has no such key.
func fieldType(t reflect.Type, key string) reflect.Type {
	t = deref(t)
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		fields, err := fieldsOf(t)
		if err != nil {
			return nil
		}
		idx, ok := fields[normalizeKey(key)]
		if !ok {
			return nil
		}
		return t.FieldByIndex(idx).Type
	}
	return nil
}
