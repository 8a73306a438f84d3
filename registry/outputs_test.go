package registry_test

import (
	"testing"

	"github.com/autonode/autonode/registry/registrytest"
)

func TestFileStoreOutputs(t *testing.T) {
	registrytest.RunOutputs(t, fileFactory(0))
}
