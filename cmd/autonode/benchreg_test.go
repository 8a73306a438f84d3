package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestPeakRSS: with AUTONODE_PEAK_RSS set, autonode prints its own peak
// resident set size as it exits (and only then), whatever the command's
// outcome.
func TestPeakRSS(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
	}{{[]string{"--help"}, 0}, {[]string{"show", "1.0"}, 1}} {
		r := bin(t, dir, []string{envPeakRSS + "=1"}, c.args...).want(t, c.code)
		m := regexp.MustCompile(`(?m)^` + peakRSSPrefix + `(\d+)$`).FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("%v: no peak on stderr: %s", c.args, r)
		}
		if kb, _ := strconv.Atoi(m[1]); kb < 1000 || kb > 1<<20 {
			t.Errorf("%v: peak of %d kB", c.args, kb)
		}
		if r := bin(t, dir, nil, c.args...); strings.Contains(r.stderr, peakRSSPrefix) {
			t.Errorf("%v: a peak without %s: %s", c.args, envPeakRSS, r)
		}
	}
}

// TestBenchRegistry runs the registry benchmark on a small registry: every
// row has a time, the command rows have AutoNode's and Python's own peak
// memory, and the reference answered.
func TestBenchRegistry(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for the reference")
	}
	r := bin(t, t.TempDir(), nil, "bench", "registry", "--sizes", "200", "--rounds", "1").want(t, 0)
	rows := 0
	for _, l := range strings.Split(r.stdout, "\n") {
		if !strings.Contains(l, " 200 ") {
			continue
		}
		rows++
		f := strings.Fields(l)
		if !strings.Contains(l, " ms ") {
			t.Errorf("no time: %q", l)
		}
		if strings.Contains(l, "(CLI)") && (!strings.HasSuffix(f[len(f)-1], "x") || !strings.HasSuffix(f[len(f)-2], "x")) {
			t.Errorf("a command row without both peaks: %q", l)
		}
	}
	if rows != 13 || !strings.Contains(r.stdout, "peak/file") {
		t.Errorf("%d rows:\n%s", rows, r.stdout)
	}
}

// TestBenchSignal runs the signal benchmark on a small batch: both rows
// have their times (the command itself checks exit 143 and that every
// thread was recorded cancelled), and a bad flag is a usage error.
func TestBenchSignal(t *testing.T) {
	r := bin(t, t.TempDir(), nil, "bench", "signal", "--threads", "300", "--rounds", "1").want(t, 0)
	for _, row := range []string{"spawn_batch of 1 ", "spawn_batch of 300 "} {
		i := strings.Index(r.stdout, "\n"+row)
		if i < 0 {
			t.Fatalf("no row %q:\n%s", row, r.stdout)
		}
		f := strings.Fields(r.stdout[i+1+len(row):])
		if len(f) < 2 || !strings.HasSuffix(f[0], "s") || !strings.HasSuffix(f[1], "s") {
			t.Errorf("row %q without its times:\n%s", row, r.stdout)
		}
	}
	if r := bin(t, t.TempDir(), nil, "bench", "signal", "--threads", "0"); r.code != 2 || !strings.Contains(r.stderr, "want 1 or more") {
		t.Errorf("--threads 0: exit %d, %s", r.code, r.stderr)
	}
}
