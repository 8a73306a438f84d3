package builtins_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// chunk is one independent part of a testdata .star file: the parts are
// separated by lines that are exactly "---", and each runs on a fresh
// registry.
type chunk struct {
	// src is the chunk's text, preceded by as many empty lines as the file
	// has before it, so that error positions are the file's line numbers.
	src string
	// line is the line number of the chunk's first line.
	line int
	// wantErr maps a line number to the pattern that the error raised on
	// that line must match (a trailing `### "regexp"` on the line).
	wantErr map[int]*regexp.Regexp
	// options are the chunk's `# option:NAME` lines.
	options map[string]bool
}

var (
	errMarker    = regexp.MustCompile(`###\s*("(?:[^"\\]|\\.)*")\s*$`)
	optionMarker = regexp.MustCompile(`^#\s*option:([a-z_-]+)\s*$`)
)

// splitChunks splits the text of a testdata file into chunks.
func splitChunks(filename, text string) ([]*chunk, error) {
	lines := strings.Split(text, "\n")
	var chunks []*chunk
	cur := &chunk{line: 1, wantErr: map[int]*regexp.Regexp{}, options: map[string]bool{}}
	var body []string
	flush := func() {
		cur.src = strings.Repeat("\n", cur.line-1) + strings.Join(body, "\n") + "\n"
		chunks = append(chunks, cur)
	}
	for i, l := range lines {
		n := i + 1
		if strings.TrimRight(l, " \t\r") == "---" {
			flush()
			cur = &chunk{line: n + 1, wantErr: map[int]*regexp.Regexp{}, options: map[string]bool{}}
			body = nil
			continue
		}
		if m := optionMarker.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			cur.options[m[1]] = true
		}
		if m := errMarker.FindStringSubmatch(l); m != nil {
			pat, err := strconv.Unquote(m[1])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad error pattern %s: %v", filename, n, m[1], err)
			}
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad error pattern %q: %v", filename, n, pat, err)
			}
			cur.wantErr[n] = re
		}
		// The assert module is predeclared: a load of it becomes a blank
		// line, so that line numbers do not move.
		if strings.TrimSpace(l) == `load("assert.star", "assert")` {
			l = ""
		}
		body = append(body, l)
	}
	flush()
	return chunks, nil
}
