package main

import goruntime "runtime"

func goPlatform() string { return goruntime.GOOS + "/" + goruntime.GOARCH }
