package rules

import "embed"

// Files holds the rule files, recording.yml and alerts.yml, for tools
// that install them (write them where Prometheus's rule_files point).
//
//go:embed recording.yml alerts.yml
var Files embed.FS
