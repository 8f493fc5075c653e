package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// jsonLines maps every key path of the JSON document data (in the
// decoder's spelling: "a.b", "a[0].c") to the line it starts on. It is
// computed only when a message needs a line; a document that does not
// parse yields what was read before the fault.
func jsonLines(data []byte) map[string]int {
	lines := map[string]int{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lineAt := func() int { l, _ := lineCol(data, dec.InputOffset()); return l }
	var value func(path string, depth int) bool
	value = func(path string, depth int) bool {
		if depth > maxConfigDepth {
			return false
		}
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if _, ok := lines[path]; !ok {
			lines[path] = lineAt()
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return false
				}
				k, _ := kt.(string)
				p := joinPath(path, k)
				// The offset after the key token is on the key's line.
				lines[p] = lineAt()
				if !value(p, depth+1) {
					return false
				}
			}
			_, err = dec.Token()
			return err == nil
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if !value(indexPath(path, i), depth+1) {
					return false
				}
			}
			_, err = dec.Token()
			return err == nil
		}
		return true
	}
	value("", 0)
	delete(lines, "")
	return lines
}

// maxConfigDepth bounds the nesting jsonLines follows: Consul's deepest
// key (services[].checks[].header.X[]) is 5 levels down; 64 leaves room
// and keeps hostile input from exhausting the stack.
const maxConfigDepth = 64

// lineOf is the line of path in lines, or of its closest enclosing key
// that has one (a value the decoder reports at "services[0]" may have
// been written as a single block "service"); 0 when none is known.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		if strings.HasSuffix(path, "]") {
			if i := strings.LastIndexByte(path, '['); i >= 0 {
				path = path[:i]
				continue
			}
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}
