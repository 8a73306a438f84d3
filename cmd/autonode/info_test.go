package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestGraph(t *testing.T) {
	reg := fixture(t)
	text := cli(t, reg, nil, "graph").want(t, 0).stdout
	for _, want := range []string{"Lineage of the registry: 11 thread(s)", "1.0 YourCoreThread\n├── 10.0 Thread-10-core", "2.0 Thread-2-base\n└── 22.0 renamed-22"} {
		if !strings.Contains(text, want) {
			t.Errorf("graph text lacks %q:\n%s", want, text)
		}
	}
	dot := cli(t, reg, nil, "graph", "--format", "dot").want(t, 0).stdout
	if !strings.Contains(dot, `"1.0" -> "21.0";`) || !strings.Contains(dot, `"2.0" -> "22.0";`) || strings.Contains(dot, "bold") {
		t.Errorf("graph dot:\n%s", dot)
	}
	mer := cli(t, reg, nil, "graph", "--format", "mermaid").want(t, 0).stdout
	if !strings.HasPrefix(mer, "graph TD\n") || strings.Contains(mer, "style ") || strings.Count(mer, "-->") != 8 {
		t.Errorf("graph mermaid:\n%s", mer)
	}
	cli(t, reg, nil, "graph", "--format", "svg").want(t, 2)
	cli(t, reg, nil, "graph", "extra").want(t, 2)
}

func TestDevicesAndVersion(t *testing.T) {
	r := cli(t, "", nil, "devices", "--json").want(t, 0)
	var ds []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil {
		t.Fatalf("devices --json: %v\n%s", err, r.stdout)
	}
	names := map[string]bool{}
	for _, d := range ds {
		names[d["name"].(string)] = d["found"].(bool)
		if !d["found"].(bool) && d["reason"] == "" {
			t.Errorf("device %v not found without a reason", d)
		}
	}
	if !names["cpu"] {
		t.Errorf("the cpu device is not found: %v", ds)
	}
	text := cli(t, "", nil, "devices").want(t, 0).stdout
	if !strings.Contains(text, "cpu") || !strings.Contains(text, "found") {
		t.Errorf("devices:\n%s", text)
	}
	v := cli(t, "", nil, "version").want(t, 0).stdout
	if !strings.HasPrefix(v, "autonode ") || !strings.Contains(v, "go1.") {
		t.Errorf("version: %q", v)
	}
	var vj map[string]string
	if err := json.Unmarshal([]byte(cli(t, "", nil, "version", "--json").want(t, 0).stdout), &vj); err != nil || vj["go"] == "" {
		t.Errorf("version --json: %v %v", vj, err)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := cli(t, "", nil, "completion", sh).want(t, 0).stdout; !strings.Contains(out, "autonode") {
			t.Errorf("completion %s printed %q", sh, out[:min(len(out), 80)])
		}
	}
}
