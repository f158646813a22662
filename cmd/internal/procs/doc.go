// Package procs sets the Go runtime up for the commands that run an
// engine (cmd/handsup and cmd/handsup-bench). It changes process-wide
// settings, which a library must leave to the program that embeds it; that
// is why it lives here and not in the engine.
//
//	cfg.Workers = procs.SpareProcessor(cfg.Workers) // before engine.New
package procs
