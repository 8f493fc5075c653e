package http

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-bexpr/grammar"
)

// checksBinding names the element in the rewritten "any Checks as …"
// expression; the odd name keeps it clear of the caller's own names.
const checksBinding = "cairnCheck"

// consulChecksSelectors rewrites selectors that project through the
// Checks list of a /v1/health/service row, Consul's documented
// `Checks.Status == critical` and `Checks.ServiceTags contains x` (Dapr's
// Consul resolver sends the latter), into go-bexpr v0.1.17's collection
// form `any Checks as c { c.Status == critical }`: v0.1.17 cannot select
// a field through a list. A row matches when any of its checks does. The
// expression is returned unchanged when it has no such selector or cannot
// be rendered back faithfully.
func consulChecksSelectors(expr string) string {
	parsed, err := grammar.Parse("", []byte(expr), grammar.MaxExpressions(maxFilterParseSteps))
	if err != nil {
		return expr // CreateEvaluator reports the error
	}
	e, ok := parsed.(grammar.Expression)
	if !ok {
		return expr
	}
	changed := false
	e = rewriteChecks(e, &changed)
	if !changed {
		return expr
	}
	var b strings.Builder
	if !render(&b, e) {
		return expr
	}
	return b.String()
}

func rewriteChecks(e grammar.Expression, changed *bool) grammar.Expression {
	switch x := e.(type) {
	case *grammar.UnaryExpression:
		return &grammar.UnaryExpression{Operator: x.Operator, Operand: rewriteChecks(x.Operand, changed)}
	case *grammar.BinaryExpression:
		return &grammar.BinaryExpression{Left: rewriteChecks(x.Left, changed), Operator: x.Operator, Right: rewriteChecks(x.Right, changed)}
	case *grammar.CollectionExpression:
		c := *x
		c.Inner = rewriteChecks(x.Inner, changed)
		return &c
	case *grammar.MatchExpression:
		p := x.Selector.Path
		if x.Selector.Type != grammar.SelectorTypeBexpr || len(p) < 2 || p[0] != "Checks" || isDigits(p[1]) {
			return x
		}
		*changed = true
		inner := *x
		inner.Selector = grammar.Selector{Type: grammar.SelectorTypeBexpr, Path: append([]string{checksBinding}, p[1:]...)}
		return &grammar.CollectionExpression{
			Op:          grammar.CollectionOpAny,
			Selector:    grammar.Selector{Type: grammar.SelectorTypeBexpr, Path: []string{"Checks"}},
			NameBinding: grammar.CollectionNameBinding{Mode: grammar.CollectionBindDefault, Default: checksBinding},
			Inner:       &inner,
		}
	}
	return e
}

var identRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_/]*$`)

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// render writes e back in go-bexpr's syntax; false when some part has no
// faithful rendering (the caller then keeps the original expression).
func render(b *strings.Builder, e grammar.Expression) bool {
	switch x := e.(type) {
	case *grammar.UnaryExpression:
		if x.Operator != grammar.UnaryOpNot {
			return false
		}
		b.WriteString("not (")
		ok := render(b, x.Operand)
		b.WriteString(")")
		return ok
	case *grammar.BinaryExpression:
		op := " and "
		if x.Operator == grammar.BinaryOpOr {
			op = " or "
		}
		b.WriteString("(")
		ok := render(b, x.Left)
		b.WriteString(")" + op + "(")
		ok = ok && render(b, x.Right)
		b.WriteString(")")
		return ok
	case *grammar.CollectionExpression:
		b.WriteString(strings.ToLower(string(x.Op)) + " ")
		if !renderSelector(b, x.Selector) {
			return false
		}
		n := x.NameBinding
		switch n.Mode {
		case grammar.CollectionBindDefault:
			b.WriteString(" as " + n.Default)
		case grammar.CollectionBindIndex:
			b.WriteString(" as " + n.Index + ", _")
		case grammar.CollectionBindValue:
			b.WriteString(" as _, " + n.Value)
		case grammar.CollectionBindIndexAndValue:
			b.WriteString(" as " + n.Index + ", " + n.Value)
		default:
			return false
		}
		b.WriteString(" { ")
		ok := render(b, x.Inner)
		b.WriteString(" }")
		return ok
	case *grammar.MatchExpression:
		return renderMatch(b, x)
	}
	return false
}

func renderMatch(b *strings.Builder, m *grammar.MatchExpression) bool {
	value := func() (string, bool) {
		if m.Value == nil {
			return "", false
		}
		return quote(m.Value.Raw)
	}
	var sel strings.Builder
	if !renderSelector(&sel, m.Selector) {
		return false
	}
	switch m.Operator {
	case grammar.MatchIsEmpty, grammar.MatchIsNotEmpty, grammar.MatchIsNil, grammar.MatchIsNotNil:
		b.WriteString(sel.String() + map[grammar.MatchOperator]string{
			grammar.MatchIsEmpty: " is empty", grammar.MatchIsNotEmpty: " is not empty",
			grammar.MatchIsNil: " is nil", grammar.MatchIsNotNil: " is not nil",
		}[m.Operator])
		return true
	case grammar.MatchIn, grammar.MatchNotIn:
		v, ok := value()
		if !ok {
			return false
		}
		op := " in "
		if m.Operator == grammar.MatchNotIn {
			op = " not in "
		}
		b.WriteString(v + op + sel.String())
		return true
	}
	op, ok := map[grammar.MatchOperator]string{
		grammar.MatchEqual: " == ", grammar.MatchNotEqual: " != ",
		grammar.MatchContains: " contains ", grammar.MatchNotContains: " not contains ",
		grammar.MatchMatches: " matches ", grammar.MatchNotMatches: " not matches ",
	}[m.Operator]
	if !ok {
		return false
	}
	v, ok := value()
	if !ok {
		return false
	}
	b.WriteString(sel.String() + op + v)
	return true
}

func renderSelector(b *strings.Builder, s grammar.Selector) bool {
	if s.Type != grammar.SelectorTypeBexpr || len(s.Path) == 0 || !identRE.MatchString(s.Path[0]) {
		return false
	}
	b.WriteString(s.Path[0])
	for _, p := range s.Path[1:] {
		switch {
		case identRE.MatchString(p), isDigits(p):
			b.WriteString("." + p)
		default:
			q, ok := quote(p)
			if !ok {
				return false
			}
			b.WriteString("[" + q + "]")
		}
	}
	return true
}

// quote renders s as a go-bexpr string literal, whose double-quoted form
// cannot hold a '"' (the grammar stops at the first one): backquotes then,
// and no rendering when s holds both.
func quote(s string) (string, bool) {
	if !strings.Contains(s, `"`) {
		return strconv.Quote(s), true
	}
	if !strings.Contains(s, "`") {
		return "`" + s + "`", true
	}
	return "", false
}
