// Package tap writes Test Anything Protocol (version 13) output.
//
// It provides the API of github.com/mndrix/tap-go that the opencontainers
// runtime-tools validation suite imports.  That package is in no Debian
// release, so husk's conformance harness builds the suite against this small
// implementation instead (integration/conformance/build.sh installs it into
// the build GOPATH under the upstream import path).
package tap

import (
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// T is a TAP producer.  The zero value is not usable: call New.
type T struct {
	// next points at the number the next test point gets (1-based); it is
	// shared with the producers that Todo returns.
	next *int

	// TODO marks the following test points as TODO (see Todo).
	TODO bool

	// Writer receives the output; os.Stdout unless changed.
	Writer io.Writer
}

// New returns a producer writing to standard output.
func New() *T {
	n := 1
	return &T{next: &n, Writer: os.Stdout}
}

func (t *T) printf(format string, a ...interface{}) {
	w := t.Writer
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, format, a...)
}

// Header prints the TAP version line and, when testCount > 0, the plan.
// With testCount 0 the plan is expected later from AutoPlan.
func (t *T) Header(testCount int) {
	t.printf("TAP version 13\n")
	if testCount > 0 {
		t.printf("1..%d\n", testCount)
	}
}

// Ok records one test point that passed when test is true.
func (t *T) Ok(test bool, description string) {
	status := "ok"
	if !test {
		status = "not ok"
	}
	line := fmt.Sprintf("%s %d", status, *t.next)
	if description != "" {
		line += " - " + escapeLine(description)
	}
	if t.TODO {
		line += " # TODO"
	}
	t.printf("%s\n", line)
	*t.next++
}

// Pass records a passing test point.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Fail records a failing test point.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Skip records count skipped test points.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.next, escapeLine(description))
		*t.next++
	}
}

// Todo returns a producer sharing this one's numbering and output whose test
// points are marked TODO.
func (t *T) Todo() *T {
	todo := *t
	todo.TODO = true
	return &todo
}

// Count returns how many test points have been written.
func (t *T) Count() int { return *t.next - 1 }

// AutoPlan prints the plan for the test points written so far.
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// Diagnostic prints message as TAP diagnostic lines ("# ...").
func (t *T) Diagnostic(message string) {
	t.printf("# %s\n", strings.ReplaceAll(strings.TrimRight(message, "\n"), "\n", "\n# "))
}

// Diagnosticf prints a formatted diagnostic.
func (t *T) Diagnosticf(format string, a ...interface{}) {
	t.Diagnostic(fmt.Sprintf(format, a...))
}

// YAML prints message as an indented YAML block ("  ---" .. "  ...")
// attached to the previous test point.
func (t *T) YAML(message interface{}) error {
	out, err := yaml.Marshal(message)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("  ---\n")
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		b.WriteString("  ")
		b.WriteString(line)
		b.WriteString("\n")
	}
	b.WriteString("  ...\n")
	t.printf("%s", b.String())
	return nil
}

// escapeLine keeps a description on one line and keeps '#' from starting a
// directive.
func escapeLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "#", "\\#")
}
