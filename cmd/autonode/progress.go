package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressMin is the smallest spawn_batch that gets a progress bar.
const progressMin = 20

// progressTerminal draws a progress bar on standard error for each
// spawn_batch of progressMin threads or more, when standard error is a
// terminal. A finished bar stays on its own line at 100%. When standard
// output is the same terminal, what the script prints is written above the
// bar (the bar is cleared first and drawn again after), never glued to it.
type progressTerminal struct {
	tty  *os.File // nil: no bars
	out  io.Writer
	same bool // out is a terminal too

	mu  sync.Mutex
	bar *progressbar.ProgressBar // the bar being drawn, nil when none
}

func newProgressTerminal(e *env, quiet bool) *progressTerminal {
	p := &progressTerminal{out: e.stdout}
	if f, ok := e.stderr.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.tty = f
		if o, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(o.Fd())) {
			p.same = true
		}
	}
	return p
}

// report is the runtime's Options.Progress: nil when no bar is drawn.
func (p *progressTerminal) report() func(label string, done, total int) {
	if p.tty == nil {
		return nil
	}
	return func(label string, done, total int) {
		if total < progressMin {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if done == 0 || p.bar == nil {
			p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.tty), progressbar.OptionSetDescription(label),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(50*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.tty) }))
		}
		p.bar.Set(done)
		if done >= total {
			p.bar = nil // it stays on the screen at 100%, on its own line
		}
	}
}

// stdout is the writer the script prints to.
func (p *progressTerminal) stdout() io.Writer {
	if p.tty == nil || !p.same {
		return p.out
	}
	return p
}

// Write prints the script's output above the bar being drawn.
func (p *progressTerminal) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
	}
	n, err := p.out.Write(b)
	if p.bar != nil {
		p.bar.RenderBlank()
	}
	return n, err
}
