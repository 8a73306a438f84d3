// Package webui serves a read-only web view of a registry.Store: the thread
// table with filters, a page per thread, the lineage as an interactive
// graph, and live updates while threads run. It is what `autonode ui`
// serves; it only reads the store (through registry.Tx) and answers GET
// and HEAD requests alone.
//
// The HTTP API, all JSON, shaped here from the registry's Go types so that a
// change in how the registry encodes its records does not reach browsers:
//
//	GET /api/summary                 registry totals, by status, stage and device
//	GET /api/threads?stage=&status=&device=&name=&sort=&offset=&limit=
//	                                 one page of the thread table
//	GET /api/durations?stage=&status=&device=&name=
//	                                 start time and duration of the matching threads that ran
//	GET /api/threads/{id}            every field of a thread, its attempts, history,
//	                                 lineage and run dependencies (after)
//	GET /api/threads/{id}/record     the stored record without token hashes
//	GET /api/threads/{id}/log?line=&offset=&pos=&limit=
//	                                 the thread's log after a cursor (the previous answer's next)
//	GET /api/threads/{id}/metrics    every metric of the thread: summary and points
//	GET /api/threads/{id}/result?array=&format=
//	                                 download the stored result (.npy, .npz or JSON)
//	GET /api/lineage?focus=&max=     nodes and edges of the lineage graph
//	GET /api/events                  server-sent events: one "change" event per new
//	                                 state of the registry, naming the threads that changed
//
// Every other path serves the single-page front end (index.html and its
// scripts), embedded from the assets folder with go:embed, so the binary
// works offline and needs no CDN.
//
// Access. A Server with an empty Options.Token serves anyone who can reach
// it, and refuses requests whose Host header is not a loopback name (so a
// web page elsewhere cannot read it through DNS rebinding); it is meant for
// a loopback address. With a Token, every request must carry it: as
// "Authorization: Bearer TOKEN", or once as ?token=TOKEN in the address,
// which sets an HttpOnly, SameSite=Strict cookie and redirects to the same
// address without the token. Tokens are compared in constant time.
//
// The front end. Its sources are in frontend/ (plain JavaScript modules;
// Cytoscape.js with the cytoscape-dagre layered layout draws the lineage,
// uPlot draws plots), pinned by frontend/package-lock.json and bundled by
// esbuild into assets/. The built assets are committed, so that `go install`
// and `go run` work from a fresh clone without npm; after changing
// frontend/, run `npm ci && npm run build` there and commit assets/. The
// build is deterministic: .ci/run rebuilds it from the lockfile and fails
// when the result differs from the committed assets.
package webui
