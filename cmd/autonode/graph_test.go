package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/autonode/autonode/registry"
)

// bigGraph is a 200-thread registry's lineage as the CLI draws it: 100
// threads without lineage, a fork of 40 with branch chains under five of
// the children, and six chains of six.
func bigGraph(t *testing.T) *registry.Graph {
	t.Helper()
	s, err := registry.OpenFile(t.TempDir()+"/thread_registry.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := "graph-test-token-0123456789"
	err = s.Update(func(tx *registry.Tx) error {
		create := func(id float64, parent *registry.ID) {
			th := registry.NewThread(registry.ID(id), registry.StageBase)
			th.Parent = parent
			if parent != nil {
				th.Lineage = []registry.ID{*parent}
			}
			if err := tx.Create(th, tok, ""); err != nil {
				t.Fatal(err)
			}
		}
		for i := 1; i <= 100; i++ {
			create(float64(i), nil)
		}
		root := registry.ID(101)
		create(101, nil)
		for i := 0; i < 40; i++ {
			create(float64(1000+i), &root)
		}
		next := 2000.0
		for i := 0; i < 5; i++ {
			p := registry.ID(1000 + i)
			for j := 0; j < 4; j++ {
				create(next, &p)
				p = registry.ID(next)
				next++
			}
		}
		for f := 0; f < 6; f++ {
			p := registry.ID(next)
			create(next, nil)
			next++
			for j := 0; j < 5; j++ {
				create(next, &p)
				p = registry.ID(next)
				next++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var g *registry.Graph
	if err := s.View(func(tx *registry.Tx) error { g, err = tx.Graph(); return err }); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGraphDotLayout checks that a few hundred threads lay out as a
// picture, not a strip: families are clusters, a fork's 40 children wrap
// into rows of dotRowNodes, unrelated threads form a grid, and (where
// Graphviz is installed) dot's layout is at most about three times as wide
// as it is high with no rank wider than the limits allow.
func TestGraphDotLayout(t *testing.T) {
	g := bigGraph(t)
	var b bytes.Buffer
	writeDot(&b, g)
	dot := b.String()
	for _, want := range []string{
		"subgraph cluster_0 {", `label="family of 101.0 (61)";`, `label="threads without lineage (100)";`,
		`"1000.0" -> "1008.0" [style=invis];`, `"1.0" -> "9.0" [style=invis];`, `"101.0" -> "1039.0";`,
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("dot lacks %q", want)
		}
	}
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("Graphviz's dot is not installed (apt-get install graphviz): the layout itself is not checked")
	}
	cmd := exec.Command("dot", "-Tplain")
	cmd.Stdin = strings.NewReader(dot)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dot -Tplain: %v", err)
	}
	perRank := map[string]int{}
	var width, height float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[0] == "graph":
			width, _ = strconv.ParseFloat(f[2], 64)
			height, _ = strconv.ParseFloat(f[3], 64)
		case len(f) >= 4 && f[0] == "node":
			id, _ := strconv.ParseFloat(strings.Trim(f[1], `"`), 64)
			if id >= 1000 && id < 1040 {
				perRank[f[3]]++ // the fork's children, by their y
			}
		}
	}
	if width == 0 || height == 0 || width > 3.5*height {
		t.Errorf("the layout is %.0f x %.0f inches: a strip, not a picture", width, height)
	}
	for y, n := range perRank {
		if n > dotRowNodes {
			t.Errorf("%d of the fork's children share the rank at y=%s (at most %d)", n, y, dotRowNodes)
		}
	}
	if len(perRank) != 40/dotRowNodes {
		t.Errorf("the fork's 40 children sit on %d ranks, want %d", len(perRank), 40/dotRowNodes)
	}
}

// TestSummarizeLongLists checks that summarize keeps long id lists to one
// readable line: the first ids and a count (--json has them all).
func TestSummarizeLongLists(t *testing.T) {
	reg := t.TempDir() + "/thread_registry.json"
	s, err := registry.OpenFile(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := "summary-test-token-0123456789"
	err = s.Update(func(tx *registry.Tx) error {
		for i := 1; i <= 30; i++ {
			if err := tx.Create(registry.NewThread(registry.ID(i), registry.StageBase), tok, ""); err != nil {
				return err
			}
		}
		for i := 31; i <= 45; i++ { // a chain of 16 under 30
			th := registry.NewThread(registry.ID(i), registry.StageBase)
			p := registry.ID(i - 1)
			th.Parent, th.Lineage = &p, []registry.ID{p}
			if err := tx.Create(th, tok, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	out := cli(t, reg, nil, "summarize").want(t, 0).stdout
	for _, want := range []string{
		"  roots:          1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, ... and 20 more (30 in all; --json lists every one)\n",
		"  deepest chain:  30.0 -> 31.0 -> 32.0 -> 33.0 -> 34.0 -> 35.0 -> 36.0 -> (7 more) -> 44.0 -> 45.0 (16 threads)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summarize lacks %q:\n%s", want, out)
		}
	}
}
