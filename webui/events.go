package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// eventJSON is the data of a "change" event on GET /api/events.
type eventJSON struct {
	Version uint64 `json:"version"`
	// Changed and Removed list the keys of threads added or modified, and
	// removed; when All is set they are omitted and any thread may have
	// changed.
	Changed []string `json:"changed,omitempty"`
	Removed []string `json:"removed,omitempty"`
	All     bool     `json:"all,omitempty"`
	// Structure: threads were added or removed or parent links changed.
	Structure bool `json:"structure,omitempty"`
}

// maxEventKeys is the most keys one event names; past it, All is sent.
const maxEventKeys = 500

// heartbeat keeps idle event streams open through proxies.
const heartbeat = 15 * time.Second

// handleEvents streams server-sent events: "hello" with the current
// version when the stream opens (or a "change" with All when the client
// reconnects with an older Last-Event-ID), then one "change" per new state
// of the store. Event ids are versions.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	ch, cancel := s.w.subscribe()
	defer cancel()
	snap, _ := s.w.current()
	send := func(name string, ev eventJSON) error {
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Version, name, data); err != nil {
			return err
		}
		return rc.Flush()
	}
	first := eventJSON{Version: snap.version}
	name := "hello"
	if last, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && last != snap.version {
		name, first.All, first.Structure = "change", true, true
	}
	if err := send(name, first); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case c, ok := <-ch:
			if !ok {
				return
			}
			ev := eventJSON{Version: c.version, Structure: c.structure, All: c.all}
			if !c.all && len(c.changed)+len(c.removed) <= maxEventKeys {
				ev.Changed, ev.Removed = c.changed, c.removed
			} else {
				ev.All = true
			}
			if err := send("change", ev); err != nil {
				return
			}
		}
	}
}
