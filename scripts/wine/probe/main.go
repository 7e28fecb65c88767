// Command probe prints "sharelock-wine-ok": scripts/wine/test.sh runs it
// under Wine to check that Go programs start there at all (they die at once
// without the stub bcryptprimitives.dll) before it runs the test suites.
package main

import (
	"crypto/rand"
	"fmt"
)

func main() {
	var b [16]byte
	rand.Read(b[:]) // the call that needs ProcessPrng
	fmt.Println("sharelock-wine-ok")
}
