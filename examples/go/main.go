// Example exec_wasi program in Go (GOOS=wasip1 GOARCH=wasm, Go 1.21+): prints one JSON line
// per environment variable it was given, then a summary line.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Printf("{\"go_env\":%q,\"value\":%q}\n", k, v)
	}
	fmt.Printf("{\"go\":\"done\",\"args\":%d}\n", len(os.Args)-1)
}
