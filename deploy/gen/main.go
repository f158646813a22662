// Command gen writes handsup's Grafana dashboard, built by
// deploy/dashboard, to deploy/grafana/handsup.json (or the file named by
// -o). Run it from the repository root (`go run ./deploy/gen`) or through
// `go generate ./deploy/dashboard`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/handsup-audio/handsup/deploy/dashboard"
)

func main() {
	out := flag.String("o", "", "output `file`; default deploy/grafana/handsup.json of the module")
	flag.Parse()
	path := *out
	if path == "" {
		root, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		path = filepath.Join(root, "deploy", "grafana", "handsup.json")
	}
	b, err := dashboard.JSON()
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// moduleRoot is the nearest directory upwards holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
