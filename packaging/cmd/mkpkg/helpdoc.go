package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// helpTimeout bounds one `cairn ... --help` run; help never does I/O
// beyond printing, so a hang means a broken binary.
const helpTimeout = 10 * time.Second

// Help is the --help text of the root command and of every command the
// root's help lists (nested ones as "kv get").
type Help struct {
	Root     string
	Commands []Command
}

// Command is one (possibly nested) command and its help text.
type Command struct {
	Path  []string // e.g. ["kv", "get"]
	Text  string
	Flags []string // long flags, e.g. "--dev"
}

var (
	// Kong prints each command in a "…Commands:" section as two spaces,
	// the command words, then its arguments and "[flags]".
	commandLine = regexp.MustCompile(`^  (\S.*)$`)
	// "  -h, --help", "      --http-addr=STRING"
	flagLine = regexp.MustCompile(`^\s+(?:-\w, )?(--[A-Za-z0-9][A-Za-z0-9-]*)`)
)

// CollectHelp runs bin --help and bin <command> --help for every command.
func CollectHelp(bin string) (*Help, error) {
	root, err := runHelp(bin)
	if err != nil {
		return nil, err
	}
	h := &Help{Root: root}
	for _, path := range parseCommands(root) {
		text, err := runHelp(bin, path...)
		if err != nil {
			return nil, err
		}
		h.Commands = append(h.Commands, Command{Path: path, Text: text, Flags: parseFlags(text)})
	}
	return h, nil
}

func runHelp(bin string, path ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), helpTimeout)
	defer cancel()
	args := append(slices.Clone(path), "--help")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "COLUMNS=80")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mkpkg: %s %s: %w", bin, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// parseCommands lists the command paths in a kong root help text.
func parseCommands(help string) [][]string {
	var paths [][]string
	in := false
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasSuffix(line, "ommands:") && !strings.HasPrefix(line, " "):
			in = true
		case line != "" && !strings.HasPrefix(line, " "):
			in = false
		case in:
			m := commandLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			var path []string
			for _, w := range strings.Fields(m[1]) {
				if strings.ContainsAny(w[:1], "<[-(") {
					break
				}
				path = append(path, w)
			}
			if len(path) > 0 {
				paths = append(paths, path)
			}
		}
	}
	return paths
}

func parseFlags(help string) []string {
	var flags []string
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil && !slices.Contains(flags, m[1]) {
			flags = append(flags, m[1])
		}
	}
	return flags
}

// Text is the plain-text reference shipped as /usr/share/doc/cairn/cairn.txt.
func (h *Help) Text(version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cairn %s: command reference (generated from --help)\n\n", version)
	b.WriteString("$ cairn --help\n")
	b.WriteString(h.Root)
	for _, c := range h.Commands {
		fmt.Fprintf(&b, "\n%s\n$ cairn %s --help\n%s", strings.Repeat("-", 72), strings.Join(c.Path, " "), c.Text)
	}
	return b.String()
}

// Man renders a man(7) page: the root help as DESCRIPTION, each command's
// help verbatim under COMMANDS.
func (h *Help) Man(version string, date time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH CAIRN 1 %q %q \"User Commands\"\n", date.UTC().Format("2006-01-02"), "cairn "+version)
	b.WriteString(".SH NAME\ncairn \\- DNS-first service discovery agent and CLI (Consul-compatible)\n")
	b.WriteString(".SH SYNOPSIS\n.B cairn\n.I command\n[\\fIflags\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n")
	verbatim(&b, h.Root)
	if len(h.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, c := range h.Commands {
			fmt.Fprintf(&b, ".SS %s\n", manEscape("cairn "+strings.Join(c.Path, " ")))
			verbatim(&b, c.Text)
		}
	}
	b.WriteString(".SH FILES\n.TP\n.I /etc/cairn.d/\nagent configuration (JSON), read by\n.B cairn agent \\-\\-config\\-dir /etc/cairn.d\n")
	b.WriteString(".TP\n.I /var/lib/cairn/\nserver state: Raft log, catalog store, snapshots\n")
	b.WriteString(".SH SEE ALSO\n.BR systemctl (1),\n.BR resolv.conf (5),\n.I /usr/share/doc/cairn/README.md\n")
	return b.String()
}

func verbatim(b *strings.Builder, text string) {
	b.WriteString(".nf\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(manEscape(line))
		b.WriteByte('\n')
	}
	b.WriteString(".fi\n")
}

// manEscape keeps roff from interpreting backslashes, hyphens meant
// literally, and lines that begin with a control character.
func manEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// Bash renders a completion script: command words at each level, then the
// long flags of the deepest command typed so far.
func (h *Help) Bash() string {
	words := map[string][]string{"": parseFlags(h.Root)}
	var keys []string
	add := func(key, w string) {
		if _, ok := words[key]; !ok {
			keys = append(keys, key)
		}
		if !slices.Contains(words[key], w) {
			words[key] = append(words[key], w)
		}
	}
	for _, c := range h.Commands {
		for i, w := range c.Path {
			add(strings.Join(c.Path[:i], " "), w)
		}
		key := strings.Join(c.Path, " ")
		for _, f := range c.Flags {
			add(key, f)
		}
	}
	slices.Sort(keys)

	var b strings.Builder
	b.WriteString(`# bash completion for cairn; generated from "cairn --help" by packaging/cmd/mkpkg.
_cairn() {
	local cur=${COMP_WORDS[COMP_CWORD]} path="" w i
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in -*) continue ;; esac
		case " $(_cairn_words "${path:+$path }$w" 1) " in " ok ") path=${path:+$path }$w ;; esac
	done
	COMPREPLY=($(compgen -W "$(_cairn_words "$path")" -- "$cur"))
}
# _cairn_words PATH [CHECK]: the words that may follow PATH, or "ok" with
# CHECK set when PATH is a known command.
_cairn_words() {
	local words
	case $1 in
`)
	for _, k := range append([]string{""}, keys...) {
		fmt.Fprintf(&b, "\t%q) words=%q ;;\n", k, strings.Join(words[k], " "))
	}
	b.WriteString(`	*) return ;;
	esac
	if [ -n "$2" ]; then echo ok; else echo "$words"; fi
}
complete -o default -F _cairn cairn
`)
	return b.String()
}

// writeDocs writes cairn.txt, cairn.1.gz and cairn.bash into dir.
func writeDocs(dir, bin, version string, date time.Time) error {
	h, err := CollectHelp(bin)
	if err != nil {
		return err
	}
	var man bytes.Buffer
	zw, err := gzip.NewWriterLevel(&man, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.ModTime = date // reproducible: no wall-clock timestamp in the header
	if _, err := zw.Write([]byte(h.Man(version, date))); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"cairn.txt":  []byte(h.Text(version)),
		"cairn.1.gz": man.Bytes(),
		"cairn.bash": []byte(h.Bash()),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("mkpkg: %w", err)
		}
	}
	return nil
}
