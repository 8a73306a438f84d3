package natsnode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "127.0.0.1:0"}, "data directory is required"},
		{Config{Dir: file, Listen: "127.0.0.1:0"}, "is a file"},
		{Config{Dir: dir}, "client address HOST:PORT is required"},
		{Config{Dir: dir, Listen: "127.0.0.1"}, "is not HOST:PORT"},
		{Config{Dir: dir, Listen: "127.0.0.1:x"}, "port must be a number"},
		{Config{Dir: dir, Listen: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1:6222"}}, "routes need a cluster address"},
		{Config{Dir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"}, "needs a fixed port"},
		{Config{Dir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:6222", Routes: []string{"tls://h:1"}}, `route "tls://h:1" is not nats://HOST:PORT`},
		{Config{Dir: dir, Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:6222", Routes: []string{"nats://h:99999"}}, "port must be a number"},
		{Config{Dir: dir, Listen: "127.0.0.1:0", MaxBatch: -1}, "max batch -1 is negative"},
	} {
		_, err := Start(c.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want ErrConfig saying %q", c.cfg, err, c.want)
		}
	}
}

// TestNameKeptAcrossRestarts: a node's name comes from its directory, so
// that JetStream recognises it after a restart.
func TestNameKeptAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	a, err := Start(Config{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitJetStream(ctx); err != nil {
		t.Fatal(err)
	}
	name, url := a.Name(), a.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Errorf("client URL %q", url)
	}
	if !a.Server().JetStreamEnabled() {
		t.Error("JetStream off")
	}
	if o := a.Server().JetStreamConfig(); o == nil || !strings.HasPrefix(o.StoreDir, dir) {
		t.Errorf("JetStream config %+v", o)
	}
	a.Shutdown()
	b, err := Start(Config{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	if b.Name() != name {
		t.Errorf("name after a restart %q, was %q", b.Name(), name)
	}
}

func TestPortTaken(t *testing.T) {
	a, err := Start(Config{Dir: filepath.Join(t.TempDir(), "a"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	_, port, _ := strings.Cut(strings.TrimPrefix(a.ClientURL(), "nats://"), ":")
	t0 := time.Now()
	_, err = Start(Config{Dir: filepath.Join(t.TempDir(), "b"), Listen: "127.0.0.1:" + port})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || time.Since(t0) > 5*time.Second {
		t.Errorf("second node on a taken port: %v after %v", err, time.Since(t0))
	}
}

func TestSyncAlwaysAndBatchLimit(t *testing.T) {
	o, err := options(Config{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.SyncAlways || !o.JetStream || o.JetStreamLimits.MaxBatchSize != DefaultMaxBatch || !o.NoSigs {
		t.Errorf("options: sync always %v, jetstream %v, max batch %d, no sigs %v", o.SyncAlways, o.JetStream, o.JetStreamLimits.MaxBatchSize, o.NoSigs)
	}
}
