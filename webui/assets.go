package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// assets is the built front end (see the package doc).
//
//go:embed assets
var assets embed.FS

// asset is one embedded file with its entity tag.
type asset struct {
	data  []byte
	etag  string
	ctype string
}

// assetTable indexes the embedded files by URL path ("/assets/app.js").
var assetTable = func() map[string]asset {
	t := map[string]asset{}
	_ = fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		t["/"+p] = asset{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ct}
		return nil
	})
	return t
}()

// pageRoutes are the front end's own addresses, all served index.html.
func pageRoute(p string) bool {
	return p == "/" || p == "/lineage" || strings.HasPrefix(p, "/threads/") && len(p) > len("/threads/")
}

func (s *Server) handleAsset(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if pageRoute(p) {
		p = "/assets/index.html"
	}
	a, ok := assetTable[p]
	if !ok {
		http.Error(w, "404 page not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	// Revalidate every time: on loopback a 304 costs little, and a
	// rebuilt binary never serves a stale script.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
