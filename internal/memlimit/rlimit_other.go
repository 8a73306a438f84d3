//go:build !unix

package memlimit

func rlimitAS() Limit { return Limit{} }
