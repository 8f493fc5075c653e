package main

import (
	"strings"

	"github.com/alecthomas/kong"
)

// consulArgs rewrites Consul's one-dash long flags (`-name deploy`,
// `-node=web1`) to kong's `--name` form, so scripts written for consul
// run unchanged with cairn. Only names that are long flags of the chosen
// command (or its parents) are rewritten: short flags (`-h`), negative
// numbers, unknown words and everything after `--` or inside a
// passthrough argument (`exec`'s command, `watch`'s handler) stay as
// they are. args excludes the program name.
func consulArgs(args []string) []string {
	var probe CLI
	p, err := kong.New(&probe, kong.Name("cairn"))
	if err != nil {
		return args
	}
	return normaliseFlags(p.Model.Node, args)
}

func normaliseFlags(root *kong.Node, args []string) []string {
	out := make([]string, 0, len(args))
	node := root
	flags := map[string]*kong.Flag{}
	shorts := map[string]*kong.Flag{} // one-letter flags (`lock -n 2`)
	addFlags := func(n *kong.Node) {
		for _, f := range n.Flags {
			flags[f.Name] = f
			for _, a := range f.Aliases {
				flags[a] = f
			}
			if f.Short != 0 {
				shorts[string(f.Short)] = f
			}
		}
	}
	addFlags(node)
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if !positional {
				if child := childCommand(node, a); child != nil {
					node = child
					addFlags(node)
					out = append(out, a)
					continue
				}
			}
			positional = true
			out = append(out, a)
			if hasPassthrough(node) {
				return append(out, args[i+1:]...)
			}
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f, ok := shorts[name]; ok && !strings.HasPrefix(a, "--") {
			// A known short flag keeps its dash; its value is the next
			// word unless given with "=" (so it is not taken for the
			// first positional argument). Kong reads "-n 2", not "-n=2".
			if hasValue {
				_, v, _ := strings.Cut(a, "=")
				out = append(out, "-"+name, v)
				continue
			}
			out = append(out, a)
			if !hasValue && !f.IsBool() && !f.IsCounter() && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		if !strings.HasPrefix(a, "--") {
			if _, known := flags[name]; len(name) < 2 || !isLetter(name[0]) || !known {
				out = append(out, a)
				continue
			}
			a = "-" + a
		}
		out = append(out, a)
		// A flag's value is the next word unless given with "=" or the
		// flag is boolean; it is copied as is (it may start with "-").
		if f, ok := flags[name]; ok && !hasValue && !f.IsBool() && !f.IsCounter() && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

func childCommand(n *kong.Node, word string) *kong.Node {
	for _, c := range n.Children {
		if c.Type != kong.CommandNode {
			continue
		}
		if c.Name == word {
			return c
		}
		for _, al := range c.Aliases {
			if al == word {
				return c
			}
		}
	}
	return nil
}

func hasPassthrough(n *kong.Node) bool {
	if n.Passthrough {
		return true
	}
	for _, p := range n.Positional {
		if p.Passthrough || p.PassthroughMode != kong.PassThroughModeNone {
			return true
		}
	}
	return false
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }
