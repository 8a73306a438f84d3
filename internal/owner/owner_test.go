package owner

import "testing"

func TestOwner(t *testing.T) {
	me := Self()
	o, ok := Parse(me.String())
	if !ok || o != me {
		t.Fatalf("Parse(%q) = %+v, %v", me.String(), o, ok)
	}
	if !Alive(me.String()) {
		t.Error("this process is not alive")
	}
	for _, s := range []string{"", "pid=x", "pid=1 host=h"} {
		if Alive(s) {
			t.Errorf("Alive(%q) = true", s)
		}
	}
	other := ID{Host: me.Host + "-elsewhere", PID: 1, Start: 1}
	if !Alive(other.String()) {
		t.Error("an owner on another host is assumed alive")
	}
}
