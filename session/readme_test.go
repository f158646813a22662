package session_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEQuotesTheExample: the README's embedding snippet is this
// package's Example, word for word, so it cannot rot.
func TestREADMEQuotesTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(src), "// A room with two plain-RTP")
	if i < 0 {
		t.Fatal("the Example's comment moved: update this test and the README")
	}
	example := strings.TrimSpace(string(src[i:]))
	if !strings.Contains(string(readme), "```go\n"+example+"\n```") {
		t.Error("README.md's embedding snippet differs from session's Example: copy the Example into the README")
	}
}
