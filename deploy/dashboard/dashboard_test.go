package dashboard_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	sdk "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/handsup-audio/handsup/deploy/dashboard"
)

// TestCommittedJSONIsCurrent: deploy/grafana/handsup.json is what the
// generator writes now; run `go generate ./deploy/dashboard` after a
// change.
func TestCommittedJSONIsCurrent(t *testing.T) {
	want, err := dashboard.JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../grafana/handsup.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/grafana/handsup.json is stale: run go generate ./deploy/dashboard and commit it")
	}
}

// TestEveryPanelHasQueries: the four rows are there and every panel but
// the rows has a handsup query filtered by the job variable.
func TestEveryPanelHasQueries(t *testing.T) {
	b, err := dashboard.JSON()
	if err != nil {
		t.Fatal(err)
	}
	qs, err := dashboard.Queries(b)
	if err != nil {
		t.Fatal(err)
	}
	panels := map[string]bool{}
	for _, q := range qs {
		panels[q.Panel] = true
		if !strings.Contains(q.Expr, "handsup_") || !strings.Contains(q.Expr, `job=~"$job"`) {
			t.Errorf("%s: %s: not a handsup query filtered by $job", q.Panel, q.Expr)
		}
	}
	for _, title := range []string{"Tick duration p99", "Reported loss", "RTP dropped by reason", "Requests by route and code"} {
		if !panels[title] {
			t.Errorf("no panel %q", title)
		}
	}
	for _, row := range []string{`"title": "Capacity"`, `"title": "Listener experience"`, `"title": "Ingress health"`, `"title": "API"`} {
		if !bytes.Contains(b, []byte(row)) {
			t.Errorf("no row %s", row)
		}
	}
}

// TestJSONReadsBack: the committed JSON unmarshals into the SDK's
// dashboard type (panels and Prometheus queries included), as Grafana's
// schema has it.
func TestJSONReadsBack(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	b, err := os.ReadFile("../grafana/handsup.json")
	if err != nil {
		t.Fatal(err)
	}
	var d sdk.Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Uid == nil || *d.Uid != dashboard.UID || len(d.Panels) < 20 {
		t.Errorf("read back uid %v and %d panels", d.Uid, len(d.Panels))
	}
	queries := 0
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for _, q := range p.Panel.Targets {
			queries++
			if pq, ok := q.(*prometheus.Dataquery); !ok || pq.Expr == "" {
				t.Errorf("panel %v: query %#v, want a Prometheus expression", p.Panel.Title, q)
			}
		}
	}
	if queries < 40 {
		t.Errorf("%d queries read back", queries)
	}
}
