package builtins_test

import (
	"os"
	"testing"
)

// TestMain gives host.star a scratch directory through the environment
// (t.Setenv is not allowed in parallel tests).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "autonode-builtins-")
	if err != nil {
		panic(err)
	}
	os.Setenv("AUTONODE_TEST_TMP", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
