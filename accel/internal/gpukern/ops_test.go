package gpukern

import "testing"

// TestElementwiseOpsGenerated fails when accel's operation tables changed
// without `go generate ./accel/...`.
func TestElementwiseOpsGenerated(t *testing.T) {
	if ElementwiseOps != OpsSource() {
		t.Fatal("ops.go is stale: run go generate ./accel/... (it writes ElementwiseOps from accel.BinaryOps and accel.UnaryOps)")
	}
}
