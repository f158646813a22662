// Package fakeclock is a clock for tests that moves only when told to: a
// Clock's Now method stands in for time.Now wherever code takes its time
// as a func() time.Time (engine.Config.Now, for one), and the test steps it
// with Advance or Set. Runs on it repeat exactly, however busy the machine.
//
// A Clock is safe for concurrent use: an engine's workers may read it while
// the test moves it.
package fakeclock
